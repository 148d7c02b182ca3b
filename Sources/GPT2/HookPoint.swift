/// Hook points with TransformerLens names. Every value flowing through the forward pass at one of these points can
/// be captured (copied out) or patched (replaced) — one mechanism, as in TransformerLens' `hook_points.py`. This
/// type is the one naming scheme: it parses every accepted spelling and prints the TransformerLens name.
///
/// Values are [B·T, width] matrices, one row per (sequence, position), batch-major; `width(_:seqLen:)` gives the
/// width. Per-head values keep TransformerLens's memory order within a row: q, k, v and z are [head, d_head]
/// (TransformerLens [pos, head, d_head]); hook_result is [head, d_model]; attention scores and patterns are
/// [head, key position] for the row's query position (TransformerLens [head, q, k] with the query moved to the row);
/// scores at future keys are −∞ as in TransformerLens's causal mask.
public enum HookPoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Per-block hook kinds, in the order the forward pass reaches them; the raw value is the name within the block.
    public enum Kind: String, CaseIterable, Sendable {
        case residPre = "hook_resid_pre"
        case ln1Scale = "ln1.hook_scale", ln1Normalized = "ln1.hook_normalized"
        case q = "attn.hook_q", k = "attn.hook_k", v = "attn.hook_v"
        case attnScores = "attn.hook_attn_scores", pattern = "attn.hook_pattern"
        case z = "attn.hook_z", result = "attn.hook_result"
        case attnOut = "hook_attn_out", residMid = "hook_resid_mid"
        case ln2Scale = "ln2.hook_scale", ln2Normalized = "ln2.hook_normalized"
        case mlpPre = "mlp.hook_pre", mlpPost = "mlp.hook_post"
        case mlpOut = "hook_mlp_out", residPost = "hook_resid_post"

        var order: Int { Kind.allCases.firstIndex(of: self)! }

        /// The short form accepted for block-level hooks ("mlp_out" for hook_mlp_out); nil for sub-module hooks.
        public var shortName: String? { rawValue.hasPrefix("hook_") ? String(rawValue.dropFirst(5)) : nil }

        /// The residual hook a forward can resume from to recompute this hook: the block half's input.
        public var residualBefore: Kind {
            if self == .residPre || self == .residMid || self == .residPost { return self }
            return inAttentionHalf ? .residPre : .residMid
        }

        /// Whether the hook is in the block's attention half (resid_pre … resid_mid).
        var inAttentionHalf: Bool { order < Kind.residMid.order }

        /// Looks a kind up by its name within a block or its short form.
        public init?(name: String) {
            if let k = Kind(rawValue: name) { self = k; return }
            if let k = Kind.allCases.first(where: { $0.shortName == name }) { self = k; return }
            return nil
        }
    }

    case embed              // "hook_embed": wte rows of the tokens
    case posEmbed           // "hook_pos_embed": wpe rows of the positions
    case block(Int, Kind)   // "blocks.L.<kind>"
    case lnFinalScale       // "ln_final.hook_scale": the final LayerNorm's per-token scale √(var + ε)
    case lnFinal            // "ln_final.hook_normalized": the final LayerNorm's output, input of the unembedding

    /// "blocks.3.hook_mlp_out" for (3, .mlpOut).
    public static func name(layer: Int, kind: Kind) -> String { "blocks.\(layer).\(kind.rawValue)" }

    public var name: String {
        switch self {
        case .embed: return "hook_embed"
        case .posEmbed: return "hook_pos_embed"
        case .block(let l, let k): return Self.name(layer: l, kind: k)
        case .lnFinalScale: return "ln_final.hook_scale"
        case .lnFinal: return "ln_final.hook_normalized"
        }
    }
    public var description: String { name }

    /// Position along the forward pass; hooks with equal order see the same step (embed and pos_embed).
    public var order: Int {
        switch self {
        case .embed, .posEmbed: return 0
        case .block(let l, let k): return 1 + l * Kind.allCases.count + k.order
        case .lnFinalScale: return Int.max - 1
        case .lnFinal: return Int.max
        }
    }

    public static func < (a: HookPoint, b: HookPoint) -> Bool { (a.order, a.name) < (b.order, b.name) }

    public var layer: Int? { if case .block(let l, _) = self { return l }; return nil }

    /// Values per token at this hook for a model of shape `config` on windows of `seqLen` tokens.
    public func width(_ config: GPT2Config, seqLen: Int) -> Int {
        switch self {
        case .embed, .posEmbed, .lnFinal: return config.nEmbd
        case .lnFinalScale: return 1
        case .block(_, let k):
            switch k {
            case .ln1Scale, .ln2Scale: return 1
            case .attnScores, .pattern: return config.nHead * seqLen
            case .result: return config.nHead * config.nEmbd
            case .mlpPre, .mlpPost: return config.mlpSize
            default: return config.nEmbd
            }
        }
    }

    /// Whether the value has one row per token that does not depend on the window length (so it can be stored and
    /// fed to an SAE): every hook but the attention scores and patterns.
    public var isPerToken: Bool {
        if case .block(_, let k) = self { return k != .attnScores && k != .pattern }
        return true
    }

    /// The model-level hooks and their accepted spellings.
    private static let modelLevel: [(HookPoint, [String])] = [
        (.embed, ["hook_embed", "embed"]), (.posEmbed, ["hook_pos_embed", "pos_embed"]),
        (.lnFinalScale, ["ln_final.hook_scale"]), (.lnFinal, ["ln_final.hook_normalized", "ln_final"]),
    ]

    /// Parses a TransformerLens name ("blocks.3.attn.hook_z", "hook_embed", "ln_final.hook_normalized") or a short
    /// form. With `layer`, a name within a block ("attn.hook_z", "hook_mlp_out", "mlp_out") names that block's
    /// hook. `nLayer` bounds the layer index.
    public static func parse(_ text: String, layer: Int? = nil, nLayer: Int? = nil) throws -> HookPoint {
        let s = text.trimmingCharacters(in: .whitespaces)
        let point: HookPoint
        if let (p, _) = modelLevel.first(where: { $0.1.contains(s) }) {
            point = p
        } else if s.hasPrefix("blocks.") {
            let rest = s.dropFirst(7)
            guard let dot = rest.firstIndex(of: "."), let l = Int(rest[..<dot]), l >= 0,
                  let k = Kind(name: String(rest[rest.index(after: dot)...])) else {
                throw GPT2Error("unknown hook '\(text)'; expected blocks.L.NAME with NAME one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            point = .block(l, k)
        } else if let k = Kind(name: s) {
            guard let layer else { throw GPT2Error("hook '\(s)' needs a layer (e.g. \(name(layer: 0, kind: k)), or layers=)") }
            point = .block(layer, k)
        } else {
            throw GPT2Error("unknown hook '\(text)'; expected hook_embed, hook_pos_embed, ln_final.hook_scale, ln_final.hook_normalized, blocks.L.NAME, or NAME with a layer, NAME one of \(Kind.allCases.map(\.rawValue).joined(separator: ", ")) (or the short forms \(Kind.allCases.compactMap(\.shortName).joined(separator: ", ")))")
        }
        if let nLayer, let l = point.layer, l >= nLayer {
            throw GPT2Error("hook '\(text)': layer \(l) is out of range, the model has \(nLayer) layers (0…\(nLayer - 1))")
        }
        return point
    }

    /// True when `text` names a hook without a layer (a model-level hook or a full blocks.L name).
    public static func namesItsLayer(_ text: String) -> Bool {
        let s = text.trimmingCharacters(in: .whitespaces)
        return s.hasPrefix("blocks.") || modelLevel.contains { $0.1.contains(s) }
    }

    /// Every hook of a model with `nLayer` layers, in forward order.
    public static func all(nLayer: Int) -> [HookPoint] {
        [.embed, .posEmbed] + (0..<nLayer).flatMap { l in Kind.allCases.map { HookPoint.block(l, $0) } } + [.lnFinalScale, .lnFinal]
    }
}
