import XCTest
@testable import Tensor

/// Matrix products against a naive triple loop in Double, for every transpose combination and odd shapes.
final class BLASTests: XCTestCase {
    func naive(_ a: Matrix, _ ta: Bool, _ b: Matrix, _ tb: Bool) -> [Double] {
        let m = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols, n = tb ? b.rows : b.cols
        var out = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let av = ta ? a[p, i] : a[i, p]
                let bv = tb ? b[j, p] : b[p, j]
                s += Double(av) * Double(bv)
            }
            out[i * n + j] = s
        } }
        return out
    }

    func testGemmAllTransposeCombinationsAndOddShapes() {
        var rng = RNG(seed: 7)
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (257, 129, 65), (2, 1, 3)] {
            for ta in [false, true] { for tb in [false, true] {
                let a = ta ? rng.normalMatrix(k, m) : rng.normalMatrix(m, k)
                let b = tb ? rng.normalMatrix(n, k) : rng.normalMatrix(k, n)
                var c = Matrix(rows: m, cols: n)
                BLAS.gemm(a, transA: ta, b, transB: tb, into: &c)
                let ref = naive(a, ta, b, tb)
                for i in 0..<(m * n) {
                    XCTAssertEqual(Double(c.data[i]), ref[i], accuracy: 1e-4 * (1 + abs(ref[i])),
                                   "m=\(m) k=\(k) n=\(n) ta=\(ta) tb=\(tb) at \(i)")
                }
            } }
        }
    }

    func testGemmAccumulatesWithBetaAndScalesWithAlpha() {
        var rng = RNG(seed: 3)
        let a = rng.normalMatrix(4, 6), b = rng.normalMatrix(6, 5)
        let c0 = rng.normalMatrix(4, 5)
        var c = c0
        BLAS.gemm(a, b, into: &c, alpha: 2, beta: 0.5)
        let ref = naive(a, false, b, false)
        for i in 0..<20 {
            XCTAssertEqual(Double(c.data[i]), 2 * ref[i] + 0.5 * Double(c0.data[i]), accuracy: 1e-4)
        }
    }

    func testGemmWithEmptyInnerDimensionScalesOutput() {
        let a = Matrix(rows: 3, cols: 0), b = Matrix(rows: 0, cols: 2)
        var c = Matrix(rows: 3, cols: 2, repeating: 4)
        BLAS.gemm(a, b, into: &c, beta: 0.5)
        XCTAssertEqual(c.data, [Float](repeating: 2, count: 6))
        BLAS.gemm(a, b, into: &c)
        XCTAssertEqual(c.data, [Float](repeating: 0, count: 6))
    }

    func testRawSgemmOnSubBlocksUsesLeadingDimensions() {
        // Multiply the top-left 2x3 block of a 4x5 matrix by a 3x2 block of a 3x4 matrix.
        var rng = RNG(seed: 11)
        let a = rng.normalMatrix(4, 5), b = rng.normalMatrix(3, 4)
        var c = [Float](repeating: 0, count: 2 * 2)
        a.data.withUnsafeBufferPointer { pa in b.data.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            BLAS.sgemm(transA: false, transB: false, m: 2, n: 2, k: 3, a: pa.baseAddress!, lda: 5,
                       b: pb.baseAddress!, ldb: 4, c: pc.baseAddress!, ldc: 2)
        } } }
        for i in 0..<2 { for j in 0..<2 {
            var s: Float = 0
            for p in 0..<3 { s += a[i, p] * b[p, j] }
            XCTAssertEqual(c[i * 2 + j], s, accuracy: 1e-5)
        } }
    }

    func testGemvBothOrientations() {
        var rng = RNG(seed: 5)
        let a = rng.normalMatrix(7, 3)
        let x3 = (0..<3).map { _ in rng.normal() }, x7 = (0..<7).map { _ in rng.normal() }
        var y7 = [Float](repeating: 1, count: 7), y3 = [Float](repeating: 0, count: 3)
        BLAS.gemv(a, x3, into: &y7, beta: 1)
        BLAS.gemv(a, trans: true, x7, into: &y3)
        for i in 0..<7 {
            var s: Float = 1
            for j in 0..<3 { s += a[i, j] * x3[j] }
            XCTAssertEqual(y7[i], s, accuracy: 1e-5)
        }
        for j in 0..<3 {
            var s: Float = 0
            for i in 0..<7 { s += a[i, j] * x7[i] }
            XCTAssertEqual(y3[j], s, accuracy: 1e-5)
        }
    }

    func testMatmulAndTransposeAgree() {
        var rng = RNG(seed: 9)
        let a = rng.normalMatrix(5, 4), b = rng.normalMatrix(5, 3)
        let viaFlag = BLAS.matmul(a, transA: true, b)
        let viaCopy = BLAS.matmul(a.transposed(), b)
        for i in 0..<viaFlag.count { XCTAssertEqual(viaFlag.data[i], viaCopy.data[i], accuracy: 1e-5) }
    }

    /// BLAS.pool: after a two-thread product OpenBLAS's idle worker sleeps within a millisecond instead of spinning
    /// on sched_yield for ~0.1 s beside the step's own work (measured before: 77–100 ms of process CPU in the 100 ms
    /// after a 1024² product; after: ~0.5 ms), and the environment nsae's children inherit is left as it was.
    func testIdleWorkersSleepSoonAfterAProduct() throws {
        if ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] != nil {
            throw XCTSkip("OPENBLAS_THREAD_TIMEOUT is set in this environment; BLAS.pool leaves it to the user")
        }
        XCTAssertEqual(BLAS.idleSpinLog2Cycles, 20)
        XCTAssertNil(getenv("OPENBLAS_THREAD_TIMEOUT"), "the setting must not leak into the processes nsae starts")
        let saved = BLAS.threads
        BLAS.setThreads(2)
        defer { BLAS.setThreads(saved) }
        XCTAssertEqual(BLAS.threads, 2, "the pool restarts with the thread count it had")
        var rng = RNG(seed: 3)
        let a = rng.normalMatrix(1024, 1024)
        var c = Matrix(rows: 1024, cols: 1024)
        var idle: [Double] = []
        for _ in 0..<3 {
            BLAS.gemm(a, a, into: &c)
            let before = ProcessStats.cpuSeconds()
            Thread.sleep(forTimeInterval: 0.1)
            idle.append(ProcessStats.cpuSeconds() - before)
        }
        XCTAssertLessThan(idle.min()!, 0.03, "process CPU in the 100 ms after each product, s: \(idle)")
    }
}
