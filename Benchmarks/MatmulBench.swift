import COpenBLAS
import Foundation
import Tensor

/// GFLOP/s of the SAE step's products through `BLAS.gemm` and through raw `cblas_sgemm`, interleaved in the same
/// run so machine drift hits both alike. The wrapper should be within noise (goal: within 5%) of raw cblas.
func runMatmulBench(_ options: BenchOptions) throws {
    let batch = options.quick ? 512 : 4096
    let dIn = 768, dSAE = 6144
    let repeats = options.quick ? 3 : 7
    // (name, m, k, n, transA, transB): op(A) is m×k, op(B) is k×n.
    let cases: [(String, Int, Int, Int, Bool, Bool)] = [
        ("encoder x·W_enc \(batch)x\(dIn)·\(dIn)x\(dSAE)", batch, dIn, dSAE, false, false),
        ("decoder c·W_dec \(batch)x\(dSAE)·\(dSAE)x\(dIn)", batch, dSAE, dIn, false, false),
        ("grad W_dec cᵀ·e \(dSAE)x\(batch)·\(batch)x\(dIn)", dSAE, batch, dIn, true, false),
        ("grad W_enc xᵀ·dc \(dIn)x\(batch)·\(batch)x\(dSAE)", dIn, batch, dSAE, true, false),
        ("grad c e·W_decᵀ \(batch)x\(dIn)·\(dIn)x\(dSAE)", batch, dIn, dSAE, false, true),
    ]
    var rng = RNG(seed: 1)
    for (name, m, k, n, ta, tb) in cases {
        let a = ta ? rng.normalMatrix(k, m) : rng.normalMatrix(m, k)
        let b = tb ? rng.normalMatrix(n, k) : rng.normalMatrix(k, n)
        var c = Matrix(rows: m, cols: n)
        let flops = 2.0 * Double(m) * Double(k) * Double(n)
        var wrapperTimes: [Double] = [], rawTimes: [Double] = []
        BLAS.gemm(a, transA: ta, b, transB: tb, into: &c) // warm-up
        for _ in 0..<repeats {
            wrapperTimes.append(time { BLAS.gemm(a, transA: ta, b, transB: tb, into: &c) })
            rawTimes.append(time {
                a.data.withUnsafeBufferPointer { pa in b.data.withUnsafeBufferPointer { pb in c.data.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(n), Int32(k), 1, pa.baseAddress!, Int32(a.cols), pb.baseAddress!,
                                Int32(b.cols), 0, pc.baseAddress!, Int32(n))
                } } }
            })
        }
        let wrapper = flops / median(wrapperTimes) / 1e9, raw = flops / median(rawTimes) / 1e9
        BenchResult(bench: "matmul", caseName: "BLAS.gemm " + name, metric: "gflops", value: wrapper,
                    extra: ["vs_raw_cblas": (wrapper / raw * 1000).rounded() / 1000]).emit(options)
        BenchResult(bench: "matmul", caseName: "cblas_sgemm " + name, metric: "gflops", value: raw,
                    extra: ["core": BLAS.coreName]).emit(options)
    }
}

private func time(_ body: () -> Void) -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

private func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
