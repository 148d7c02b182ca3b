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
    /// A sweep's checkpoint: the SAEs above are its groups' SAEs, group by group.
    var sweep: SweepCheckpoint?
}

struct SweepCheckpoint: Codable {
    var gridOption: String
    var values: [Double]
    /// SAEs per group, and each group's steps and log.
    var groupSizes: [Int]
    var stepsTrained: [Int]
    var logs: [TrainingLog]
}

public enum Checkpoint {
    public static func save(_ group: SAEGroup, optimizer: AdamConfig, to path: String) throws {
        let header = CheckpointHeader(configs: group.saes.map(\.config), optimizer: optimizer,
                                      stepsTrained: group.stepsTrained, optimizerSteps: group.saes.map(\.optimizerSteps),
                                      log: group.log)
        try write(group.saes, header: header, to: path)
    }

    /// A sweep: every group's SAEs in one file, with the grid in the header.
    public static func save(_ sweep: SAESweep, optimizer: AdamConfig, to path: String) throws {
        let saes = sweep.allSAEs
        var header = CheckpointHeader(configs: saes.map(\.config), optimizer: optimizer, stepsTrained: sweep.stepsTrained,
                                      optimizerSteps: saes.map(\.optimizerSteps), log: TrainingLog())
        header.sweep = SweepCheckpoint(gridOption: sweep.gridOption, values: sweep.values, groupSizes: sweep.groups.map(\.count),
                                       stepsTrained: sweep.groups.map(\.stepsTrained), logs: sweep.groups.map(\.log))
        try write(saes, header: header, to: path)
    }

    static func write(_ saes: [SAE], header: CheckpointHeader, to path: String) throws {
        var tensors: [TensorToWrite] = []
        for (i, sae) in saes.enumerated() {
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
        let json = String(decoding: try JSONEncoder().encode(header), as: UTF8.self)
        try SafeTensors.write(tensors, to: path, metadata: ["nsae_checkpoint": json])
    }

    /// The group (with optimizer state, step count and log) and the optimizer settings it was saved with.
    public static func load(_ path: String) throws -> (group: SAEGroup, optimizer: AdamConfig) {
        let (header, saes) = try read(path)
        guard header.sweep == nil else {
            throw SAEError("checkpoint \(path) holds a sweep; load it with Checkpoint.loadSweep")
        }
        let group = try SAEGroup(saes: saes)
        group.stepsTrained = header.stepsTrained
        group.log = header.log
        return (group, header.optimizer)
    }

    /// The sweep of a sweep checkpoint (groups with their steps and logs) and its optimizer settings.
    public static func loadSweep(_ path: String) throws -> (sweep: SAESweep, optimizer: AdamConfig) {
        let (header, saes) = try read(path)
        guard let grid = header.sweep else { throw SAEError("checkpoint \(path) holds one SAE group, not a sweep") }
        let n = grid.values.count
        guard n >= 1, grid.groupSizes.count == n, grid.stepsTrained.count == n, grid.logs.count == n else {
            throw SAEError("checkpoint \(path): sweep.values lists \(n) grid values but groupSizes, stepsTrained and logs list \(grid.groupSizes.count), \(grid.stepsTrained.count) and \(grid.logs.count)")
        }
        guard grid.groupSizes.allSatisfy({ $0 >= 1 }), grid.groupSizes.reduce(0, +) == saes.count else {
            throw SAEError("checkpoint \(path): sweep.groupSizes add up to \(grid.groupSizes.reduce(0) { $0 &+ $1 }) SAEs but the file holds \(saes.count)")
        }
        var groups: [SAEGroup] = []
        var next = 0
        for (g, size) in grid.groupSizes.enumerated() {
            let group = try SAEGroup(saes: Array(saes[next..<(next + size)]))
            guard grid.stepsTrained[g] >= 0 else { throw SAEError("checkpoint \(path): sweep.stepsTrained[\(g)] is negative") }
            group.stepsTrained = grid.stepsTrained[g]
            group.log = grid.logs[g]
            groups.append(group)
            next += size
        }
        do {
            let sweep = try SAESweep(architecture: saes[0].config.architecture, gridOption: grid.gridOption, values: grid.values, groups: groups)
            return (sweep, header.optimizer)
        } catch let e as SAEError { throw SAEError("checkpoint \(path): sweep: \(e.message)") }
    }

    static func read(_ path: String) throws -> (CheckpointHeader, [SAE]) {
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
        return (header, saes)
    }
}
