import XCTest
import Foundation
import Tensor
@testable import SAE

/// NSAE's tanh (PositiveTanh) against double-precision tanh rounded to float32, over positive inputs from 1e-38 to
/// 1e4: within one float32 ulp everywhere (in practice the correctly rounded value), positive for every positive
/// input, exactly 1 where tanh rounds to 1; and the eight-lane and one-value forms give the same numbers.
final class PositiveTanhTests: XCTestCase {
    func testMatchesDoubleTanhWithinOneUlp() {
        var inputs: [Float] = [Float.leastNormalMagnitude, 1e-30, 1e-10, 9.9999e-5, 1e-4, 1.00001e-4, 0.5, 9, 9.1, 20, 30, 1e4]
        var x: Float = 1e-38
        while x < 1e4 { inputs.append(x); x *= 1.0007 }
        var rng = RNG(seed: 5)
        for _ in 0..<20_000 { inputs.append(abs(rng.normal()) * 3 + 1e-7) }
        var worst = 0, exact = 0
        var out = inputs
        out.withUnsafeMutableBufferPointer { PositiveTanh.apply($0.baseAddress!, $0.count) }
        for (i, v) in inputs.enumerated() {
            let reference = Float(Foundation.tanh(Double(v)))
            let got = out[i]
            XCTAssertGreaterThan(got, 0, "tanh(\(v))")
            let ulps = abs(Int(got.bitPattern) - Int(reference.bitPattern))
            worst = max(worst, ulps)
            if ulps == 0 { exact += 1 }
            XCTAssertLessThanOrEqual(ulps, 1, "tanh(\(v)) = \(got), double tanh rounds to \(reference)")
            XCTAssertEqual(PositiveTanh.of(v), got, "one value vs eight lanes at \(v)")
        }
        XCTAssertGreaterThan(Double(exact) / Double(inputs.count), 0.999, "correctly rounded but for rare inputs (worst \(worst) ulp)")
        XCTAssertEqual(PositiveTanh.of(9.1), 1)
        XCTAssertEqual(PositiveTanh.of(.infinity), 1)
    }
}
