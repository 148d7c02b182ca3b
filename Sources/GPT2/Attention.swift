import Foundation
import Tensor

/// Causal multi-head self-attention of one block, per (sequence, head) through small sgemms spread over the cores.
extension ForwardRun {
    /// s.z = the heads' outputs, concatenated ([N, C]), from s.qkv ([N, 3C], q | k | v).
    func attention(_ s: inout Scratch) {
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

    /// Attention through materialized scores and patterns, for when either is captured or patched: scores
    /// [N, H·T] (row = query position, per head the keys, scaled by 1/√d_head, −∞ at future keys), then the softmax
    /// over each head's keys (all T of them, so a patch may unmask), then s.z = pattern · V. True when the pass can
    /// stop after one of the two hooks.
    mutating func attentionThroughPattern(scores sp: HookPoint, pattern pp: HookPoint, _ s: inout Scratch) throws -> Bool {
        let (B, T, C, H) = (B, T, C, model.config.nHead)
        let hs = C / H, C3 = 3 * C, HT = H * T
        let scale = 1 / Float(hs).squareRoot()
        var scores = Matrix(rows: N, cols: HT)
        s.qkv.data.withUnsafeBufferPointer { qkvBuf in
            scores.data.withUnsafeMutableBufferPointer { scBuf in
                let qkv = SharedPointer(UnsafeMutablePointer(mutating: qkvBuf.baseAddress!)), sc = SharedPointer(scBuf.baseAddress!)
                Parallel.runOnBLASCores { worker, workers in
                    var job = worker
                    while job < B * H {
                        let b = job / H, h = job % H
                        let base = UnsafePointer(qkv.base) + b * T * C3 + h * hs
                        let out = sc.base + b * T * HT + h * T
                        BLAS.sgemm(transA: false, transB: true, m: T, n: T, k: hs, alpha: scale,
                                   a: base, lda: C3, b: base + C, ldb: C3, beta: 0, c: out, ldc: HT)
                        for q in 0..<T { for k in (q + 1)..<max(q + 1, T) { out[q * HT + k] = -.infinity } }
                        job += workers
                    }
                }
            }
        }
        if try step(sp, &scores) { return true }
        var pattern = scores
        for r in 0..<N {
            for h in 0..<H {
                let o = r * HT + h * T
                var m = -Float.infinity
                for k in 0..<T { m = max(m, pattern.data[o + k]) }
                var sum: Float = 0
                for k in 0..<T { let e = Foundation.exp(pattern.data[o + k] - m); pattern.data[o + k] = e; sum += e }
                for k in 0..<T { pattern.data[o + k] /= sum }
            }
        }
        if try step(pp, &pattern) { return true }
        s.qkv.data.withUnsafeBufferPointer { qkvBuf in
            pattern.data.withUnsafeBufferPointer { pBuf in
                s.z.data.withUnsafeMutableBufferPointer { zBuf in
                    let qkv = SharedPointer(UnsafeMutablePointer(mutating: qkvBuf.baseAddress!))
                    let p = SharedPointer(UnsafeMutablePointer(mutating: pBuf.baseAddress!)), z = SharedPointer(zBuf.baseAddress!)
                    Parallel.runOnBLASCores { worker, workers in
                        var job = worker
                        while job < B * H {
                            let b = job / H, h = job % H
                            BLAS.sgemm(transA: false, transB: false, m: T, n: hs, k: T, alpha: 1,
                                       a: UnsafePointer(p.base) + b * T * HT + h * T, lda: HT,
                                       b: UnsafePointer(qkv.base) + b * T * C3 + 2 * C + h * hs, ldb: C3,
                                       beta: 0, c: z.base + b * T * C + h * hs, ldc: C)
                            job += workers
                        }
                    }
                }
            }
        }
        return false
    }

    /// TransformerLens's hook_result: each head's output through its rows of W_O, [N, H·C] (row: per head, d_model
    /// values), without the bias.
    func headResults(_ z: Matrix, _ wo: Matrix) -> Matrix {
        let H = model.config.nHead, hs = C / H
        var out = Matrix(rows: N, cols: H * C)
        z.data.withUnsafeBufferPointer { zp in
            wo.data.withUnsafeBufferPointer { wp in
                out.data.withUnsafeMutableBufferPointer { op in
                    for h in 0..<H {
                        BLAS.sgemm(transA: false, transB: false, m: N, n: C, k: hs, alpha: 1,
                                   a: zp.baseAddress! + h * hs, lda: C, b: wp.baseAddress! + h * hs * C, ldb: C,
                                   beta: 0, c: op.baseAddress! + h * C, ldc: H * C)
                    }
                }
            }
        }
        return out
    }

    /// out = Σ_heads result + bias: the attention output from (possibly patched) per-head results.
    func sumHeads(_ result: Matrix, bias: [Float], into out: inout Matrix) {
        let H = result.cols / C
        for r in 0..<N {
            for c in 0..<C {
                var v = bias[c]
                for h in 0..<H { v += result.data[r * H * C + h * C + c] }
                out.data[r * C + c] = v
            }
        }
    }
}

extension Matrix {
    /// Columns `range` of every row, as a new [rows, range.count] matrix.
    func columns(_ range: Range<Int>) -> Matrix {
        var out = Matrix(rows: rows, cols: range.count)
        for r in 0..<rows {
            for (j, c) in range.enumerated() { out.data[r * range.count + j] = data[r * cols + c] }
        }
        return out
    }

    /// Writes `part`'s columns into this matrix starting at column `offset`.
    mutating func setColumns(_ offset: Int, from part: Matrix) {
        precondition(part.rows == rows && offset + part.cols <= cols)
        for r in 0..<rows {
            for j in 0..<part.cols { data[r * cols + offset + j] = part.data[r * part.cols + j] }
        }
    }
}
