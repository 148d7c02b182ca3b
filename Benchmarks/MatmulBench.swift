import Foundation
import Tensor

/// Placeholder until the Tensor benchmark lands: GFLOP/s of the wrapper on one SAE shape.
func runMatmulBench(_ options: BenchOptions) throws {
    var rng = RNG(seed: 1)
    let a = rng.normalMatrix(options.quick ? 512 : 4096, 768)
    let b = rng.normalMatrix(768, 6144)
    var c = Matrix(rows: a.rows, cols: b.cols)
    let s = medianSeconds(repeats: 3) { BLAS.gemm(a, b, into: &c) }
    BenchResult(bench: "matmul", caseName: "wrapper \(a.rows)x768·768x6144", metric: "gflops",
                value: 2.0 * Double(a.rows) * 768 * 6144 / s / 1e9).emit(options)
}
