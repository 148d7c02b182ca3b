import Foundation
import Tensor

/// Next-token cross-entropy and KL divergence, streamed row by row over logits [B·T, V] (no extra [B·T, V] copies).
/// Natural log; each row's log-sum-exp is computed with the max subtracted and summed in double precision.
public enum Losses {
    /// −log softmax(logits[b, t])[tokens[b, t+1]] for t < T−1, as [B·(T−1)] (entry b·(T−1) + t).
    public static func crossEntropy(logits: Matrix, tokens: [Int32], batch: Int, seqLen: Int) throws -> [Float] {
        try crossEntropy(logits: logits, logSumExp: rowLogSumExp(logits), tokens: tokens, batch: batch, seqLen: seqLen)
    }

    /// Cross-entropy from the rows' log-sum-exp already computed (see `rowLogSumExp`): no pass over the vocabulary.
    public static func crossEntropy(logits: Matrix, logSumExp lse: [Double], tokens: [Int32], batch: Int, seqLen: Int) throws -> [Float] {
        guard logits.rows == batch * seqLen, tokens.count == batch * seqLen, lse.count == logits.rows else {
            throw GPT2Error("crossEntropy: logits have \(logits.rows) rows, \(lse.count) log-sum-exps and \(tokens.count) tokens, expected batch \(batch) × seqLen \(seqLen) = \(batch * seqLen) each")
        }
        let V = logits.cols
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= V }) {
            throw GPT2Error("crossEntropy: token id \(tokens[bad]) at position \(bad) is outside the \(V) logit columns")
        }
        var out = [Float](repeating: 0, count: batch * max(0, seqLen - 1))
        logits.data.withUnsafeBufferPointer { lp in
            for b in 0..<batch {
                for t in 0..<max(0, seqLen - 1) {
                    let row = b * seqLen + t
                    let target = Int(tokens[row + 1])
                    out[b * (seqLen - 1) + t] = Float(lse[row] - Double(lp[row * V + target]))
                }
            }
        }
        return out
    }

    /// log Σ_v exp(logits[r, v]) for every row r, rows split over the cores.
    public static func rowLogSumExp(_ logits: Matrix) -> [Double] {
        let V = logits.cols
        var out = [Double](repeating: 0, count: logits.rows)
        logits.data.withUnsafeBufferPointer { lp in
            out.withUnsafeMutableBufferPointer { op in
                let source = SharedPointer(UnsafeMutablePointer(mutating: lp.baseAddress!)), target = SharedPointer(op.baseAddress!)
                forEachRow(logits.rows) { r in target.base[r] = logSumExp(source.base + r * V, V) }
            }
        }
        return out
    }

    /// Next-token CE of `patched` and KL(clean ‖ patched) per row in one pass over the patched logits, reusing the
    /// clean rows' log-sum-exp: splice evaluation scores several patched runs against one clean run.
    public static func crossEntropyAndKL(clean: Matrix, cleanLogSumExp: [Double], patched: Matrix, tokens: [Int32],
                                         batch: Int, seqLen: Int) throws -> (ce: [Float], kl: [Float]) {
        guard clean.rows == patched.rows && clean.cols == patched.cols, cleanLogSumExp.count == clean.rows else {
            throw GPT2Error("crossEntropyAndKL: clean logits are [\(clean.rows), \(clean.cols)] with \(cleanLogSumExp.count) log-sum-exps, patched are [\(patched.rows), \(patched.cols)]")
        }
        guard patched.rows == batch * seqLen, tokens.count == batch * seqLen else {
            throw GPT2Error("crossEntropyAndKL: logits have \(patched.rows) rows and there are \(tokens.count) tokens, expected batch \(batch) × seqLen \(seqLen) = \(batch * seqLen) each")
        }
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= patched.cols }) {
            throw GPT2Error("crossEntropyAndKL: token id \(tokens[bad]) at position \(bad) is outside the \(patched.cols) logit columns")
        }
        let patchedLSE = rowLogSumExp(patched)
        let kl = klRows(clean: clean, cleanLSE: cleanLogSumExp, patched: patched, patchedLSE: patchedLSE)
        return (try crossEntropy(logits: patched, logSumExp: patchedLSE, tokens: tokens, batch: batch, seqLen: seqLen), kl)
    }

    private static func klRows(clean: Matrix, cleanLSE: [Double], patched: Matrix, patchedLSE: [Double]) -> [Float] {
        let V = clean.cols
        var kl = [Float](repeating: 0, count: clean.rows)
        clean.data.withUnsafeBufferPointer { cp in
            patched.data.withUnsafeBufferPointer { pp in
                kl.withUnsafeMutableBufferPointer { kp in
                    let a = SharedPointer(UnsafeMutablePointer(mutating: cp.baseAddress!))
                    let b = SharedPointer(UnsafeMutablePointer(mutating: pp.baseAddress!))
                    let out = SharedPointer(kp.baseAddress!)
                    forEachRow(clean.rows) { r in
                        out.base[r] = Float(klRow(a.base + r * V, b.base + r * V, V, lseA: cleanLSE[r], lseB: patchedLSE[r]))
                    }
                }
            }
        }
        return kl
    }

    /// Runs `body(row)` for rows 0..<rows, split into contiguous ranges over the cores.
    private static func forEachRow(_ rows: Int, _ body: @Sendable (Int) -> Void) {
        guard rows > 1 else { if rows == 1 { body(0) }; return }
        Parallel.runOnBLASCores { worker, workers in
            for r in Parallel.slice(rows, part: worker, of: workers) { body(r) }
        }
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
        return klRows(clean: clean, cleanLSE: rowLogSumExp(clean), patched: patched, patchedLSE: rowLogSumExp(patched))
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
    /// double: each block's terms go through a small buffer in plain loops the optimizer vectorizes, and are summed
    /// in eight lanes; the double total keeps 50257 terms accurate.
    static func sumExp(_ x: UnsafePointer<Float>, _ n: Int, shift: Float, weights w: UnsafePointer<Float>?, offset: Float) -> Double {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { buffer in
            let terms = buffer.baseAddress!
            var total = 0.0
            var i = 0
            while i < n {
                let count = min(64, n - i)
                let xs = x + i
                for k in 0..<count { terms[k] = FastMath.exp(xs[k] - shift) }
                if let w {
                    let ws = w + i
                    for k in 0..<count { terms[k] *= ws[k] - offset }
                }
                var lanes = SIMD8<Float>.zero
                var k = 0
                while k + 8 <= count {
                    lanes += UnsafeRawPointer(terms + k).loadUnaligned(as: SIMD8<Float>.self)
                    k += 8
                }
                var rest: Float = 0
                while k < count { rest += terms[k]; k += 1 }
                total += Double(lanes.sum() + rest)
                i += count
            }
            return total
        }
    }

    /// KL(p ‖ q) for one row = Σ p_v ((a_v − b_v) − (lse_a − lse_b)) with p = softmax(a), q = softmax(b).
    static func klRow(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, lseA: Double, lseB: Double) -> Double {
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
