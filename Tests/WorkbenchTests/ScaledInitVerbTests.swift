import XCTest
@testable import Workbench

/// `sae … init=scaled`: the nsae group starts at each layer's input scale; relu refuses the option by name.
final class ScaledInitVerbTests: XCTestCase {
    func testScaledInitStartsEachLayerAtItsScaleAndReluRefusesIt() throws {
        let tmp = Fixtures.temporaryDirectory("scaled-init")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = Session()
        session.mustRun("acts = synth d=16 features=32 active=2 layers=2 norms=[1,10] tokens=2k seed=1 out=\"\(tmp.path)/acts\"")
        session.mustRun("n = sae nsae acts expansion=2 alpha=1e-3 init=scaled")
        let norms = try XCTUnwrap(session.mustRun("norms n"))
        // Median decoder-row norm per layer equals that layer's mean ‖x‖ (rows are scaled copies of unit rows).
        let stats = try XCTUnwrap(session.mustRun("stats acts"))
        let table = try JSON.parse(norms.data["application/json"] ?? "")
        let statTable = try JSON.parse(stats.data["application/json"] ?? "")
        func column(_ json: JSON, _ name: String) -> [Double] {
            guard case .array(let columns)? = json["columns"], case .array(let rows)? = json["rows"],
                  let index = columns.firstIndex(of: .string(name)) else { return [] }
            return rows.compactMap { row -> Double? in
                guard case .array(let cells) = row, let v = cells[index].doubleValue else { return nil }
                return v
            }
        }
        let medians = column(table, "median"), means = column(statTable, "mean")
        XCTAssertEqual(medians.count, 2)
        XCTAssertEqual(means.count, 2, "zip would hide a missing layer")
        for (m, x) in zip(medians, means) { XCTAssertEqual(m, x, accuracy: 1e-3 * x) }

        let failure = session.mustFail("r = sae relu acts expansion=2 alpha=1e-3 init=scaled")
        XCTAssert(failure.message.contains("init=scaled is for nsae"), failure.message)
        XCTAssertNotNil(session.value(named: "n"), "the error keeps what was bound")
    }
}
