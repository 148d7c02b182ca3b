import Foundation
import XCTest
@testable import Tensor

/// Each kernel against a scalar reference computed in Double, including extreme inputs.
final class KernelTests: XCTestCase {
    let inputs: [Float] = [-1e30, -100, -20, -3.5, -1, -1e-7, 0, 1e-7, 0.5, 1, 3.5, 20, 88, 100, 1e30]

    func apply(_ values: [Float], _ kernel: (UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
        var v = values
        v.withUnsafeMutableBufferPointer { kernel($0.baseAddress!, $0.count) }
        return v
    }

    func testTanhSaturatesAndMatchesReference() {
        let out = apply(inputs) { Kernels.tanh($0, count: $1) }
        for (x, y) in zip(inputs, out) {
            XCTAssertFalse(y.isNaN, "tanh(\(x)) is NaN")
            XCTAssertEqual(Double(y), Foundation.tanh(Double(x)), accuracy: 1e-6, "tanh(\(x))")
        }
    }

    func testExpOverflowsToInfinityAndUnderflowsToZero() {
        let out = apply(inputs) { Kernels.exp($0, count: $1) }
        for (x, y) in zip(inputs, out) {
            let ref = Foundation.exp(Double(x))
            if ref > Double(Float.greatestFiniteMagnitude) { XCTAssertEqual(y, .infinity) }
            else { XCTAssertEqual(Double(y), ref, accuracy: 1e-6 * max(1, ref), "exp(\(x))") }
        }
    }

    func testReluAndGeluTanhApproximation() {
        let r = apply(inputs) { Kernels.relu($0, count: $1) }
        XCTAssertEqual(r, inputs.map { max($0, 0) })
        let moderate: [Float] = [-20, -3, -1, -0.1, 0, 0.1, 1, 3, 20]
        let g = apply(moderate) { Kernels.gelu($0, count: $1) }
        for (x, y) in zip(moderate, g) {
            let d = Double(x)
            let ref = 0.5 * d * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
            XCTAssertEqual(Double(y), ref, accuracy: 1e-5, "gelu(\(x))")
        }
    }

    func testElementwiseArithmetic() {
        let a: [Float] = [1, 2, 3], b: [Float] = [4, -5, 6]
        var out = [Float](repeating: 0, count: 3)
        out.withUnsafeMutableBufferPointer { Kernels.add(a, b, $0.baseAddress!, count: 3) }
        XCTAssertEqual(out, [5, -3, 9])
        out.withUnsafeMutableBufferPointer { Kernels.sub(a, b, $0.baseAddress!, count: 3) }
        XCTAssertEqual(out, [-3, 7, -3])
        out.withUnsafeMutableBufferPointer { Kernels.mul(a, b, $0.baseAddress!, count: 3) }
        XCTAssertEqual(out, [4, -10, 18])
        out.withUnsafeMutableBufferPointer { Kernels.scale($0.baseAddress!, 0.5, count: 3) }
        XCTAssertEqual(out, [2, -5, 9])
        out.withUnsafeMutableBufferPointer { Kernels.axpy(2, a, $0.baseAddress!, count: 3) }
        XCTAssertEqual(out, [4, -1, 15])
        XCTAssertEqual(Kernels.sum(a, count: 3), 6)
        XCTAssertEqual(Kernels.dot(a, b, count: 3), 12)
        XCTAssertEqual(Kernels.l1norm(b, count: 3), 15)
        XCTAssertEqual(Kernels.l2norm([3, 4], count: 2), 5)
    }

    func testRowWiseReductionsAndBias() {
        var m: [Float] = [1, -2, 3, 4, 0, -1]  // 2x3
        var l1 = [Float](repeating: 0, count: 2), l2 = [Float](repeating: 0, count: 2), cs = [Float](repeating: 0, count: 3)
        Kernels.rowL1Norms(m, rows: 2, cols: 3, into: &l1)
        Kernels.rowL2Norms(m, rows: 2, cols: 3, into: &l2)
        Kernels.columnSums(m, rows: 2, cols: 3, into: &cs)
        XCTAssertEqual(l1, [6, 5])
        XCTAssertEqual(l2[0], Float(14).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(l2[1], Float(17).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(cs, [5, -2, 2])
        Kernels.columnSums(m, rows: 2, cols: 3, into: &cs, accumulate: true)
        XCTAssertEqual(cs, [10, -4, 4])
        m.withUnsafeMutableBufferPointer { Kernels.addRowVector($0.baseAddress!, rows: 2, cols: 3, [10, 20, 30]) }
        XCTAssertEqual(m, [11, 18, 33, 14, 20, 29])
    }

    func testSoftmaxAndLogSoftmaxAreStableForHugeLogits() {
        let row: [Float] = [1000, 1001, 1002, -1000]
        let sm = apply(row) { Kernels.softmaxRows($0, rows: 1, cols: $1) }
        let lsm = apply(row) { Kernels.logSoftmaxRows($0, rows: 1, cols: $1) }
        let dr = row.map(Double.init)
        let mx = dr.max()!
        let lse = mx + Foundation.log(dr.map { Foundation.exp($0 - mx) }.reduce(0, +))
        for i in 0..<row.count {
            XCTAssertFalse(sm[i].isNaN || lsm[i].isNaN)
            XCTAssertEqual(Double(sm[i]), Foundation.exp(dr[i] - lse), accuracy: 1e-6)
            if dr[i] > -500 { XCTAssertEqual(Double(lsm[i]), dr[i] - lse, accuracy: 1e-4) }
        }
        XCTAssertEqual(Double(sm.reduce(0, +)), 1, accuracy: 1e-6)
        // Two rows processed independently.
        let two = apply([0, 0, 1, 3]) { p, _ in Kernels.softmaxRows(p, rows: 2, cols: 2) }
        XCTAssertEqual(two[0], 0.5, accuracy: 1e-7)
        XCTAssertEqual(Double(two[3]), 1 / (1 + Foundation.exp(-2.0)), accuracy: 1e-6)
    }

    func testLayerNormBiasedVarianceEps() {
        let x: [Float] = [1, 2, 3, 4, 10, 10, 10, 10]
        let gamma: [Float] = [1, 2, 1, 1], beta: [Float] = [0, 0, 1, 0]
        var out = [Float](repeating: 0, count: 8)
        Kernels.layerNorm(x, rows: 2, cols: 4, gamma: gamma, beta: beta, into: &out)
        let mean = 2.5, variance = 1.25
        for c in 0..<4 {
            let ref = (Double(x[c]) - mean) / (variance + 1e-5).squareRoot() * Double(gamma[c]) + Double(beta[c])
            XCTAssertEqual(Double(out[c]), ref, accuracy: 1e-5)
        }
        // A constant row normalizes to beta (variance 0, eps keeps it finite).
        XCTAssertEqual(Array(out[4...]), [0, 0, 1, 0])
    }

    func testArgmaxAndTopKAgainstSorting() {
        var rng = RNG(seed: 2)
        let v = (0..<1000).map { _ in rng.normal() }
        XCTAssertEqual(Kernels.argmax(v, count: v.count), v.indices.max { v[$0] < v[$1] })
        let top = Kernels.topK(v, count: v.count, k: 10)
        let ref = v.indices.sorted { v[$0] > v[$1] }.prefix(10)
        XCTAssertEqual(top, Array(ref))
        XCTAssertEqual(Kernels.topK([1, 5, 5, 2], count: 4, k: 2), [1, 2], "ties go to the lower index")
        XCTAssertEqual(Kernels.topK([1, 2], count: 2, k: 5), [1, 0])
        XCTAssertEqual(Kernels.argmax([Float](), count: 0), -1)
    }

    func testLogSumExpOfAllNegativeInfinity() {
        XCTAssertEqual(Kernels.logSumExp([-Float.infinity, -Float.infinity], count: 2), -.infinity)
    }
}
