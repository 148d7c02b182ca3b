import Foundation
import Tensor

/// Reads a Hugging Face GPT-2 folder: config.json + model.safetensors, keys with or without the `transformer.`
/// prefix, F32/F16/BF16, Conv1D [in, out] layout; the `attn.bias` / `attn.masked_bias` mask buffers are ignored.
enum HFCheckpoint {
    static func load(folder: String) throws -> (GPT2Config, GPT2Weights) {
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        let weightsPath = (folder as NSString).appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: configPath) else { throw GPT2Error("\(folder): no config.json") }
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw GPT2Error("\(folder): no model.safetensors") }
        let config = try GPT2Config.load(path: configPath)
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: weightsPath) } catch { throw GPT2Error("\(error)") }
        return (config, try weights(file, config: config))
    }

    static func weights(_ file: SafeTensorsFile, config c: GPT2Config) throws -> GPT2Weights {
        let prefix = file.tensors["transformer.wte.weight"] != nil ? "transformer." : ""
        let C = c.nEmbd
        func read(_ key: String, _ shape: [Int]) throws -> Matrix {
            let full = prefix + key
            guard let info = file.tensors[full] else {
                throw GPT2Error("\(file.path): missing key '\(full)' (expected shape \(shape))")
            }
            guard info.dtype == .f32 || info.dtype == .f16 || info.dtype == .bf16 else {
                throw GPT2Error("\(file.path): '\(full)' has dtype \(info.dtype.rawValue), expected F32, F16 or BF16")
            }
            guard info.shape == shape else {
                throw GPT2Error("\(file.path): '\(full)' has shape \(info.shape), expected \(shape) (from config: n_layer \(c.nLayer), n_embd \(C), n_positions \(c.nPositions), vocab_size \(c.vocabSize))")
            }
            do { return Matrix(rows: shape.count == 2 ? shape[0] : 1, cols: shape.last!, data: try file.floats(full)) }
            catch { throw GPT2Error("\(error)") }
        }
        func vec(_ key: String, _ n: Int) throws -> [Float] { try read(key, [n]).data }
        // Layers beyond the config mean the config and the weights disagree; say so rather than silently drop them.
        let layerKeys = file.names.compactMap { name -> Int? in
            guard name.hasPrefix(prefix + "h.") else { return nil }
            return Int(name.dropFirst(prefix.count + 2).prefix { $0 != "." })
        }
        if let top = layerKeys.max(), top >= c.nLayer {
            throw GPT2Error("\(file.path): weights have layer h.\(top) but config n_layer is \(c.nLayer)")
        }
        let wte = try read("wte.weight", [c.vocabSize, C])
        let wpe = try read("wpe.weight", [c.nPositions, C])
        var blocks: [BlockWeights] = []
        for l in 0..<c.nLayer {
            let p = "h.\(l)."
            blocks.append(BlockWeights(
                ln1Weight: try vec(p + "ln_1.weight", C), ln1Bias: try vec(p + "ln_1.bias", C),
                attnQKV: try read(p + "attn.c_attn.weight", [C, 3 * C]), attnQKVBias: try vec(p + "attn.c_attn.bias", 3 * C),
                attnProj: try read(p + "attn.c_proj.weight", [C, C]), attnProjBias: try vec(p + "attn.c_proj.bias", C),
                ln2Weight: try vec(p + "ln_2.weight", C), ln2Bias: try vec(p + "ln_2.bias", C),
                mlpFC: try read(p + "mlp.c_fc.weight", [C, 4 * C]), mlpFCBias: try vec(p + "mlp.c_fc.bias", 4 * C),
                mlpProj: try read(p + "mlp.c_proj.weight", [4 * C, C]), mlpProjBias: try vec(p + "mlp.c_proj.bias", C)))
        }
        return GPT2Weights(tokenEmbedding: wte, positionEmbedding: wpe,
                           blocks: blocks, lnFinalWeight: try vec("ln_f.weight", C), lnFinalBias: try vec("ln_f.bias", C))
    }
}
