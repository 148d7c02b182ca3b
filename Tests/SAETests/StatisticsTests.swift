import XCTest
@testable import SAE

/// Fits and p-values against scipy 1.17.1 (values printed by tools/sae/pvalue_constants.py).
final class StatisticsTests: XCTestCase {
    func testLinearFitsMatchScipyLinregress() throws {
        let cases: [(x: [Double], y: [Double], slope: Double, intercept: Double, r: Double, p: Double)] = [
            ([3.1, 4.0, 5.2, 6.8, 8.1, 9.9, 12.5, 15.0, 18.2, 22.4, 30.1, 41.7],
             [12.0, 15.5, 14.1, 22.0, 19.3, 25.2, 24.0, 31.8, 29.5, 37.7, 35.0, 48.2],
             0.8695587427444389, 13.365675211186193, 0.9486151155047842, 2.587412466594452e-06),
            ([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 2.5, 3.5], 0.3142857142857143, 1.5666666666666664, 0.5443588252359328, 0.26411574319126124),
            ([10, 20, 30, 40], [5, 3.9, 3.2, 1.1], -0.124, 6.4, -0.9742360096347986, 0.025763990365201377),
        ]
        for c in cases {
            let fit = try LinearFit(x: c.x, y: c.y)
            XCTAssertEqual(fit.slope, c.slope, accuracy: 1e-12 * abs(c.slope))
            XCTAssertEqual(fit.intercept, c.intercept, accuracy: 1e-12 * abs(c.intercept))
            XCTAssertEqual(fit.r, c.r, accuracy: 1e-12)
            XCTAssertEqual(fit.p, c.p, accuracy: 1e-9 * c.p)
        }
        XCTAssertThrowsError(try LinearFit(x: [1, 2], y: [1, 2])) { XCTAssertTrue("\($0)".contains("at least 3")) }
        XCTAssertThrowsError(try LinearFit(x: [1, 1, 1], y: [1, 2, 3])) { XCTAssertTrue("\($0)".contains("equal")) }
    }

    func testIncompleteBetaAndTPValuesMatchScipy() {
        let beta: [(Double, Double, Double, Double)] = [
            (0.5, 0.5, 0.3, 0.36901011956554536), (5.0, 0.5, 0.9, 0.3166429150200122), (2.0, 3.0, 0.4, 0.5247999999999999),
            (10.0, 0.5, 0.2, 1.994982493613096e-08), (30.0, 2.5, 0.95, 0.6763375070093829),
        ]
        for (a, b, x, expected) in beta {
            XCTAssertEqual(Statistics.regularizedIncompleteBeta(a: a, b: b, x: x), expected, accuracy: 1e-11 * expected, "I_\(x)(\(a), \(b))")
        }
        let t: [(Double, Double, Double)] = [(2.0, 10, 0.07338803477074037), (0.5, 3, 0.651447964848151),
                                            (4.2, 1, 0.14880553059723445), (-3.3, 25, 0.0029052202137769094)]
        for (tv, dof, expected) in t {
            XCTAssertEqual(Statistics.twoSidedTPValue(t: tv, dof: dof), expected, accuracy: 1e-10 * expected, "t=\(tv) dof=\(dof)")
        }
    }

    func testHistogramAndQuantiles() {
        let h = Histogram(values: [-2, 0, 0.1, 0.5, 0.99, 1, 3], bins: 2, range: 0...1)
        XCTAssertEqual(h.counts, [2, 3])
        XCTAssertEqual(h.below, 1); XCTAssertEqual(h.above, 1); XCTAssertEqual(h.total, 7)
        let sorted: [Double] = [1, 2, 3, 4]
        XCTAssertEqual(Statistics.quantile(sorted: sorted, 0.5), 2.5)   // numpy.quantile([1,2,3,4], .5)
        XCTAssertEqual(Statistics.quantile(sorted: sorted, 0.25), 1.75)
        XCTAssertEqual(Statistics.quantile(sorted: sorted, 1), 4)
    }
}
