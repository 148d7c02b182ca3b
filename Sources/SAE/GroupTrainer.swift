// The trainer of a group: each step draws one batch of tokens (one matrix per layer) and takes one Adam step in
// every layer's SAE. Progress and cancellation go through the WorkContext, checked between steps.
import Foundation
import Tensor

public struct TrainingLogRow: Codable, Sendable, Equatable {
    /// The group step at which the row was written (1-based, counting every call to train).
    public var step: Int
    /// The SAE's layer index.
    public var layer: Int
    /// Averages over the steps since the previous row of: the loss and its terms, L0 and L1 (per token).
    public var loss: Double
    public var mseTerm: Double
    public var l1Term: Double
    public var l0: Double
    public var l1: Double
    /// Fraction of features that did not fire in any token since the previous row.
    public var deadFraction: Double
    /// The learning rate of the row's last step.
    public var lr: Double
}

public struct TrainingLog: Codable, Sendable, Equatable {
    public var rows: [TrainingLogRow] = []
    public init(rows: [TrainingLogRow] = []) { self.rows = rows }
    public static let columns = ["step", "layer", "loss", "mse_term", "l1_term", "l0", "l1", "dead_fraction", "lr"]
    /// The rows as table values in `columns` order.
    public var table: [[Double]] {
        rows.map { [Double($0.step), Double($0.layer), $0.loss, $0.mseTerm, $0.l1Term, $0.l0, $0.l1, $0.deadFraction, $0.lr] }
    }
}

public struct GroupTrainer: Sendable {
    public var optimizer: AdamConfig
    public var batchSize: Int
    /// A log row per layer every `logEvery` steps (and at the end of a call).
    public var logEvery: Int
    /// When set, the group and its optimizer state are written here (atomically) every `checkpointEvery` steps,
    /// at the end of a call, and when the call is cancelled.
    public var checkpointPath: String?
    public var checkpointEvery: Int
    /// When set, every this many steps (except after a call's last step) the features that did not fire in those
    /// steps are resampled (Resampling.swift), in the SAEs whose architecture resamples (the L1 kinds).
    public var resampleEvery: Int?

    public init(optimizer: AdamConfig = AdamConfig(), batchSize: Int = 4096, logEvery: Int = 100,
                checkpointPath: String? = nil, checkpointEvery: Int = 0, resampleEvery: Int? = nil) {
        self.optimizer = optimizer; self.batchSize = batchSize; self.logEvery = logEvery
        self.checkpointPath = checkpointPath; self.checkpointEvery = checkpointEvery; self.resampleEvery = resampleEvery
    }

    /// The call shape the command layer uses.
    public static func train(_ group: SAEGroup, source: any BatchSource, steps: Int, batchSize: Int,
                             optimizer: AdamConfig, logEvery: Int, checkpointPath: String? = nil, resampleEvery: Int? = nil,
                             context: WorkContext) throws -> TrainingLog {
        try GroupTrainer(optimizer: optimizer, batchSize: batchSize, logEvery: logEvery, checkpointPath: checkpointPath,
                         resampleEvery: resampleEvery)
            .train(group, source: source, steps: steps, context: context)
    }

    /// Runs `steps` more steps. Returns the log rows written by this call (all rows are also in `group.log`).
    /// Cancellation is checked before each step: the parameters and optimizer state stay as after the last full
    /// step, the checkpoint (if any) is written, and `Cancelled` is thrown; calling `train` again continues.
    /// A non-finite loss or gradient stops with an error naming the step and layer; that layer keeps its last
    /// good parameters (layers before it in the same step have already taken that step).
    @discardableResult
    public func train(_ group: SAEGroup, source: any BatchSource, steps: Int, context: WorkContext) throws -> TrainingLog {
        try optimizer.validate()
        guard steps >= 0 else { throw SAEError("train: steps must be ≥ 0, got \(steps)") }
        guard batchSize > 0 else { throw SAEError("train: batch size must be positive, got \(batchSize)") }
        guard logEvery > 0 else { throw SAEError("train: log_every must be positive, got \(logEvery)") }
        if let r = resampleEvery {
            guard r > 0, r.multipliedReportingOverflow(by: batchSize).overflow == false else {
                throw SAEError("train: resample_every must be a positive number of steps, got \(r)")
            }
        }
        guard source.layerCount == group.count else {
            throw SAEError("train: the activations have \(source.layerCount) layers but the SAE group has \(group.count)")
        }
        for (i, (d, sae)) in zip(source.dims, group.saes).enumerated() where d != sae.dIn {
            throw SAEError("train: layer \(group.layers[i]) activations have d = \(d) but its SAE has d_in = \(sae.dIn)")
        }
        for (i, sae) in group.saes.enumerated() where sae.config.normalization.transformsRows {
            throw SAEError("train: the SAE of layer \(group.layers[i]) normalizes its inputs (normalize_activations = \(sae.config.normalization.rawValue)); nsae evaluates such SAEs but does not train them")
        }
        let shared = SharedStepBuffers()   // [B, m] and 2 × [m, n]; layers step one after another (its ownership rule)
        let workspaces = group.saes.map { StepWorkspace(dIn: $0.dIn, dSAE: $0.dSAE, shared: shared) }
        var window = group.saes.map { WindowStats(features: $0.dSAE) }
        var written: [TrainingLogRow] = []
        let total = steps
        func flushLog() {
            guard window[0].steps > 0 else { return }
            for (i, sae) in group.saes.enumerated() {
                let row = window[i].row(step: group.stepsTrained, layer: group.layers[i],
                                        lr: Double(optimizer.learningRate(atStep: sae.optimizerSteps)))
                written.append(row)
                sae.featureDensity = window[i].fires.map { Float($0) / Float(max(window[i].tokens, 1)) }
                group.log.rows.append(row)
                window[i] = WindowStats(features: sae.dSAE)
            }
        }
        func saveCheckpoint() throws {
            if let path = checkpointPath { try Checkpoint.save(group, optimizer: optimizer, to: path) }
        }
        for done in 0..<total {
            if context.isCancelled {
                flushLog()
                try saveCheckpoint()
                throw Cancelled()
            }
            let batch = try source.nextBatch(rows: batchSize)
            guard batch.count == group.count else {
                throw SAEError("train: the batch source returned \(batch.count) matrices for \(group.count) layers")
            }
            for (i, sae) in group.saes.enumerated() {
                let x = batch[i]
                guard x.rows == batchSize, x.cols == sae.dIn else {
                    throw SAEError("train: layer \(group.layers[i]) batch is \(x.rows)x\(x.cols), expected \(batchSize)x\(sae.dIn)")
                }
                let terms: LossTerms
                do {
                    terms = try x.data.withUnsafeBufferPointer {
                        try sae.trainStep(workspaces[i], x: $0.baseAddress!, rows: x.rows, optimizer: optimizer,
                                          noiseStep: UInt64(sae.optimizerSteps))
                    }
                } catch let e as SAEError {
                    flushLog()
                    throw SAEError("train: step \(group.stepsTrained + 1), layer \(group.layers[i]): \(e.message)")
                }
                window[i].add(terms, workspaces[i])
            }
            group.stepsTrained += 1
            context.report(ProgressUpdate(task: "train", done: done + 1, total: total, unit: "steps",
                                          message: String(format: "loss %.4g, L0 %.1f (%.1f%% of features)", window[0].lastLoss, workspaces[0].terms.l0, 100 * workspaces[0].terms.l0 / Double(max(workspaces[0].dSAE, 1)))))
            if group.stepsTrained % logEvery == 0 { flushLog() }
            // Not after the call's last step: a feature given a new direction is trained before anyone measures it.
            if let every = resampleEvery, group.stepsTrained % every == 0, done + 1 < total {
                try Resampling.resampleDead(group, source: source, batchSize: batchSize, windowTokens: every * batchSize)
            }
            if let _ = checkpointPath, checkpointEvery > 0, group.stepsTrained % checkpointEvery == 0 { try saveCheckpoint() }
        }
        flushLog()
        if total > 0 { try saveCheckpoint() }
        return TrainingLog(rows: written)
    }
}

/// Running sums for one layer between log rows.
struct WindowStats {
    var steps = 0
    var loss = 0.0, mse = 0.0, l1Term = 0.0, l0 = 0.0, l1 = 0.0
    var lastLoss = 0.0
    var tokens = 0
    var fires: [Int]

    init(features: Int) { fires = [Int](repeating: 0, count: features) }

    mutating func add(_ t: LossTerms, _ ws: StepWorkspace) {
        steps += 1
        loss += t.loss; mse += t.mseTerm; l1Term += t.l1Term; l0 += t.l0; l1 += t.l1
        lastLoss = t.loss
        tokens += ws.rows
        for j in 0..<fires.count { fires[j] += ws.fires(j) }
    }

    func row(step: Int, layer: Int, lr: Double) -> TrainingLogRow {
        let k = Double(max(steps, 1))
        let dead = Double(fires.lazy.filter { $0 == 0 }.count) / Double(max(fires.count, 1))
        return TrainingLogRow(step: step, layer: layer, loss: loss / k, mseTerm: mse / k, l1Term: l1Term / k,
                              l0: l0 / k, l1: l1 / k, deadFraction: dead, lr: lr)
    }
}
