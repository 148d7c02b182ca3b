// The trainer of a group, or of a sweep's groups: each step draws one batch of tokens (one matrix per layer) and
// takes one Adam step in every layer's SAE of every group. Progress and cancellation go through the WorkContext, checked between steps.
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
    /// The architecture's own term (TopK's AuxK, JumpReLU's L0 penalty; 0 for relu and nsae).
    public var auxTerm: Double
    public var l0: Double
    public var l1: Double
    /// Fraction of features that did not fire in any token since the previous row, judged without the training
    /// noise (as `eval` judges them).
    public var deadFraction: Double
    /// The learning rate of the row's last step.
    public var lr: Double

    public init(step: Int, layer: Int, loss: Double, mseTerm: Double, l1Term: Double, auxTerm: Double = 0, l0: Double,
                l1: Double, deadFraction: Double, lr: Double) {
        self.step = step; self.layer = layer; self.loss = loss; self.mseTerm = mseTerm; self.l1Term = l1Term
        self.auxTerm = auxTerm; self.l0 = l0; self.l1 = l1; self.deadFraction = deadFraction; self.lr = lr
    }

    private enum CodingKeys: String, CodingKey { case step, layer, loss, mseTerm, l1Term, auxTerm, l0, l1, deadFraction, lr }

    /// Checkpoints written before the log had `auxTerm` read it as 0.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(step: try c.decode(Int.self, forKey: .step), layer: try c.decode(Int.self, forKey: .layer),
                  loss: try c.decode(Double.self, forKey: .loss), mseTerm: try c.decode(Double.self, forKey: .mseTerm),
                  l1Term: try c.decode(Double.self, forKey: .l1Term),
                  auxTerm: try c.decodeIfPresent(Double.self, forKey: .auxTerm) ?? 0,
                  l0: try c.decode(Double.self, forKey: .l0), l1: try c.decode(Double.self, forKey: .l1),
                  deadFraction: try c.decode(Double.self, forKey: .deadFraction), lr: try c.decode(Double.self, forKey: .lr))
    }
}

public struct TrainingLog: Codable, Sendable, Equatable {
    public var rows: [TrainingLogRow] = []
    public init(rows: [TrainingLogRow] = []) { self.rows = rows }
    public static let columns = ["step", "layer", "loss", "mse_term", "l1_term", "aux_term", "l0", "l1", "dead_fraction", "lr"]
    /// The rows as table values in `columns` order.
    public var table: [[Double]] {
        rows.map { [Double($0.step), Double($0.layer), $0.loss, $0.mseTerm, $0.l1Term, $0.auxTerm, $0.l0, $0.l1, $0.deadFraction, $0.lr] }
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
    /// A non-finite loss or gradient stops after the step with an error naming the step and each failed layer: those
    /// keep their last good parameters and skip the batch, every other layer takes the step, and the step counts
    /// as trained for the group (so a sweep's groups stay at one step count and `train` can go on).
    @discardableResult
    public func train(_ group: SAEGroup, source: any BatchSource, steps: Int, context: WorkContext) throws -> TrainingLog {
        try train([group], source: source, steps: steps, context: context,
                  saveCheckpoint: { path in try Checkpoint.save(group, optimizer: optimizer, to: path) })[0]
    }

    /// Trains every group of the sweep on the same batches: each batch is read from `source` once and fed to every
    /// SAE of every group, so each SAE takes exactly the steps it would take trained alone on the same stream
    /// (bit for bit: its step reads only its own parameters, the batch and its own noise stream). Returns the log
    /// rows of this call per group (grid order). Cancellation, checkpoints and errors as for a group; the
    /// checkpoint holds the whole sweep (`Checkpoint.loadSweep`).
    @discardableResult
    public func train(_ sweep: SAESweep, source: any BatchSource, steps: Int, context: WorkContext) throws -> [TrainingLog] {
        try train(sweep.groups, source: source, steps: steps, context: context,
                  saveCheckpoint: { path in try Checkpoint.save(sweep, optimizer: optimizer, to: path) })
    }

    /// The trainer: `groups` share the batches (one group, or a sweep's groups); a group is the one-SAE-per-layer
    /// case of the same loop.
    func train(_ groups: [SAEGroup], source: any BatchSource, steps: Int, context: WorkContext,
               saveCheckpoint save: (String) throws -> Void) throws -> [TrainingLog] {
        try optimizer.validate()
        guard steps >= 0 else { throw SAEError("train: steps must be ≥ 0, got \(steps)") }
        guard batchSize > 0 else { throw SAEError("train: batch size must be positive, got \(batchSize)") }
        guard logEvery > 0 else { throw SAEError("train: log_every must be positive, got \(logEvery)") }
        if let r = resampleEvery {
            guard r > 0, r.multipliedReportingOverflow(by: batchSize).overflow == false else {
                throw SAEError("train: resample_every must be a positive number of steps, got \(r)")
            }
        }
        guard let first = groups.first else { throw SAEError("train: no SAE group to train") }
        for (g, group) in groups.enumerated() {
            let which = groups.count == 1 ? "" : " (sweep group \(g + 1))"
            guard source.layerCount == group.count else {
                throw SAEError("train: the activations have \(source.layerCount) layers but the SAE group\(which) has \(group.count)")
            }
            for (i, (d, sae)) in zip(source.dims, group.saes).enumerated() where d != sae.dIn {
                throw SAEError("train: layer \(group.layers[i]) activations have d = \(d) but its SAE\(which) has d_in = \(sae.dIn)")
            }
            for (i, sae) in group.saes.enumerated() where sae.config.normalization.transformsRows {
                throw SAEError("train: the SAE of layer \(group.layers[i])\(which) normalizes its inputs (normalize_activations = \(sae.config.normalization.rawValue)); nsae evaluates such SAEs but does not train them")
            }
            guard group.stepsTrained == first.stepsTrained else {
                throw SAEError("train: the sweep's groups have trained different numbers of steps (\(groups.map { String($0.stepsTrained) }.joined(separator: ", "))); a sweep trains them together")
            }
        }
        let shared = SharedStepBuffers()   // [B, m] and 2 × [m, n]; every SAE of every group steps one after another (its ownership rule)
        let workspaces = groups.map { $0.saes.map { StepWorkspace(dIn: $0.dIn, dSAE: $0.dSAE, shared: shared) } }
        var windows = groups.map { $0.saes.map { WindowStats(features: $0.dSAE) } }
        var written = groups.map { _ in [TrainingLogRow]() }
        let total = steps
        func flushLog() {
            for (g, group) in groups.enumerated() {
                guard windows[g][0].steps > 0 else { continue }
                for (i, sae) in group.saes.enumerated() {
                    let row = windows[g][i].row(step: group.stepsTrained, layer: group.layers[i],
                                                lr: Double(optimizer.learningRate(atStep: sae.optimizerSteps)))
                    written[g].append(row)
                    sae.featureDensity = windows[g][i].fires.map { Float($0) / Float(max(windows[g][i].tokens, 1)) }
                    group.log.rows.append(row)
                    windows[g][i] = WindowStats(features: sae.dSAE)
                }
            }
        }
        func saveCheckpoint() throws {
            if let path = checkpointPath { try save(path) }
        }
        for done in 0..<total {
            if context.isCancelled {
                flushLog()
                try saveCheckpoint()
                throw Cancelled()
            }
            let batch = try source.nextBatch(rows: batchSize)
            guard batch.count == first.count else {
                throw SAEError("train: the batch source returned \(batch.count) matrices for \(first.count) layers")
            }
            for (i, x) in batch.enumerated() {
                guard x.rows == batchSize, x.cols == first.saes[i].dIn else {
                    throw SAEError("train: layer \(first.layers[i]) batch is \(x.rows)x\(x.cols), expected \(batchSize)x\(first.saes[i].dIn)")
                }
            }
            // An SAE whose step is not finite keeps its parameters and skips this batch; every other SAE still
            // takes the step, so the step counts for every group and a sweep's groups stay at one step count.
            var failures: [String] = []
            for (g, group) in groups.enumerated() {
                for (i, sae) in group.saes.enumerated() {
                    let x = batch[i]
                    let terms: LossTerms
                    do {
                        terms = try x.data.withUnsafeBufferPointer {
                            try sae.trainStep(workspaces[g][i], x: $0.baseAddress!, rows: x.rows, optimizer: optimizer,
                                              noiseStep: UInt64(sae.optimizerSteps))
                        }
                    } catch let e as SAEError {
                        let which = groups.count == 1 ? "" : "sweep group \(g + 1), "
                        failures.append("\(which)layer \(group.layers[i]): \(e.message)")
                        continue
                    }
                    windows[g][i].add(terms, workspaces[g][i])
                }
                group.stepsTrained += 1
            }
            if !failures.isEmpty {
                flushLog()
                let others = groups.reduce(0) { $0 + $1.count } - failures.count
                throw SAEError("train: step \(first.stepsTrained), \(failures.joined(separator: "; "))"
                               + (others > 0 ? " (the other \(others) SAE\(others == 1 ? "" : "s") took the step, which counts as trained; train again to go on, e.g. at a lower lr=)" : ""))
            }
            // One bar for a sweep: its first group's figures, and the first layer's L0 across the grid.
            var message = WindowStats.progressMessage(windows[0], layers: first.layers)
            if groups.count > 1 {
                let l0s = windows.map { $0[0].l0 / Double(max($0[0].steps, 1)) }
                message += String(format: "; layer %d L0 over the grid %.1f–%.1f", first.layers[0], l0s.min()!, l0s.max()!)
            }
            context.report(ProgressUpdate(task: "train", done: done + 1, total: total, unit: "steps", message: message))
            if first.stepsTrained % logEvery == 0 { flushLog() }
            // Not after the call's last step: a feature given a new direction is trained before anyone measures it.
            if let every = resampleEvery, first.stepsTrained % every == 0, done + 1 < total {
                try Resampling.resampleDead(groups, source: source, batchSize: batchSize, windowTokens: every * batchSize)
            }
            if let _ = checkpointPath, checkpointEvery > 0, first.stepsTrained % checkpointEvery == 0 { try saveCheckpoint() }
        }
        flushLog()
        if total > 0 { try saveCheckpoint() }
        return written.map { TrainingLog(rows: $0) }
    }
}

/// Running sums for one layer between log rows.
struct WindowStats {
    var steps = 0
    var loss = 0.0, mse = 0.0, l1Term = 0.0, auxTerm = 0.0, l0 = 0.0, l1 = 0.0
    var tokens = 0
    var fires: [Int]
    var firedWithoutNoise: [Bool]

    init(features: Int) {
        fires = [Int](repeating: 0, count: features)
        firedWithoutNoise = [Bool](repeating: false, count: features)
    }

    mutating func add(_ t: LossTerms, _ ws: StepWorkspace) {
        steps += 1
        loss += t.loss; mse += t.mseTerm; l1Term += t.l1Term; auxTerm += t.auxTerm; l0 += t.l0; l1 += t.l1
        tokens += ws.rows
        for j in 0..<fires.count {
            fires[j] += ws.fires(j)
            if ws.firedWithoutNoise(j) { firedWithoutNoise[j] = true }
        }
    }

    /// The progress figure for a whole group: each layer's mean loss and L0 over the steps since the last log row
    /// (what that row will say), as the range over layers, labelled. Losses differ by orders of magnitude across
    /// layers (they scale with ‖x‖²), so one layer's batch, or a mean over layers, would say little.
    static func progressMessage(_ windows: [WindowStats], layers: [Int]) -> String {
        let counted = windows.filter { $0.steps > 0 }
        guard !counted.isEmpty else { return "" }
        let losses = counted.map { $0.loss / Double($0.steps) }, l0s = counted.map { $0.l0 / Double($0.steps) }
        let shares = counted.map { 100 * $0.l0 / Double($0.steps) / Double(max($0.fires.count, 1)) }
        let steps = counted[0].steps
        let over = "mean of the last \(steps) step\(steps == 1 ? "" : "s")"
        let oneDecimal = { (v: Double) in String(format: "%.1f", v) }
        func range(_ values: [Double], _ format: (Double) -> String) -> String {
            let lo = values.min()!, hi = values.max()!
            return format(lo) == format(hi) ? format(lo) : "\(format(lo))–\(format(hi))"
        }
        let figures = "loss \(range(losses, figure)), L0 \(range(l0s, oneDecimal)) (\(range(shares, oneDecimal))% of features)"
        if counted.count == 1 { return "layer \(layers.first.map(String.init) ?? "?"): \(figures), \(over)" }
        return "\(figures) over \(counted.count) layers, \(over)"
    }

    /// Four significant digits, without an exponent below a million: 7.04, 10.21, 28870.
    static func figure(_ v: Double) -> String {
        guard v.isFinite else { return "\(v)" }
        if abs(v) >= 1000 && abs(v) < 1e6 { return String(format: "%.0f", v) }
        return String(format: "%.4g", v)
    }

    func row(step: Int, layer: Int, lr: Double) -> TrainingLogRow {
        let k = Double(max(steps, 1))
        let dead = Double(firedWithoutNoise.lazy.filter { !$0 }.count) / Double(max(firedWithoutNoise.count, 1))
        return TrainingLogRow(step: step, layer: layer, loss: loss / k, mseTerm: mse / k, l1Term: l1Term / k,
                              auxTerm: auxTerm / k, l0: l0 / k, l1: l1 / k, deadFraction: dead, lr: lr)
    }
}
