import XCTest
import Foundation
import Tensor
@testable import SAE

/// Folders SAELens 6 wrote (tools/saelens_fixtures/make_fixtures.py) and SAELens's own encode/decode of them.
final class SAELens6Tests: XCTestCase {
    static let root = TestPaths.fixtures.appendingPathComponent("saelens6").path
    static let expected = try! SafeTensorsFile(path: root + "/expected.safetensors")

    /// Loads a fixture folder and checks nsae's codes and reconstruction against SAELens's.
    @discardableResult
    static func checkAgainstSAELens(_ name: String, as architecture: SAEArchitecture, file: StaticString = #filePath, line: UInt = #line) throws -> SAE {
        let group = try SAELensIO.load(Self.root + "/" + name)
        XCTAssertEqual(group.count, 1, file: file, line: line)
        let sae = group[0]
        XCTAssertEqual(sae.config.architecture, architecture, name, file: file, line: line)
        let x = try Self.expected.matrix("\(name).x")
        let codes = try sae.encode(x), recon = try sae.reconstruct(x)
        let wantCodes = try Self.expected.floats("\(name).codes"), wantRecon = try Self.expected.floats("\(name).recon")
        XCTAssertEqual(codes.data.count, wantCodes.count, file: file, line: line)
        let codeError = zip(codes.data, wantCodes).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
        let reconError = zip(recon.data, wantRecon).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
        XCTAssertLessThan(codeError, 2e-5, "\(name): codes differ from SAELens's", file: file, line: line)
        XCTAssertLessThan(reconError, 2e-5, "\(name): reconstruction differs from SAELens's", file: file, line: line)
        // The active sets must agree exactly (a feature on in one and off in the other is a different SAE).
        XCTAssertEqual(codes.data.map { $0 > 0 }, wantCodes.map { $0 > 0 }, "\(name): active features differ", file: file, line: line)
        return sae
    }

    func testStandardFoldersMatchSAELens() throws {
        let sae = try Self.checkAgainstSAELens("standard", as: .relu)
        XCTAssertEqual(sae.config.hookName, "blocks.3.hook_mlp_out")
        XCTAssertEqual(sae.config.hookLayer, 3)
        XCTAssertEqual(sae.config.modelName, "gpt2")
        try Self.checkAgainstSAELens("standard_no_bdec", as: .relu)
    }

    func testHalfPrecisionWeightsAreRead() throws {
        try Self.checkAgainstSAELens("standard_f16", as: .relu)
        try Self.checkAgainstSAELens("standard_bf16", as: .relu)
    }

    func testNormalizeActivationsIsAppliedAsSAELensApplies() throws {
        XCTAssertEqual(try Self.checkAgainstSAELens("standard_layer_norm", as: .relu).config.normalization, .layerNorm)
        XCTAssertEqual(try Self.checkAgainstSAELens("standard_constant_norm", as: .relu).config.normalization, .constantNormRescale)
        XCTAssertEqual(try Self.checkAgainstSAELens("standard_expected_average", as: .relu).config.normalization, .expectedAverageOnlyIn)
        // The setting survives a save, and SAELens's output with it.
        let folder = TestPaths.temporaryFolder("norm")
        let sae = try SAELensIO.load(Self.root + "/standard_layer_norm")[0]
        try SAELensIO.save(sae, to: folder + "/ln")
        let back = try SAELensIO.load(folder + "/ln")[0]
        let x = try Self.expected.matrix("standard_layer_norm.x")
        XCTAssertEqual(try back.reconstruct(x), try sae.reconstruct(x))
        XCTAssertThrowsMessage(try sae.decode(try sae.encode(x)), contains: ["normalize_activations = layer_norm", "use reconstruct"])
        let group = try SAEGroup(saes: [sae])
        XCTAssertThrowsMessage(try GroupTrainer(batchSize: 4).train(group, source: try InMemoryBatchSource(layers: [x]), steps: 1, context: .silent),
                               contains: ["normalize_activations = layer_norm", "does not train"])
    }

    func testPre6LayoutsLoadAsTheirKind() throws {
        let relu = try Self.checkAgainstSAELens("legacy_relu", as: .relu)
        XCTAssertEqual(relu.config.hookName, "blocks.6.hook_mlp_out", "hook_point is the old hook_name")
        XCTAssertEqual(relu.config.hookLayer, 6, "hook_point_layer is the old hook_layer")
        // SAELens 6 itself reads tanh-relu as plain ReLU; the reference here is the formula (see the fixture tool).
        try Self.checkAgainstSAELens("legacy_tanh_relu", as: .nsae)
    }

    // MARK: refusals

    private func folderWith(cfg: String, weightsFrom source: String = "standard", _ name: String = #function) throws -> String {
        let folder = TestPaths.temporaryFolder("refuse")
        try FileManager.default.copyItem(atPath: Self.root + "/" + source, toPath: folder + "/sae")
        try Data(cfg.utf8).write(to: URL(fileURLWithPath: folder + "/sae/cfg.json"))
        return folder + "/sae"
    }

    func testIntegersAreReadStrictly() throws {
        for (value, shown) in [("16.7", "16.7"), ("1e30", "1e+30"), ("64.0", "64"), ("\"64\"", "'64'"), ("true", "true")] {
            let path = try folderWith(cfg: #"{"architecture": "standard", "d_in": \#(value), "d_sae": 64}"#)
            XCTAssertThrowsMessage(try SAELensIO.load(path), contains: ["d_in = \(shown)", "is not an integer"])
        }
        let big = try folderWith(cfg: #"{"architecture": "standard", "d_in": 64, "d_sae": 9223372036854775807}"#)
        XCTAssertThrowsMessage(try SAELensIO.load(big), contains: ["d_sae = 9223372036854775807", "too large"])
        let negative = try folderWith(cfg: #"{"architecture": "standard", "d_in": -64, "d_sae": 64}"#)
        XCTAssertThrowsMessage(try SAELensIO.load(negative), contains: ["d_in = -64 must be positive"])
        // Sizes that disagree with the tensors are refused before use.
        let wrong = try folderWith(cfg: #"{"architecture": "standard", "d_in": 64, "d_sae": 65}"#)
        XCTAssertThrowsMessage(try SAELensIO.load(wrong), contains: ["W_enc", "expected shape [64, 65], found [64, 64]"])
    }

    func testWhatNsaeCannotRepresentIsRefusedByFieldAndValue() throws {
        let cases: [(String, [String])] = [
            (#"{"architecture": "gated", "d_in": 64, "d_sae": 64}"#, ["architecture = 'gated' is not supported", "standard (relu)"]),
            (#"{"d_in": 64, "d_sae": 64, "activation_fn_str": "topk"}"#, ["activation_fn_str = 'topk' needs activation_fn_kwargs.k"]),
            (#"{"d_in": 64, "d_sae": 64, "activation_fn_str": "gelu"}"#, ["activation_fn_str = 'gelu' is not supported"]),
            (#"{"architecture": "standard", "d_in": 64, "d_sae": 64, "normalize_activations": "covariance_whitening", "metadata": {"sae_lens_version": "6.1.0"}}"#,
             ["normalize_activations = 'covariance_whitening' is not supported"]),
            (#"{"architecture": "standard", "d_in": 64, "d_sae": 64, "reshape_activations": "hook_z"}"#, ["reshape_activations = 'hook_z' is not supported"]),
            (#"{"architecture": "standard", "d_in": 64, "d_sae": 64, "apply_b_dec_to_input": "yes"}"#, ["apply_b_dec_to_input = 'yes' is not true or false"]),
        ]
        for (cfg, words) in cases {
            XCTAssertThrowsMessage(try SAELensIO.load(try folderWith(cfg: cfg)), contains: words)
        }
        // A weight stored as integers is not read as floats.
        let path = try folderWith(cfg: #"{"architecture": "standard", "d_in": 64, "d_sae": 64}"#)
        let sae = try SAELensIO.load(Self.root + "/standard")[0]
        try SafeTensors.write([TensorToWrite(name: "W_enc", dtype: .i32, shape: [64, 64], ints: [Int64](repeating: 1, count: 64 * 64)),
                               TensorToWrite(name: "W_dec", matrix: sae.W_dec), TensorToWrite(name: "b_enc", vector: sae.b_enc),
                               TensorToWrite(name: "b_dec", vector: sae.b_dec)], to: path + "/sae_weights.safetensors")
        XCTAssertThrowsMessage(try SAELensIO.load(path), contains: ["tensor W_enc has dtype I32"])
    }

    // MARK: saving

    func testHookNamesFromDataBecomeOneFolderName() throws {
        let folder = TestPaths.temporaryFolder("hooks")
        let group = try SAEGroup.make("relu", dims: [4, 4, 4], expansion: 2, alpha: 1e-3, layers: [0, 1, 2],
                                      hookNames: ["..", "a/b", ".hidden"])
        try SAELensIO.save(group, to: folder + "/g")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder + "/g").sorted()
        XCTAssertEqual(names, ["_..", "_.hidden", "a_b"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/cfg.json"), "nothing written outside the group")
        let back = try SAELensIO.load(folder + "/g")
        XCTAssertEqual(back.hookNames, ["..", "a/b", ".hidden"], "the hook names themselves are kept in cfg.json")
    }

    func testSaveSwapsTheWholeGroupIn() throws {
        let folder = TestPaths.temporaryFolder("swap") + "/g"
        let three = try SAEGroup.make("relu", dims: [4, 4, 4], expansion: 2, alpha: 1e-3, layers: [0, 1, 2])
        let one = try SAEGroup.make("nsae", dims: [4], expansion: 2, alpha: 1e-3, layers: [5])
        try SAELensIO.save(three, to: folder)
        try SAELensIO.save(one, to: folder)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["layer5"], "no layer of the old group is left")
        XCTAssertEqual(try SAELensIO.load(folder)[0].config.architecture, .nsae)
        // While the new group is being written the old one is intact under the name; a failure leaves it there.
        struct Interrupted: Error {}
        XCTAssertThrowsError(try FolderSwap.replace(folder, isReplaceable: SAELensIO.isGroupFolder) { tmp in
            try SAELensIO.writeFolder(three[0], to: tmp + "/layer0")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["layer5"])
            throw Interrupted()
        })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["layer5"])
        let parent = (folder as NSString).deletingLastPathComponent
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), ["g"], "no temporary folder left behind")
        // A folder that is not an SAE folder is never replaced.
        let other = TestPaths.temporaryFolder("other")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: other + "/notes.txt"))
        XCTAssertThrowsMessage(try SAELensIO.save(one, to: other), contains: ["holds files that are not an SAE folder"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: other + "/notes.txt"))
    }
}

func XCTAssertThrowsMessage<T>(_ expression: @autoclosure () throws -> T, contains words: [String],
                               file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        let text = "\(error)"
        for w in words { XCTAssertTrue(text.contains(w), "missing '\(w)' in: \(text)", file: file, line: line) }
    }
}
