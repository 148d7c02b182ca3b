/// Hook points with TransformerLens names. Every value flowing through the forward pass at one of these points can
/// be captured (copied out) or patched (replaced) — one mechanism, as in TransformerLens' `hook_points.py`.
public enum HookPoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Per-block hook kinds, in the order the forward pass reaches them.
    public enum Kind: String, CaseIterable, Sendable {
        case residPre = "resid_pre", attnOut = "attn_out", residMid = "resid_mid", mlpOut = "mlp_out", residPost = "resid_post"
        var order: Int { Kind.allCases.firstIndex(of: self)! }
    }

    case embed              // "hook_embed": wte rows of the tokens
    case posEmbed           // "hook_pos_embed": wpe rows of the positions
    case block(Int, Kind)   // "blocks.L.hook_<kind>"
    case lnFinal            // "ln_final.hook_normalized": the final LayerNorm's output, input of the unembedding

    /// "blocks.3.hook_mlp_out" for (3, .mlpOut).
    public static func name(layer: Int, kind: Kind) -> String { "blocks.\(layer).hook_\(kind.rawValue)" }

    public var name: String {
        switch self {
        case .embed: return "hook_embed"
        case .posEmbed: return "hook_pos_embed"
        case .block(let l, let k): return Self.name(layer: l, kind: k)
        case .lnFinal: return "ln_final.hook_normalized"
        }
    }
    public var description: String { name }

    /// Position along the forward pass; hooks with equal order see the same step (embed and pos_embed).
    public var order: Int {
        switch self {
        case .embed, .posEmbed: return 0
        case .block(let l, let k): return 1 + l * Kind.allCases.count + k.order
        case .lnFinal: return Int.max
        }
    }

    public static func < (a: HookPoint, b: HookPoint) -> Bool { (a.order, a.name) < (b.order, b.name) }

    public var layer: Int? { if case .block(let l, _) = self { return l }; return nil }

    /// Parses a TransformerLens name ("blocks.3.hook_mlp_out", "hook_embed", "ln_final.hook_normalized"). With
    /// `layer`, a short kind ("mlp_out", "hook_mlp_out") names that block's hook. `nLayer` bounds the layer index.
    public static func parse(_ text: String, layer: Int? = nil, nLayer: Int? = nil) throws -> HookPoint {
        let s = text.trimmingCharacters(in: .whitespaces)
        let point: HookPoint
        switch s {
        case "hook_embed", "embed": point = .embed
        case "hook_pos_embed", "pos_embed": point = .posEmbed
        case "ln_final.hook_normalized", "ln_final": point = .lnFinal
        default:
            let parts = s.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count == 3, parts[0] == "blocks", let l = Int(parts[1]), l >= 0, let k = kind(String(parts[2])) {
                point = .block(l, k)
            } else if parts.count == 1, let k = kind(s) {
                guard let layer else { throw GPT2Error("hook '\(s)' needs a layer (e.g. \(name(layer: 0, kind: k)))") }
                point = .block(layer, k)
            } else {
                throw GPT2Error("unknown hook '\(text)'; expected hook_embed, hook_pos_embed, ln_final.hook_normalized, or blocks.L.hook_K with K one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if let nLayer, let l = point.layer, l >= nLayer {
            throw GPT2Error("hook '\(text)': layer \(l) is out of range, the model has \(nLayer) layers (0…\(nLayer - 1))")
        }
        return point
    }

    private static func kind(_ s: String) -> Kind? {
        Kind(rawValue: s.hasPrefix("hook_") ? String(s.dropFirst(5)) : s)
    }

    /// Every hook of a model with `nLayer` layers, in forward order.
    public static func all(nLayer: Int) -> [HookPoint] {
        [.embed, .posEmbed] + (0..<nLayer).flatMap { l in Kind.allCases.map { HookPoint.block(l, $0) } } + [.lnFinal]
    }
}

import Foundation
