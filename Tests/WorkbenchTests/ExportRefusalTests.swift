import Foundation
import XCTest
@testable import Workbench

/// `export` refuses a group SAELens would train as something else, naming the layer and the field, and writes no
/// script. The groups are loaded from SAELens folders edited after `save`, the one way such groups reach a session.
final class ExportRefusalTests: XCTestCase {
    private func savedTwoLayerGroup(_ tmp: URL, _ session: Session) throws -> [String] {
        let text = (0..<40).map { "Sentence \($0) about exporting sparse autoencoders." }.joined(separator: "\n\n")
        try text.write(to: tmp.appendingPathComponent("c.txt"), atomically: true, encoding: .utf8)
        session.mustRun("m = load gpt2 \"\(Fixtures.data.path)/gpt2-tiny\"")
        session.mustRun("c = load text \"\(tmp.path)/c.txt\"")
        session.mustRun("acts = harvest m c hook=resid_pre layers=[0,1] tokens=128 context=16 out=\"\(tmp.path)/acts\"")
        session.mustRun("s = sae relu acts expansion=2 alpha=1e-3")
        session.mustRun("save s \"\(tmp.path)/sae\"")
        let cfgs = (FileManager.default.enumerator(atPath: "\(tmp.path)/sae")?.allObjects.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix("cfg.json") }.sorted().map { "\(tmp.path)/sae/\($0)" }
        XCTAssertEqual(cfgs.count, 2, "one SAELens folder per layer")
        return cfgs
    }

    private func edit(_ path: String, _ change: (inout [String: Any]) -> Void) throws {
        var cfg = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        change(&cfg)
        try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: path))
    }

    func testExportRefusesNormalizedInputsAndMixedKinds() throws {
        let tmp = Fixtures.temporaryDirectory("export-refusals")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = Session()
        let cfgs = try savedTwoLayerGroup(tmp, session)
        let script = "\(tmp.path)/train.py"
        // The unedited group exports: the refusals below come from the edits, not from the setup.
        session.mustRun("ok = load sae \"\(tmp.path)/sae\"")
        session.mustRun("export ok \"\(script)\" steps=5")
        XCTAssertTrue(FileManager.default.fileExists(atPath: script))
        try FileManager.default.removeItem(atPath: script)

        // Layer 1 normalizes its inputs: nsae reads that, the exported SAELens run would train it differently.
        try edit(cfgs[1]) { $0["normalize_activations"] = "expected_average_only_in" }
        session.mustRun("normed = load sae \"\(tmp.path)/sae\"")
        let normed = session.mustFail("export normed \"\(script)\" steps=5").message
        XCTAssertTrue(normed.contains("normalize_activations expected_average_only_in of layer 1"), normed)
        XCTAssertFalse(FileManager.default.fileExists(atPath: script))

        // Layer 1 a TopK SAE beside layer 0's ReLU: one script trains one SAELens config class for every hook.
        try edit(cfgs[1]) {
            $0["normalize_activations"] = "none"
            $0["architecture"] = "topk"
            $0["k"] = 3
        }
        session.mustRun("mixed = load sae \"\(tmp.path)/sae\"")
        let mixed = session.mustFail("export mixed \"\(script)\" steps=5").message
        XCTAssertTrue(mixed.contains("the group mixes relu and topk SAEs"), mixed)
        XCTAssertFalse(FileManager.default.fileExists(atPath: script))
        // The session keeps every bound value after the refusals.
        session.mustRun("export ok \"\(script)\" steps=5")
    }
}
