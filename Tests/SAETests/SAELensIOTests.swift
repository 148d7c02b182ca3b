import XCTest
import Foundation
import Tensor
@testable import SAE

final class SAELensIOTests: XCTestCase {
    func testSaveThenLoadGivesIdenticalOutputs() throws {
        let folder = TestPaths.temporaryFolder("io")
        let group = try SAEGroup.make("nsae", dims: [6, 6], expansion: 3, alpha: 2e-3, sigma: 0.7, noise: .always,
                                      mse: .mean, beta: .layer, layerMeanNorms: [1.5, 9], seed: 11, layers: [4, 7],
                                      hookNames: ["blocks.4.hook_mlp_out", "blocks.7.hook_mlp_out"], modelName: "gpt2")
        let relu = try SAEGroup.make("relu", dims: [6], expansion: 2, alpha: 0.1, layers: [2])
        var rng = RNG(seed: 5)
        let x = rng.normalMatrix(20, 6)
        for sae in group.saes + relu.saes {
            try sae.setParameters(b_enc: (0..<sae.dSAE).map { _ in rng.normal() * 0.2 }, b_dec: (0..<6).map { _ in rng.normal() })
        }
        _ = try Evaluator.evaluate(group, source: try InMemoryBatchSource(layers: [x, x]), tokens: 20)
        try SAELensIO.save(group, to: folder + "/nsae")
        try SAELensIO.save(relu, to: folder + "/relu")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/nsae/blocks.7.hook_mlp_out/sparsity.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/relu/layer2/cfg.json"), "no hook name: layer{L}")

        let loaded = try SAELensIO.load(folder + "/nsae")
        XCTAssertEqual(loaded.layers, [4, 7])
        XCTAssertEqual(loaded.saes.count, group.saes.count)
        for (a, b) in zip(group.saes, loaded.saes) {
            XCTAssertEqual(a.config, b.config)
            XCTAssertEqual(try a.reconstruct(x), try b.reconstruct(x))
            var r1 = RNG(seed: 1), r2 = RNG(seed: 1)
            XCTAssertEqual(try a.encode(x, noise: true, rng: &r1), try b.encode(x, noise: true, rng: &r2))
            XCTAssertEqual(a.featureDensity?.count, b.featureDensity?.count)
            for (d1, d2) in zip(a.featureDensity!, b.featureDensity!) { XCTAssertEqual(d1, d2, accuracy: 1e-6 * max(d1, 1e-4)) }
        }
        let one = try SAELensIO.load(folder + "/relu/layer2")
        XCTAssertEqual(one.count, 1)
        XCTAssertEqual(one[0].config.architecture, .relu)
        XCTAssertEqual(try one[0].reconstruct(x), try relu[0].reconstruct(x))
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/relu/layer2/cfg.json"))) as! [String: Any]
        XCTAssertEqual(cfg["architecture"] as? String, "standard")
        XCTAssertEqual(cfg["hook_layer"] as? Int, 2)
    }

    /// Folders written by tools/sae/write_saelens_fixture.py (numpy, SAELens's layout) and numpy's outputs.
    func testReadsFoldersWrittenInSAELensLayout() throws {
        let group = try SAELensIO.load(TestPaths.fixtures.appendingPathComponent("saelens_group").path)
        XCTAssertEqual(group.layers, [3, 5])
        XCTAssertEqual(group.hookNames, ["blocks.3.hook_mlp_out", "blocks.5.hook_mlp_out"])
        let expected = try SafeTensorsFile(path: TestPaths.fixtures.appendingPathComponent("saelens_expected.safetensors").path)
        XCTAssertEqual(group.saes.count, 2)
        for (sae, layer) in zip(group.saes, [3, 5]) {
            XCTAssertEqual(sae.config.architecture, .relu)
            XCTAssertEqual(sae.config.modelName, "gpt2")
            let x = try expected.matrix("layer\(layer).x")
            let codes = try sae.encode(x)
            let want = try expected.matrix("layer\(layer).codes")
            XCTAssertEqual(codes.data.count, want.data.count)
            for (a, b) in zip(codes.data, want.data) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            let recon = try sae.decode(codes)
            XCTAssertEqual(recon.data.count, try expected.floats("layer\(layer).recon").count)
            for (a, b) in zip(recon.data, try expected.floats("layer\(layer).recon")) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            let density = try expected.floats("layer\(layer).density")
            XCTAssertEqual(sae.featureDensity?.count, density.count)
            for (a, b) in zip(sae.featureDensity!, density) { XCTAssertEqual(a, b, accuracy: 1e-6 + 1e-5 * b) }
        }
    }

    func testBadFoldersGiveClearErrors() throws {
        let folder = TestPaths.temporaryFolder("badsae")
        let sae = try SAERegistry.make("relu", dIn: 4, dSAE: 8, alpha: 1)
        try SAELensIO.save(sae, to: folder + "/ok")
        XCTAssertThrowsError(try SAELensIO.load(folder + "/nothing")) { XCTAssertTrue("\($0)".contains("is not a folder"), "\($0)") }
        try FileManager.default.createDirectory(atPath: folder + "/empty", withIntermediateDirectories: true)
        XCTAssertThrowsError(try SAELensIO.load(folder + "/empty")) { XCTAssertTrue("\($0)".contains("no cfg.json"), "\($0)") }

        // W_enc stored with the wrong shape.
        try FileManager.default.copyItem(atPath: folder + "/ok", toPath: folder + "/shape")
        try SafeTensors.write([TensorToWrite(name: "W_enc", matrix: Matrix(rows: 8, cols: 4)), TensorToWrite(name: "W_dec", matrix: sae.W_dec),
                               TensorToWrite(name: "b_enc", vector: sae.b_enc), TensorToWrite(name: "b_dec", vector: sae.b_dec)],
                              to: folder + "/shape/sae_weights.safetensors")
        XCTAssertThrowsError(try SAELensIO.load(folder + "/shape")) {
            XCTAssertTrue("\($0)".contains("W_enc") && "\($0)".contains("[4, 8]") && "\($0)".contains("[8, 4]"), "\($0)")
        }
        // b_dec missing.
        try FileManager.default.copyItem(atPath: folder + "/ok", toPath: folder + "/missing")
        try SafeTensors.write([TensorToWrite(name: "W_enc", matrix: sae.W_enc), TensorToWrite(name: "W_dec", matrix: sae.W_dec),
                               TensorToWrite(name: "b_enc", vector: sae.b_enc)], to: folder + "/missing/sae_weights.safetensors")
        XCTAssertThrowsError(try SAELensIO.load(folder + "/missing")) { XCTAssertTrue("\($0)".contains("no tensor b_dec"), "\($0)") }
        // Unsupported architecture and missing d_in.
        try FileManager.default.createDirectory(atPath: folder + "/jump", withIntermediateDirectories: true)
        try Data(#"{"architecture": "jumprelu", "d_in": 4, "d_sae": 8}"#.utf8).write(to: URL(fileURLWithPath: folder + "/jump/cfg.json"))
        XCTAssertThrowsError(try SAELensIO.load(folder + "/jump")) { XCTAssertTrue("\($0)".contains("'jumprelu' is not supported"), "\($0)") }
        try Data(#"{"architecture": "standard", "d_sae": 8}"#.utf8).write(to: URL(fileURLWithPath: folder + "/jump/cfg.json"))
        XCTAssertThrowsError(try SAELensIO.load(folder + "/jump")) { XCTAssertTrue("\($0)".contains("no integer d_in"), "\($0)") }
    }
}
