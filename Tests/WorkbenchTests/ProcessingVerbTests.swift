import Foundation
import XCTest
@testable import Workbench

/// `load gpt2 … processing=tl`, the SAE's model_from_pretrained_kwargs kept through save and load, and the warning
/// (or refusal with strict=true) when splice/top pair an SAE with a model or store of other processing.
final class ProcessingVerbTests: XCTestCase {
    func testProcessingMismatchWarnsAndStrictRefuses() throws {
        let tmp = Fixtures.temporaryDirectory("processing")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let text = (0..<40).map { "Sentence \($0) about weight processing and sparse features." }.joined(separator: "\n\n")
        try text.write(to: tmp.appendingPathComponent("c.txt"), atomically: true, encoding: .utf8)
        let session = Session()
        let tiny = "\(Fixtures.data.path)/gpt2-tiny"
        session.mustRun("hf = load gpt2 \"\(tiny)\"")
        session.mustRun("tl = load gpt2 \"\(tiny)\" processing=tl")
        XCTAssert(session.mustFail("load text \"\(tmp.path)/c.txt\" processing=tl").message.contains("applies only to `load gpt2`"))
        session.mustRun("c = load text \"\(tmp.path)/c.txt\"")
        session.mustRun("acts = harvest tl c hook=resid_pre layers=1 tokens=128 context=16 out=\"\(tmp.path)/acts\"")
        session.mustRun("s = sae relu acts expansion=2 alpha=1e-3")
        session.mustRun("save s \"\(tmp.path)/sae\"")
        // The saved cfg says the model it needs, as SAELens reads it.
        let cfgPath = try XCTUnwrap(FileManager.default.enumerator(atPath: "\(tmp.path)/sae")?.allObjects
            .compactMap { $0 as? String }.first { $0.hasSuffix("cfg.json") })
        let cfg = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(tmp.path)/sae/\(cfgPath)"))) as? [String: Any])
        XCTAssertEqual((cfg["metadata"] as? [String: Any])?["model_from_pretrained_kwargs"] as? [String: Bool],
                       ["fold_ln": true, "center_writing_weights": true, "center_unembed": true, "fold_value_biases": true])
        session.mustRun("loaded = load sae \"\(tmp.path)/sae\"")

        let quiet = RecordingSink()
        session.mustRun("splice loaded tl c tokens=32 context=16", sink: quiet)
        XCTAssertFalse(quiet.streams.joined().contains("warning"), quiet.streams.joined())
        let warned = RecordingSink()
        session.mustRun("splice loaded hf c tokens=32 context=16", sink: warned)
        let warning = warned.streams.joined()
        XCTAssert(warning.contains("warning: the SAE was trained with model_from_pretrained_kwargs"), warning)
        XCTAssert(warning.contains("center_writing_weights changes the values at blocks.1.hook_resid_pre"), warning)
        XCTAssert(warning.contains("processing=tl"), warning)
        XCTAssert(session.mustFail("splice loaded hf c tokens=32 context=16 strict=true").message.contains("strict=true refuses"))

        session.mustRun("hfacts = harvest hf c hook=resid_pre layers=1 tokens=128 context=16 out=\"\(tmp.path)/hfacts\"")
        let topWarned = RecordingSink()
        session.mustRun("top loaded hfacts layer=1 feature=0 k=2 model=hf", sink: topWarned)
        XCTAssert(topWarned.streams.joined().contains("the store has processing=none"), topWarned.streams.joined())
        XCTAssert(session.mustFail("top loaded hfacts layer=1 feature=0 k=2 model=hf strict=true").message.contains("strict=true refuses"))

        // A cfg in SAELens's style (gpt2-small-res-jb: only center_writing_weights) fits processing=tl for resid_pre.
        let original = try String(contentsOfFile: "\(tmp.path)/sae/\(cfgPath)", encoding: .utf8)
        let edited = original.replacingOccurrences(of: "\"fold_ln\" : true", with: "\"fold_ln\" : false")
        XCTAssertNotEqual(edited, original)
        try edited.write(toFile: "\(tmp.path)/sae/\(cfgPath)", atomically: true, encoding: .utf8)
        session.mustRun("jb = load sae \"\(tmp.path)/sae\"")
        let jbQuiet = RecordingSink()
        session.mustRun("splice jb tl c tokens=32 context=16", sink: jbQuiet)
        XCTAssertFalse(jbQuiet.streams.joined().contains("warning"), jbQuiet.streams.joined())
    }
}
