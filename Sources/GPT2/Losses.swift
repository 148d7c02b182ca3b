import Foundation
import Tensor

/// Next-token cross-entropy and KL divergence, streamed row by row over logits [B·T, V] (no extra [B·T, V] copies).
/// Natural log; each row's log-sum-exp is computed with the max subtracted and summed in double precision.
public enum Losses {
    /// −log softmax(logits[b, t])[tokens[b, t+1]] for t < T−1, as [B·(T−1)] (entry b·(T−1) + t).
    public static func crossEntropy(logits: Matrix, tokens: [Int32], batch: Int, seqLen: Int) throws -> [Float] {
        guard logits.rows == batch * seqLen, tokens.count == batch * seqLen else {
            throw GPT2Error("crossEntropy: logits have \(logits.rows) rows and there are \(tokens.count) tokens, expected batch \(batch) × seqLen \(seqLen) = \(batch * seqLen) each")
        }
        let V = logits.cols
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= V }) {
            throw GPT2Error("crossEntropy: token id \(tokens[bad]) at position \(bad) is outside the \(V) logit columns")
        }
        var out = [Float](repeating: 0, count: batch * max(0, seqLen - 1))
        logits.data.withUnsafeBufferPointer { lp in
            for b in 0..<batch {
                for t in 0..<max(0, seqLen - 1) {
                    let row = lp.baseAddress! + (b * seqLen + t) * V
                    let target = Int(tokens[b * seqLen + t + 1])
                    out[b * (seqLen - 1) + t] = Float(logSumExp(row, V) - Double(row[target]))
                }
            }
        }
        return out
    }

    /// Mean next-token cross-entropy; with `excludingInputToken` (e.g. BOS), predictions made at positions whose
    /// input token is that id are left out, as SAELens evals do.
    public static func meanCrossEntropy(logits: Matrix, tokens: [Int32], batch: Int, seqLen: Int,
                                        excludingInputToken skip: Int32? = nil) throws -> Float {
        let ce = try crossEntropy(logits: logits, tokens: tokens, batch: batch, seqLen: seqLen)
        var sum = 0.0, n = 0
        for b in 0..<batch {
            for t in 0..<max(0, seqLen - 1) where skip == nil || tokens[b * seqLen + t] != skip! {
                sum += Double(ce[b * (seqLen - 1) + t]); n += 1
            }
        }
        return n == 0 ? .nan : Float(sum / Double(n))
    }

    /// KL(P_clean ‖ P_patched) per row, summed over the vocabulary: Σ_v p_v (log p_v − log q_v).
    public static func klDivergence(clean: Matrix, patched: Matrix) throws -> [Float] {
        guard clean.rows == patched.rows && clean.cols == patched.cols else {
            throw GPT2Error("klDivergence: clean logits are [\(clean.rows), \(clean.cols)], patched are [\(patched.rows), \(patched.cols)]")
        }
        let V = clean.cols
        var out = [Float](repeating: 0, count: clean.rows)
        clean.data.withUnsafeBufferPointer { cp in
            patched.data.withUnsafeBufferPointer { pp in
                for r in 0..<clean.rows {
                    out[r] = Float(klRow(cp.baseAddress! + r * V, pp.baseAddress! + r * V, V))
                }
            }
        }
        return out
    }

    /// Mean of `values` over the rows where `include` is true (all rows when nil).
    public static func mean(_ values: [Float], include: [Bool]? = nil) -> Float {
        var sum = 0.0, n = 0
        for (i, v) in values.enumerated() where include?[i] ?? true { sum += Double(v); n += 1 }
        return n == 0 ? .nan : Float(sum / Double(n))
    }

    static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        if m == -.infinity { return -.infinity }
        return Double(m) + log(sumExp(x, n, shift: m, weights: nil, offset: 0))
    }

    /// Σ exp(x_i − shift)·(w_i − offset) (or Σ exp(x_i − shift) without weights), in float blocks of 64 added in
    /// double: four independent partial sums per block keep it fast, the double total keeps 50257 terms accurate.
    static func sumExp(_ x: UnsafePointer<Float>, _ n: Int, shift: Float, weights w: UnsafePointer<Float>?, offset: Float) -> Double {
        var total = 0.0
        var i = 0
        while i < n {
            let end = min(n, i + 64)
            var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
            var k = i
            if let w {
                while k + 4 <= end {
                    s0 += FastMath.exp(x[k] - shift) * (w[k] - offset); s1 += FastMath.exp(x[k + 1] - shift) * (w[k + 1] - offset)
                    s2 += FastMath.exp(x[k + 2] - shift) * (w[k + 2] - offset); s3 += FastMath.exp(x[k + 3] - shift) * (w[k + 3] - offset)
                    k += 4
                }
                while k < end { s0 += FastMath.exp(x[k] - shift) * (w[k] - offset); k += 1 }
            } else {
                while k + 4 <= end {
                    s0 += FastMath.exp(x[k] - shift); s1 += FastMath.exp(x[k + 1] - shift)
                    s2 += FastMath.exp(x[k + 2] - shift); s3 += FastMath.exp(x[k + 3] - shift)
                    k += 4
                }
                while k < end { s0 += FastMath.exp(x[k] - shift); k += 1 }
            }
            total += Double((s0 + s1) + (s2 + s3))
            i = end
        }
        return total
    }

    /// KL(p ‖ q) for one row = Σ p_v ((a_v − b_v) − (lse_a − lse_b)) with p = softmax(a), q = softmax(b).
    static func klRow(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        let lseA = logSumExp(a, n), lseB = logSumExp(b, n)
        // Expanding Σ p_v·a_v − Σ p_v·b_v would cancel badly for nearby rows; take a_v − b_v per element instead.
        var total = 0.0
        var i = 0
        let shift = Float(lseA), delta = Float(lseA - lseB)
        let correction = Foundation.exp(Double(shift) - lseA)  // undoes rounding lse_a to float for the shift
        var diff = [Float](repeating: 0, count: 64)
        diff.withUnsafeMutableBufferPointer { d in
            while i < n {
                let end = min(n, i + 64)
                for k in i..<end { d[k - i] = a[k] - b[k] }
                total += sumExp(a + i, end - i, shift: shift, weights: UnsafePointer(d.baseAddress!), offset: delta)
                i = end
            }
        }
        return total * correction
    }
}
