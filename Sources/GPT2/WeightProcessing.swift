import Tensor

/// Which numerics a loaded GPT-2 follows. `none` is Hugging Face's (TransformerLens's
/// `from_pretrained_no_processing`); `transformerLens` is what `HookedTransformer.from_pretrained` does by default:
/// fold_ln, center_writing_weights, center_unembed and fold_value_biases. The processed model computes the same
/// log-probabilities, but its residual stream is centred per token and its LayerNorm hooks carry TransformerLens's
/// LNPre values (no weight or bias), so SAEs trained on one do not fit the other.
public enum WeightProcessing: String, Sendable, CaseIterable {
    case none
    case transformerLens = "tl"

    /// TransformerLens's processing flags, as `from_pretrained` takes them.
    public static let flagNames = ["fold_ln", "center_writing_weights", "center_unembed", "fold_value_biases"]

    /// The flags as SAELens writes them in an SAE's `model_from_pretrained_kwargs`.
    public var flags: [String: Bool] {
        Dictionary(uniqueKeysWithValues: Self.flagNames.map { ($0, self == .transformerLens) })
    }

    /// The flags on which this model and an SAE's `model_from_pretrained_kwargs` disagree and that change the values
    /// at `hook` (every hook when nil). SAELens 6 loads models with `from_pretrained_no_processing(**kwargs)`, so an
    /// absent flag is off. center_unembed changes only logits (not CE, KL or any hook); fold_ln changes the LayerNorm
    /// outputs; center_writing_weights what is written to the residual stream; fold_value_biases v, z and result.
    public func mismatches(saeKwargs: [String: Bool], hook: HookPoint?) -> [String] {
        let mine = flags
        return Self.flagNames.filter { flag in
            mine[flag]! != (saeKwargs[flag] ?? false) && Self.flag(flag, changes: hook)
        }
    }

    static func flag(_ flag: String, changes hook: HookPoint?) -> Bool {
        guard let hook else { return flag != "center_unembed" }
        switch flag {
        case "fold_ln":
            if case .block(_, let k) = hook { return k == .ln1Normalized || k == .ln2Normalized }
            return hook == .lnFinal
        case "center_writing_weights":
            switch hook {
            case .embed, .posEmbed: return true
            case .block(_, let k): return [.residPre, .residMid, .residPost, .attnOut, .mlpOut, .result].contains(k)
            default: return false
            }
        case "fold_value_biases":
            if case .block(_, let k) = hook { return [.v, .z, .result].contains(k) }
            return false
        default: return false
        }
    }
}

extension GPT2Weights {
    /// These weights processed as TransformerLens's `load_and_process_state_dict` with the default flags, in its
    /// order: fold each LayerNorm into the linear map after it (then centre that map over its d_model input and set
    /// the LayerNorm to weight 1, bias 0), centre the weights writing to the residual stream (W_E, W_pos, W_O, b_O,
    /// W_out, b_out) over d_model, centre the unembedding over the vocabulary, fold the value biases into b_O.
    /// The unembedding becomes its own matrix with a bias (no longer tied to wte).
    public func processedAsTransformerLens() -> GPT2Weights {
        var w = self
        let C = tokenEmbedding.cols, V = tokenEmbedding.rows
        // fold_ln: the ln_final → unembedding fold works on W_U = wteᵀ, kept here as [V, C] rows.
        var unembed = unembedding ?? tokenEmbedding
        var unembedBias = unembeddingBias ?? [Float](repeating: 0, count: V)
        for v in 0..<V {
            var bias = Double(unembedBias[v])
            for i in 0..<C { bias += Double(lnFinalBias[i]) * Double(unembed[v, i]) }
            unembedBias[v] = Float(bias)
            var mean = 0.0
            for i in 0..<C { unembed[v, i] *= lnFinalWeight[i]; mean += Double(unembed[v, i]) }
            let m = Float(mean / Double(C))
            for i in 0..<C { unembed[v, i] -= m }
        }
        w.lnFinalWeight = Array(repeating: 1, count: C); w.lnFinalBias = Array(repeating: 0, count: C)
        for l in w.blocks.indices {
            var b = w.blocks[l]
            Self.foldLayerNorm(weight: &b.ln1Weight, bias: &b.ln1Bias, into: &b.attnQKV, &b.attnQKVBias)
            Self.foldLayerNorm(weight: &b.ln2Weight, bias: &b.ln2Bias, into: &b.mlpFC, &b.mlpFCBias)
            // center_writing_weights: every output row of W_O and W_out, and their biases, mean zero over d_model.
            Self.centerRows(&b.attnProj); Self.center(&b.attnProjBias)
            Self.centerRows(&b.mlpProj); Self.center(&b.mlpProjBias)
            w.blocks[l] = b
        }
        Self.centerRows(&w.tokenEmbedding)
        Self.centerRows(&w.positionEmbedding)
        // center_unembed: W_U [C, V] minus its mean over the vocabulary, i.e. each column of the [V, C] rows.
        for i in 0..<C {
            var mean = 0.0
            for v in 0..<V { mean += Double(unembed[v, i]) }
            let m = Float(mean / Double(V))
            for v in 0..<V { unembed[v, i] -= m }
        }
        Self.center(&unembedBias)
        // fold_value_biases: b_O += b_V · W_O (b_V flattened head-major, as the v columns of c_attn), b_V = 0.
        for l in w.blocks.indices {
            var b = w.blocks[l]
            for c in 0..<C {
                var add = 0.0
                for j in 0..<C { add += Double(b.attnQKVBias[2 * C + j]) * Double(b.attnProj[j, c]) }
                b.attnProjBias[c] += Float(add)
            }
            for j in 0..<C { b.attnQKVBias[2 * C + j] = 0 }
            w.blocks[l] = b
        }
        w.unembedding = unembed
        w.unembeddingBias = unembedBias
        return w
    }

    /// LN(x)·W + b = n·(γ ⊙ W) + (β·W + b) with n the centred, scaled input; then W is centred over its input rows
    /// (n has mean zero, so this changes nothing) and the LayerNorm becomes weight 1, bias 0.
    private static func foldLayerNorm(weight g: inout [Float], bias beta: inout [Float], into wt: inout Matrix, _ bias: inout [Float]) {
        let rows = wt.rows, cols = wt.cols
        for c in 0..<cols {
            var add = 0.0
            for i in 0..<rows { add += Double(beta[i]) * Double(wt[i, c]) }
            bias[c] += Float(add)
        }
        for i in 0..<rows { for c in 0..<cols { wt[i, c] *= g[i] } }
        for c in 0..<cols {
            var mean = 0.0
            for i in 0..<rows { mean += Double(wt[i, c]) }
            let m = Float(mean / Double(rows))
            for i in 0..<rows { wt[i, c] -= m }
        }
        g = Array(repeating: 1, count: rows); beta = Array(repeating: 0, count: rows)
    }

    private static func centerRows(_ m: inout Matrix) {
        let cols = m.cols
        for r in 0..<m.rows {
            var mean = 0.0
            for c in 0..<cols { mean += Double(m[r, c]) }
            let x = Float(mean / Double(cols))
            for c in 0..<cols { m[r, c] -= x }
        }
    }

    private static func center(_ v: inout [Float]) {
        let m = Float(v.reduce(0.0) { $0 + Double($1) } / Double(v.count))
        for i in v.indices { v[i] -= m }
    }
}
