import Foundation
import Tensor

/// The shape of a GPT-2 model. Coded with Hugging Face's config.json keys.
public struct GPT2Config: Sendable, Codable, Equatable {
    public var nLayer: Int
    public var nHead: Int
    public var nEmbd: Int
    public var nPositions: Int
    public var vocabSize: Int
    public var layerNormEpsilon: Float

    public init(nLayer: Int, nHead: Int, nEmbd: Int, nPositions: Int, vocabSize: Int = 50257, layerNormEpsilon: Float = 1e-5) {
        self.nLayer = nLayer; self.nHead = nHead; self.nEmbd = nEmbd
        self.nPositions = nPositions; self.vocabSize = vocabSize; self.layerNormEpsilon = layerNormEpsilon
    }

    /// GPT-2 small (124M).
    public static let small = GPT2Config(nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024)

    public var headSize: Int { nEmbd / nHead }
    public var mlpSize: Int { 4 * nEmbd }

    enum CodingKeys: String, CodingKey {
        case nLayer = "n_layer", nHead = "n_head", nEmbd = "n_embd", nPositions = "n_positions"
        case vocabSize = "vocab_size", layerNormEpsilon = "layer_norm_epsilon"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        nLayer = try c.decodeWholeNumber(forKey: .nLayer)
        nHead = try c.decodeWholeNumber(forKey: .nHead)
        nEmbd = try c.decodeWholeNumber(forKey: .nEmbd)
        nPositions = try c.decodeWholeNumberIfPresent(forKey: .nPositions) ?? 1024
        vocabSize = try c.decodeWholeNumberIfPresent(forKey: .vocabSize) ?? 50257
        layerNormEpsilon = try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? 1e-5
    }

    /// Reads a Hugging Face config.json, rejecting variants this runner does not implement.
    public static func load(path: String) throws -> GPT2Config {
        guard let data = FileManager.default.contents(atPath: path) else { throw GPT2Error("\(path): cannot read config") }
        let config: GPT2Config
        do { config = try JSONDecoder().decode(GPT2Config.self, from: data) } catch {
            throw GPT2Error("\(path): not a GPT-2 config (needs n_layer, n_head, n_embd): \(error)")
        }
        if let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            if let act = obj["activation_function"] as? String, act != "gelu_new" {
                throw GPT2Error("\(path): activation_function '\(act)' is not supported (only gelu_new)")
            }
            if let inner = obj["n_inner"] as? Int, inner != 4 * config.nEmbd {
                throw GPT2Error("\(path): n_inner \(inner) is not supported (only 4·n_embd = \(4 * config.nEmbd))")
            }
            for flag in ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"] where (obj[flag] as? Bool) == true {
                throw GPT2Error("\(path): \(flag)=true is not supported")
            }
        }
        try config.validate(source: path)
        return config
    }

    /// Upper bounds far beyond any GPT-2 (the largest has 48 layers, width 1600): within them every product of
    /// sizes the runner forms fits 64 bits, so sizes read from a crafted file cannot wrap.
    static let limits: [(field: String, max: Int)] = [("n_layer", 1 << 10), ("n_head", 1 << 12), ("n_embd", 1 << 16),
                                                      ("n_positions", 1 << 20), ("vocab_size", 1 << 24)]

    /// The number of weights (embeddings, blocks, final layer norm).
    public var parameterCount: Int {
        let C = nEmbd
        return (vocabSize + nPositions) * C + nLayer * (12 * C * C + 13 * C) + 2 * C
    }

    func validate(source: String) throws {
        let values = [nLayer, nHead, nEmbd, nPositions, vocabSize]
        for (value, limit) in zip(values, Self.limits) {
            guard value > 0, value <= limit.max else {
                throw GPT2Error("\(source): \(limit.field) is \(value); must be in 1...\(limit.max)")
            }
        }
        guard nEmbd % nHead == 0 else { throw GPT2Error("\(source): n_embd \(nEmbd) is not a multiple of n_head \(nHead)") }
        guard layerNormEpsilon.isFinite, layerNormEpsilon > 0 else {
            throw GPT2Error("\(source): layer_norm_epsilon is \(layerNormEpsilon); must be a positive number")
        }
        do { try ResourceBudget.checkMemory(parameterCount * 4, for: "\(source): a GPT-2 of \(parameterCount) weights") } catch {
            throw GPT2Error("\(error)")
        }
    }
}
