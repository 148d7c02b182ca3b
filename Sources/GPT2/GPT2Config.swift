import Foundation

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
        nLayer = try c.decode(Int.self, forKey: .nLayer)
        nHead = try c.decode(Int.self, forKey: .nHead)
        nEmbd = try c.decode(Int.self, forKey: .nEmbd)
        nPositions = try c.decodeIfPresent(Int.self, forKey: .nPositions) ?? 1024
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 50257
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

    func validate(source: String) throws {
        guard nLayer > 0, nHead > 0, nEmbd > 0, nPositions > 0, vocabSize > 0 else {
            throw GPT2Error("\(source): config has a non-positive size (n_layer \(nLayer), n_head \(nHead), n_embd \(nEmbd), n_positions \(nPositions), vocab_size \(vocabSize))")
        }
        guard nEmbd % nHead == 0 else { throw GPT2Error("\(source): n_embd \(nEmbd) is not a multiple of n_head \(nHead)") }
    }
}
