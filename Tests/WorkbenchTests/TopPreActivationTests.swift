import Foundation
import SAE
import Tensor
import XCTest
@testable import Workbench

/// `top` and `feature` on an NSAE whose codes saturate: ranked by the pre-activation, shown beside the activation.
final class TopPreActivationTests: XCTestCase {
    func testNSAETopAndFeatureCardRankByThePreActivation() throws {
        let tmp = Fixtures.temporaryDirectory("preact")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let template = try SAERegistry.make("nsae", dIn: 8, dSAE: 4, alpha: 0.01, seed: 1, hookLayer: 0)
        var wEnc = Matrix(rows: 8, cols: 4)
        for i in 0..<8 { wEnc[i, 0] = 50 }            // pre ≈ 50·Σx: far past tanh's saturation for most tokens
        let nsae = try SAE(config: template.config, W_enc: wEnc, b_enc: [0, 0, 0, 0], W_dec: Matrix(rows: 4, cols: 8),
                           b_dec: [Float](repeating: 0, count: 8))
        try SAELensIO.save(try SAEGroup(saes: [nsae]), to: tmp.path + "/nsae")
        let session = Session()
        session.mustRun("""
            toy = synth d=8 features=16 active=2 norms=[1] tokens=2k seed=1 out="\(tmp.path)/toy"
            n = load sae "\(tmp.path)/nsae"
            t = top n toy layer=0 feature=0 k=8
            """)
        guard case .table(let table)? = session.value(named: "t") else { return XCTFail("top gives a table") }
        XCTAssertEqual(table.columns, ["rank", "activation", "pre_activation", "position", "token", "context"])
        func numbers(_ column: String) -> [Double] {
            (table.column(column) ?? []).compactMap { if case .number(let v) = $0 { v } else { nil } }
        }
        let pre = numbers("pre_activation")
        XCTAssertEqual(pre.count, 8)
        XCTAssertEqual(pre, pre.sorted(by: >), "rows follow the pre-activation")
        XCTAssertEqual(Set(pre).count, 8, "the pre-activations differ")
        XCTAssertEqual(numbers("activation"), Array(repeating: 1, count: 8), "while the codes all read 1.0")

        let sink = RecordingSink()
        session.mustRun("f = feature n toy layer=0 id=0 k=3", sink: sink)
        let card = try XCTUnwrap(sink.displays.first?.plain)
        XCTAssertTrue(card.contains("max pre-activation"), card)
        guard case .table(let contexts)? = session.value(named: "f") else { return XCTFail("feature gives a table") }
        XCTAssertTrue(contexts.columns.contains("pre_activation"))
    }
}
