// Checkpoints: a whole group with its optimizer state in one safetensors file, written atomically (temp + rename),
// so an interrupted write leaves the previous checkpoint intact. The noise stream is a function of the SAE's
// seed and step count (GaussianNoise.streamSeed), so a resumed run draws the same noise as an uninterrupted one.
import Foundation
import Tensor

struct CheckpointHeader: Codable {
    var format = "nsae-checkpoint"
    var version = 1
    var configs: [SAEConfig]
    var optimizer: AdamConfig
    var stepsTrained: Int
    var optimizerSteps: [Int]
    var log: TrainingLog
}

public enum Checkpoint {
    public static func save(_ group: SAEGroup, optimizer: AdamConfig, to path: String) throws {
        var tensors: [TensorToWrite] = []
        for (i, sae) in group.saes.enumerated() {
            let p = "layer\(i)."
            tensors.append(TensorToWrite(name: p + "encoder_rows", matrix: sae.encoderRows))
            tensors.append(TensorToWrite(name: p + "W_dec", matrix: sae.W_dec))
            tensors.append(TensorToWrite(name: p + "b_enc", vector: sae.b_enc))
            tensors.append(TensorToWrite(name: p + "b_dec", vector: sae.b_dec))
            for (spec, values) in zip(sae.config.architecture.kind.extraParameters, sae.extraParameters) {
                tensors.append(TensorToWrite(name: p + spec.name, vector: values))
            }
            if let since = sae.tokensSinceFired {
                tensors.append(TensorToWrite(name: p + "tokens_since_fired", vector: since.map { Float(min($0, 1 << 30)) }))
            }
            if let s = sae.optimizerState { tensors.append(TensorToWrite(name: p + "adam", vector: s.flat)) }
        }
        let header = CheckpointHeader(configs: group.saes.map(\.config), optimizer: optimizer,
                                      stepsTrained: group.stepsTrained, optimizerSteps: group.saes.map(\.optimizerSteps),
                                      log: group.log)
        let json = String(decoding: try JSONEncoder().encode(header), as: UTF8.self)
        try SafeTensors.write(tensors, to: path, metadata: ["nsae_checkpoint": json])
    }

    /// The group (with optimizer state, step count and log) and the optimizer settings it was saved with.
    public static func load(_ path: String) throws -> (group: SAEGroup, optimizer: AdamConfig) {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch {
            throw SAEError("checkpoint \(path) is not readable as a checkpoint: \(error)")
        }
        guard let json = file.metadata["nsae_checkpoint"] else {
            throw SAEError("checkpoint \(path): no nsae_checkpoint metadata (not a checkpoint written by nsae)")
        }
        let header: CheckpointHeader
        do { header = try JSONDecoder().decode(CheckpointHeader.self, from: Data(json.utf8)) } catch {
            throw SAEError("checkpoint \(path): the header is corrupt: \(error)")
        }
        guard header.configs.count == header.optimizerSteps.count, !header.configs.isEmpty else {
            throw SAEError("checkpoint \(path): the header lists \(header.configs.count) SAEs and \(header.optimizerSteps.count) step counts")
        }
        var saes: [SAE] = []
        for (i, config) in header.configs.enumerated() {
            let p = "layer\(i).", n = config.dIn, m = config.dSAE
            func need(_ name: String, _ shape: [Int]) throws -> Matrix {
                guard file.tensors[p + name] != nil else { throw SAEError("checkpoint \(path): tensor \(p + name) is missing") }
                do { return try file.matrix(p + name, shape: shape) } catch {
                    throw SAEError("checkpoint \(path): \(error)")
                }
            }
            do { try config.validate() } catch { throw SAEError("checkpoint \(path): layer \(i): \(error)") }
            let specs = config.architecture.kind.extraParameters
            let sae = try SAE(config: config, W_enc: try need("encoder_rows", [m, n]).transposed(),
                              b_enc: try need("b_enc", [m]).data, W_dec: try need("W_dec", [m, n]),
                              b_dec: try need("b_dec", [n]).data, extra: try specs.map { try need($0.name, [m]).data })
            if file.tensors[p + "tokens_since_fired"] != nil {
                let since = try need("tokens_since_fired", [m]).data
                guard since.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= Float(1 << 30) }) else {
                    throw SAEError("checkpoint \(path): \(p)tokens_since_fired holds values outside 0...2^30")
                }
                sae.tokensSinceFired = since.map { Int($0) }
            }
            guard header.optimizerSteps[i] >= 0 else { throw SAEError("checkpoint \(path): negative step count for layer \(i)") }
            if header.optimizerSteps[i] > 0 {
                let flat = try need("adam", [AdamState.count(dIn: n, dSAE: m, extraCount: specs.count)]).data
                sae.optimizerState = try AdamState(dIn: n, dSAE: m, extraCount: specs.count, step: header.optimizerSteps[i], flat: flat)
            }
            saes.append(sae)
        }
        let group = try SAEGroup(saes: saes)
        group.stepsTrained = header.stepsTrained
        group.log = header.log
        return (group, header.optimizer)
    }
}
