import Foundation
import Tensor
import GPT2

/// Tokens a feature's decoder direction promotes or suppresses when read straight through the unembedding
/// (W_U = wteᵀ, GPT-2's tied embedding, or the processed model's own W_U): logits = W_U ᵀ·(γ ⊙ v) with v the decoder direction.
///
/// With `throughLayerNormScale` the direction is first multiplied by ln_final's scale γ, the part of the final
/// LayerNorm that is linear in a fixed direction; its centring and division by the norm are left out (they depend
/// on the whole residual, not on the feature), so the ranking is the "direct logit effect" up to a positive factor.
/// ln_final's bias adds the same vector to every feature's logits and is left out too.
public enum LogitLens {
    public struct Entry: Sendable, Equatable {
        public var token: Int32
        public var text: String
        public var logit: Float
    }
    public struct Result: Sendable {
        public var promoted: [Entry]      // largest logits, descending
        public var suppressed: [Entry]    // smallest logits, ascending
    }

    /// The direction `direction` (length C) through `model`'s unembedding.
    public static func compute(model: GPT2Model, direction: [Float], k: Int = 10,
                               throughLayerNormScale: Bool = true) throws -> Result {
        let wte = model.weights.unembeddingRows
        guard direction.count == wte.cols else {
            throw ActivationsError("logit lens: direction has \(direction.count) values, the model's width is \(wte.cols)")
        }
        guard k >= 1 else { throw ActivationsError("logit lens: k must be at least 1, got \(k)") }
        var v = direction
        if throughLayerNormScale { for i in v.indices { v[i] *= model.weights.lnFinalWeight[i] } }
        var logits = [Float](repeating: 0, count: wte.rows)
        BLAS.gemv(wte, v, into: &logits)
        return rank(logits: logits, k: k, tokenString: model.tokenizer.map { t in { t.tokenString($0) } })
    }

    /// Top and bottom `k` of a logit vector.
    public static func rank(logits: [Float], k: Int, tokenString: ((Int32) -> String)?) -> Result {
        var high = TopKHeap(capacity: min(k, logits.count))
        var low = TopKHeap(capacity: min(k, logits.count))
        for (i, x) in logits.enumerated() {
            high.offer(value: x, index: i)
            low.offer(value: -x, index: i)
        }
        func entry(_ i: Int) -> Entry {
            Entry(token: Int32(i), text: tokenString?(Int32(i)) ?? String(i), logit: logits[i])
        }
        return Result(promoted: high.sortedDescending().map { entry($0.index) },
                      suppressed: low.sortedDescending().map { entry($0.index) })
    }
}
