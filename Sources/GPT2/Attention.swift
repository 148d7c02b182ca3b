import Tensor

/// Causal multi-head self-attention of one block, per (sequence, head) through small sgemms spread over the cores.
extension ForwardRun {
    /// s.z = the heads' outputs, concatenated ([N, C]), for residual x.
    func attention(_ x: Matrix, _ w: BlockWeights, _ s: inout Scratch) throws {
        layerNorm(x, w.ln1Weight, w.ln1Bias, into: &s.ln)
        linear(s.ln, w.attnQKV, w.attnQKVBias, into: &s.qkv)
        let (B, T, C, H) = (B, T, C, model.config.nHead)
        s.qkv.data.withUnsafeMutableBufferPointer { qkvBuf in
            s.z.data.withUnsafeMutableBufferPointer { zBuf in
                let qkv = SharedPointer(qkvBuf.baseAddress!), z = SharedPointer(zBuf.baseAddress!)
                Parallel.runOnBLASCores { worker, workers in
                    var scores = [Float](repeating: 0, count: T * T)
                    scores.withUnsafeMutableBufferPointer { sc in
                        var job = worker
                        while job < B * H {
                            Self.attendHead(qkv: UnsafePointer(qkv.base), z: z.base, b: job / H, h: job % H,
                                            T: T, C: C, H: H, scores: sc.baseAddress!)
                            job += workers
                        }
                    }
                }
            }
        }
    }

    /// Causal attention of head h of sequence b. Query rows go in chunks so each chunk multiplies only the keys it
    /// can see (about 5/8 of the full T×T products at 4 chunks).
    private static func attendHead(qkv: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>, b: Int, h: Int,
                                   T: Int, C: Int, H: Int, scores: UnsafeMutablePointer<Float>) {
        let hs = C / H, C3 = 3 * C
        let scale = 1 / Float(hs).squareRoot()
        let base = qkv + b * T * C3 + h * hs
        let chunk = max(16, (T + 3) / 4)
        var r0 = 0
        while r0 < T {
            let r1 = min(T, r0 + chunk), rows = r1 - r0
            // scores[rows, r1] = Q[r0..<r1] · K[0..<r1]ᵀ · scale
            BLAS.sgemm(transA: false, transB: true, m: rows, n: r1, k: hs, alpha: scale,
                       a: base + r0 * C3, lda: C3, b: base + C, ldb: C3, beta: 0, c: scores, ldc: r1)
            for i in 0..<rows {
                let row = scores + i * r1, visible = r0 + i + 1
                var m = -Float.infinity
                for j in 0..<visible { m = max(m, row[j]) }
                let inv = 1 / FastMath.expShiftedSum(row, count: visible, shift: m)
                for j in 0..<visible { row[j] *= inv }
                for j in visible..<r1 { row[j] = 0 }
            }
            // z[r0..<r1, head] = P · V[0..<r1]
            BLAS.sgemm(transA: false, transB: false, m: rows, n: hs, k: r1, alpha: 1,
                       a: scores, lda: r1, b: base + 2 * C, ldb: C3, beta: 0, c: z + (b * T + r0) * C + h * hs, ldc: C)
            r0 = r1
        }
    }
}
