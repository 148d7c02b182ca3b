import Foundation
import XCTest
@testable import GPT2

/// The libm-free exp and GELU against Foundation over the ranges the forward pass sees.
final class FastMathTests: XCTestCase {
    func testExpMatchesFoundation() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88.3 {
            let want = Foundation.exp(Double(x)), got = Double(FastMath.exp(x))
            worst = max(worst, abs(got - want) / want)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 3e-7)
        XCTAssertEqual(FastMath.exp(-200), 0, accuracy: 1e-37)   // clamped, no NaN or denormal garbage
        XCTAssertTrue(FastMath.exp(200).isFinite)
    }

    func testGELUMatchesTanhFormula() {
        var worst: Double = 0
        var x: Float = -30
        while x < 30 {
            let d = Double(x)
            let want = 0.5 * d * (1 + tanh(0.7978845608028654 * (d + 0.044715 * d * d * d)))
            worst = max(worst, abs(Double(FastMath.gelu(x)) - want) / max(1, abs(want)))
            x += 0.0071
        }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(FastMath.gelu(-100), 0, accuracy: 1e-30)
        XCTAssertEqual(FastMath.gelu(100), 100)
    }

    func testCausalSoftmaxSumsAreExact() {
        var row: [Float] = [1, 2, 3, -1]
        let s = row.withUnsafeMutableBufferPointer { FastMath.expShiftedSum($0.baseAddress!, count: 4, shift: 3) }
        let want = [1, 2, 3, -1].map { Foundation.exp(Double($0) - 3) }
        XCTAssertEqual(Double(s), want.reduce(0, +), accuracy: 1e-6)
        for i in 0..<4 { XCTAssertEqual(Double(row[i]), want[i], accuracy: 1e-7) }
    }
}
