import COpenBLAS
import Foundation

/// Matrix products on OpenBLAS. Every product writes into caller-provided output: C = alpha·op(A)·op(B) + beta·C.
public enum BLAS {
    /// Raw row-major sgemm over pointers, for callers that multiply sub-blocks of larger buffers.
    /// op(A) is m×k, op(B) is k×n, C is m×n; lda/ldb/ldc are the row strides of A, B, C as stored.
    @inlinable
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        _ = pool
        if k == 0 {
            // BLAS leaves C scaled by beta when k == 0; make that explicit (some builds skip it).
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// c = alpha·op(a)·op(b) + beta·c. `c` must already have the result's shape.
    public static func gemm(_ a: Matrix, transA: Bool = false, _ b: Matrix, transB: Bool = false,
                            into c: inout Matrix, alpha: Float = 1, beta: Float = 0) {
        let m = transA ? a.cols : a.rows
        let k = transA ? a.rows : a.cols
        let kb = transB ? b.cols : b.rows
        let n = transB ? b.rows : b.cols
        precondition(k == kb, "gemm: inner dimensions differ (\(a.rows)x\(a.cols)\(transA ? "ᵀ" : "") · \(b.rows)x\(b.cols)\(transB ? "ᵀ" : ""))")
        precondition(c.rows == m && c.cols == n, "gemm: output is \(c.rows)x\(c.cols), expected \(m)x\(n)")
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                c.data.withUnsafeMutableBufferPointer { pc in
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                          a: pa.baseAddress!, lda: max(a.cols, 1), b: pb.baseAddress!, ldb: max(b.cols, 1),
                          beta: beta, c: pc.baseAddress!, ldc: max(n, 1))
                }
            }
        }
    }

    /// Allocating convenience for tests and cold paths: op(a)·op(b).
    public static func matmul(_ a: Matrix, transA: Bool = false, _ b: Matrix, transB: Bool = false) -> Matrix {
        var c = Matrix(rows: transA ? a.cols : a.rows, cols: transB ? b.rows : b.cols)
        gemm(a, transA: transA, b, transB: transB, into: &c)
        return c
    }

    /// y = alpha·op(a)·x + beta·y.
    public static func gemv(_ a: Matrix, trans: Bool = false, _ x: [Float], into y: inout [Float],
                            alpha: Float = 1, beta: Float = 0) {
        let rowsOut = trans ? a.cols : a.rows
        let inner = trans ? a.rows : a.cols
        precondition(x.count == inner, "gemv: vector has \(x.count) values, expected \(inner)")
        precondition(y.count == rowsOut, "gemv: output has \(y.count) values, expected \(rowsOut)")
        if rowsOut == 0 { return }
        _ = pool
        if inner == 0 { for i in 0..<rowsOut { y[i] = beta == 0 ? 0 : beta * y[i] }; return }
        a.data.withUnsafeBufferPointer { pa in
            x.withUnsafeBufferPointer { px in
                y.withUnsafeMutableBufferPointer { py in
                    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(a.rows), Int32(a.cols),
                                alpha, pa.baseAddress!, Int32(max(a.cols, 1)), px.baseAddress!, 1, beta,
                                py.baseAddress!, 1)
                }
            }
        }
    }

    /// Threads OpenBLAS uses; overrides OPENBLAS_NUM_THREADS.
    public static func setThreads(_ n: Int) { _ = pool; openblas_set_num_threads(Int32(max(1, n))) }
    public static var threads: Int { _ = pool; return Int(openblas_get_num_threads()) }

    /// OpenBLAS's thread pool, set up once before the first product. Its idle workers spin on sched_yield for
    /// 2^THREAD_TIMEOUT cycles after each product before they sleep, 2^28 (~0.1 s) by default: between the SAE
    /// step's products (tens of milliseconds of elementwise work on both cores) a spinning worker took a share of
    /// the cores (__schedule and sched_yield were 10% of the perf samples of the nsae 768→6144 dense step; a 1024²
    /// product left a worker burning 77–100 ms of CPU in the following 100 ms). 2^20 cycles (~0.4 ms) keeps
    /// back-to-back products' hand-off warm and frees the cores within a millisecond (0.5 ms of CPU afterwards).
    /// OpenBLAS reads the timeout only from the environment when it starts its threads, so it is set, read,
    /// unset again (the peers and tools nsae starts get their own default) and the pool restarted with the same
    /// thread count. A user's own OPENBLAS_THREAD_TIMEOUT is left as it is.
    @usableFromInline static let pool: Void = {
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
        let threads = openblas_get_num_threads()
        setenv("OPENBLAS_THREAD_TIMEOUT", "20", 1)
        openblas_read_env()
        unsetenv("OPENBLAS_THREAD_TIMEOUT")
        _ = blas_thread_shutdown_()
        openblas_set_num_threads(threads)
    }()

    /// log2 of the cycles OpenBLAS's idle workers spin before they sleep (0: its compiled-in default, 2^28).
    public static var idleSpinLog2Cycles: Int { _ = pool; return Int(openblas_thread_timeout()) }
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
