import Foundation
import XCTest
@testable import SAE

/// Frontier interpolation against values computed by hand: linear in ln L0 between neighbouring points,
/// m(l) = m_i + (m_{i+1} − m_i)·ln(l/l_i)/ln(l_{i+1}/l_i).
final class FrontierTests: XCTestCase {
    // Given out of L0 order on purpose: the curve sorts by L0, not by grid value.
    let a = try! FrontierCurve(points: [FrontierPoint(label: "a1", l0: 10, metric: 0.5), FrontierPoint(label: "a3", l0: 40, metric: 0.9),
                                        FrontierPoint(label: "a2", l0: 20, metric: 0.8)])
    let b = try! FrontierCurve(points: [FrontierPoint(label: "b1", l0: 15, metric: 0.6), FrontierPoint(label: "b2", l0: 60, metric: 0.7)])

    func testInterpolationIsLinearInLogL0() throws {
        XCTAssertEqual(a.points.map(\.label), ["a1", "a2", "a3"])
        XCTAssertEqual(a.metric(atL0: 10), 0.5)
        XCTAssertEqual(a.metric(atL0: 20), 0.8)
        XCTAssertEqual(a.metric(atL0: 40), 0.9)
        // √(10·20) is halfway in log L0: the mean of 0.5 and 0.8.
        XCTAssertEqual(try XCTUnwrap(a.metric(atL0: (10.0 * 20).squareRoot())), 0.65, accuracy: 1e-12)
        // 30 lies ln 1.5 / ln 2 = 0.5849625 of the way from 20 to 40.
        XCTAssertEqual(try XCTUnwrap(a.metric(atL0: 30)), 0.85849625007, accuracy: 1e-10)
        // Linear in L0 itself would give 0.85 here; the test tells the two apart.
        XCTAssertNotEqual(try XCTUnwrap(a.metric(atL0: 30)), 0.85, accuracy: 1e-4)
        XCTAssertNil(a.metric(atL0: 9.999), "no extrapolation below the curve")
        XCTAssertNil(a.metric(atL0: 40.001), "no extrapolation above the curve")
    }

    func testMatchAtEveryGridPointInTheOverlap() throws {
        let m = FrontierMatch(a, b)
        XCTAssertEqual(m.overlap, 15...40)
        // b's 15, a's 20 and 40 lie in [15, 40]; a's 10 and b's 60 do not.
        XCTAssertEqual(m.rows.map(\.l0), [15, 20, 40])
        XCTAssertEqual(m.rows.map(\.label), ["b1", "a2", "a3"])
        XCTAssertEqual(m.rows.map(\.curve), [1, 0, 0])
        let expectedA = [0.5 + 0.3 * log(1.5) / log(2), 0.8, 0.9]                       // 0.67548875, 0.8, 0.9
        let expectedB = [0.6, 0.6 + 0.1 * log(20.0 / 15) / log(4), 0.6 + 0.1 * log(40.0 / 15) / log(4)]  // 0.6, 0.62075, 0.67075
        for (row, (ea, eb)) in zip(m.rows, zip(expectedA, expectedB)) {
            XCTAssertEqual(row.metricA, ea, accuracy: 1e-12)
            XCTAssertEqual(row.metricB, eb, accuracy: 1e-12)
        }
        XCTAssertEqual(m.rows[0].metricA, 0.67548875022, accuracy: 1e-10)
        XCTAssertEqual(m.rows[2].metricB, 0.67075187496, accuracy: 1e-10)
        // Nearest actual pair: |ln(20/15)| = 0.288 beats ln(15/10) = ln(60/40) = 0.405.
        XCTAssertEqual(m.nearest.a.label, "a2")
        XCTAssertEqual(m.nearest.b.label, "b1")
        XCTAssertEqual(m.nearest.l0Ratio, 20.0 / 15, accuracy: 1e-12)
    }

    func testRangesThatDoNotOverlapGiveNoRowsButTheNearestPair() throws {
        let low = try FrontierCurve(points: [FrontierPoint(label: "l1", l0: 1, metric: 0.1), FrontierPoint(label: "l2", l0: 2, metric: 0.2)])
        let high = try FrontierCurve(points: [FrontierPoint(label: "h1", l0: 8, metric: 0.9), FrontierPoint(label: "h2", l0: 4, metric: 0.8)])
        let m = FrontierMatch(low, high)
        XCTAssertNil(m.overlap)
        XCTAssertEqual(m.rows, [])
        XCTAssertEqual([m.nearest.a.label, m.nearest.b.label], ["l2", "h2"])
        XCTAssertEqual(m.nearest.l0Ratio, 2)
        // A one-point curve (a plain SAE group) overlaps only where the other curve covers its L0.
        let single = try FrontierCurve(points: [FrontierPoint(label: "s", l0: 30, metric: 0.7)])
        XCTAssertEqual(FrontierMatch(a, single).rows.map(\.l0), [30])
        XCTAssertEqual(FrontierMatch(a, single).rows[0].metricB, 0.7)
        XCTAssertNil(FrontierMatch(b, try FrontierCurve(points: [FrontierPoint(label: "t", l0: 61, metric: 0)])).overlap)
    }

    func testMatchingACurveWithItselfGivesEqualMetricsEverywhere() throws {
        let m = FrontierMatch(a, a)
        XCTAssertEqual(m.overlap, 10...40)
        XCTAssertEqual(m.rows.map(\.l0), [10, 20, 40])
        for row in m.rows { XCTAssertEqual(row.metricA, row.metricB) }
        XCTAssertEqual(m.nearest.l0Ratio, 1)
    }

    func testEqualL0sAverageAndBadPointsAreRefusedByName() throws {
        let tied = try FrontierCurve(points: [FrontierPoint(label: "x", l0: 5, metric: 0.2), FrontierPoint(label: "y", l0: 5, metric: 0.4),
                                              FrontierPoint(label: "z", l0: 50, metric: 1.4)])
        XCTAssertEqual(try XCTUnwrap(tied.metric(atL0: 5)), 0.3, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(tied.metric(atL0: 50.0.squareRoot() * 5.0.squareRoot())), 0.85, accuracy: 1e-12)
        XCTAssertThrowsError(try FrontierCurve(points: [FrontierPoint(label: "alpha=10", l0: 0, metric: 0.1)])) {
            XCTAssertTrue("\($0)".contains("alpha=10: L0 is 0.0"), "\($0)")
        }
        XCTAssertThrowsError(try FrontierCurve(points: [FrontierPoint(label: "k=4", l0: 4, metric: .nan)])) {
            XCTAssertTrue("\($0)".contains("k=4: the metric is nan"), "\($0)")
        }
        XCTAssertThrowsError(try FrontierCurve(points: [])) { XCTAssertTrue("\($0)".contains("at least one point"), "\($0)") }
    }
}
