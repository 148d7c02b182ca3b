import Foundation
import Tensor
import GPT2

/// One hook to splice: its TransformerLens name and the reconstruction x ↦ x′ to put in its place, with (for an
/// SAE) the number of active features behind each row's reconstruction, which the evaluator averages into `l0`.
public struct SpliceTarget {
    public var hook: String
    public var reconstructCounting: (Matrix) throws -> (reconstruction: Matrix, activeFeatures: [Int]?)
    public init(hook: String, reconstruct: @escaping (Matrix) throws -> Matrix) {
        self.hook = hook
        reconstructCounting = { (try reconstruct($0), nil) }
    }
    public init(hook: String, reconstructCounting: @escaping (Matrix) throws -> (reconstruction: Matrix, activeFeatures: [Int]?)) {
        self.hook = hook
        self.reconstructCounting = reconstructCounting
    }
}

/// Downstream metrics of one spliced hook (design §4): CE of the clean, zero-ablated and reconstructed runs, the
/// reconstruction score S = (CE_zero − CE_recon)/(CE_zero − CE_clean), KL(clean ‖ patched) summed over the
/// vocabulary and averaged over positions, and the KL score (KL_zero − KL_recon)/KL_zero.
public struct SpliceResult: Sendable, Equatable {
    public var hook: String
    public var ceClean: Double
    public var ceZero: Double
    public var ceRecon: Double
    public var klZero: Double
    public var klRecon: Double
    /// Mean active features per patched position, when the target counts them (nil otherwise).
    public var l0: Double?
    /// Next-token predictions averaged into the CE figures, and positions averaged into the KL figures.
    public var predictions: Int
    public var positions: Int
    public var score: Double { (ceZero - ceRecon) / (ceZero - ceClean) }
    public var klScore: Double { (klZero - klRecon) / klZero }
}

/// Splices reconstructions into GPT-2 and measures the damage, following SAELens's `get_recons_loss`:
/// - positions whose input token is BOS (50256) are excluded from every average (for CE: the predictions made at
///   them) and are left unpatched by the reconstruction patch (`excludeBOS`);
/// - the zero ablation replaces the hook's value at *all* positions, BOS included, as SAELens does (so CE_zero is
///   the familiar SAELens figure); `.exceptBOS` zeroes only the positions the reconstruction patches instead;
/// - per batch the clean pass runs once (with logits) for every target and captures each spliced hook and the
///   residual its block half starts from; the zero ablation runs once per distinct hook (targets sharing a hook,
///   e.g. the SAEs of a sweep, share it) and each target's reconstruction resumes from the cached values with the
///   hook replaced (`GPT2Model.resume(replacing:)`: a block output is added to the cached residual, so only the
///   blocks after it run), so the prefix is never recomputed.
/// Averages are token-weighted over the whole evaluation set, not means of batch means.
public enum SpliceEvaluator {
    public enum ZeroAblation: String, Sendable { case allPositions = "all", exceptBOS = "except_bos" }

    public struct Options: Sendable {
        public var excludeBOS = true
        public var zeroAblation: ZeroAblation = .allPositions
        /// Sequences per forward; the logits of one batch take batch × T × 50257 × 4 bytes, three times over.
        public var batchSize = 4
        public init() {}
    }

    /// Evaluates every target over `sequences` (batched in order; all sequences of one batch must have one length).
    public static func evaluate(model: GPT2Model, targets: [SpliceTarget], sequences: [[Int32]],
                                options: Options = Options(), context: WorkContext = .silent) throws -> [SpliceResult] {
        guard !targets.isEmpty else { throw ActivationsError("splice: no hooks to evaluate") }
        guard !sequences.isEmpty else { throw ActivationsError("splice: no token sequences to evaluate on") }
        guard options.batchSize >= 1 else { throw ActivationsError("splice: batch size must be at least 1") }
        let plans = try targets.map { try Plan(hook: $0.hook, nLayer: model.config.nLayer) }
        var sums = targets.map { SpliceSums(hook: $0.hook) }
        var start = 0
        while start < sequences.count {
            try context.checkCancelled()
            var batch = [sequences[start]]
            while start + batch.count < sequences.count, batch.count < options.batchSize,
                  sequences[start + batch.count].count == sequences[start].count {
                batch.append(sequences[start + batch.count])
            }
            try evaluateBatch(model: model, targets: targets, plans: plans, batch: batch, options: options,
                              sums: &sums, context: context)
            start += batch.count
            context.report(ProgressUpdate(task: "splice", done: start, total: sequences.count, unit: "sequences"))
        }
        return sums.map { $0.result() }
    }

    /// The same over context windows (e.g. from `ContextWindows`).
    public static func evaluate(model: GPT2Model, targets: [SpliceTarget], windows: [TokenWindow],
                                options: Options = Options(), context: WorkContext = .silent) throws -> [SpliceResult] {
        try evaluate(model: model, targets: targets, sequences: windows.map(\.tokens), options: options, context: context)
    }

    /// A target's hook and the residual its block half starts from (the same hook for residual hooks).
    private struct Plan {
        let hook: String
        let residualBefore: String
        init(hook: String, nLayer: Int) throws {
            let point: HookPoint
            do { point = try HookPoint.parse(hook, nLayer: nLayer) } catch { throw ActivationsError("splice: \(error)") }
            guard case .block(let layer, let kind) = point, point.isPerToken else {
                throw ActivationsError("splice: cannot splice '\(hook)'; splice a per-token block hook (blocks.L.hook_resid_pre, attn.hook_z, hook_mlp_out, …; not hook_embed, ln_final or attention scores and patterns)")
            }
            self.hook = point.name
            residualBefore = HookPoint.name(layer: layer, kind: kind.residualBefore)
        }
    }

    private static func evaluateBatch(model: GPT2Model, targets: [SpliceTarget], plans: [Plan], batch: [[Int32]],
                                      options: Options, sums: inout [SpliceSums], context: WorkContext) throws {
        let B = batch.count, T = batch[0].count
        let tokens = batch.flatMap { $0 }
        let isBOS = tokens.map { $0 == endOfTextToken }
        let include = isBOS.map { !options.excludeBOS || !$0 }
        var predictionInclude: [Bool] = []
        for b in 0..<B { for t in 0..<max(0, T - 1) { predictionInclude.append(include[b * T + t]) } }
        let clean = try model.forward(tokens: tokens, batch: B, seqLen: T,
                                      captures: Set(plans.map(\.residualBefore) + plans.map(\.hook)), logits: true)
        guard let cleanLogits = clean.logits else { throw ActivationsError("splice: the clean pass returned no logits") }
        let cleanLSE = Losses.rowLogSumExp(cleanLogits)
        let ceClean = try Losses.crossEntropy(logits: cleanLogits, logSumExp: cleanLSE, tokens: tokens, batch: B, seqLen: T)
        // true = patch this row
        let reconRows = include
        let zeroRows = options.zeroAblation == .allPositions ? Array(repeating: true, count: tokens.count) : reconRows

        /// CE and KL of the pass with the hook's rows in `rows` replaced by `value`'s (the others keep the clean value).
        func patchedLosses(_ plan: Plan, _ value: Matrix, rows: [Bool]) throws -> (ce: [Float], kl: [Float]) {
            guard let hookValue = clean.captures[plan.hook], let residual = clean.captures[plan.residualBefore] else {
                throw ActivationsError("splice: the clean pass did not capture \(plan.residualBefore) / \(plan.hook)")
            }
            guard value.rows == hookValue.rows, value.cols == hookValue.cols else {
                throw ActivationsError("splice \(plan.hook): reconstruction is [\(value.rows), \(value.cols)], input was [\(hookValue.rows), \(hookValue.cols)]")
            }
            var replaced = value
            let d = replaced.cols
            replaced.data.withUnsafeMutableBufferPointer { v in
                hookValue.data.withUnsafeBufferPointer { c in
                    for r in 0..<rows.count where !rows[r] {
                        (v.baseAddress! + r * d).update(from: c.baseAddress! + r * d, count: d)
                    }
                }
            }
            let result = try model.resume(replacing: plan.hook, with: replaced, residualBefore: residual, tokens: tokens,
                                          batch: B, seqLen: T, context: context)
            guard let logits = result.logits else { throw ActivationsError("splice: a patched pass returned no logits") }
            return try Losses.crossEntropyAndKL(clean: cleanLogits, cleanLogSumExp: cleanLSE, patched: logits,
                                                tokens: tokens, batch: B, seqLen: T)
        }

        var zeroByHook: [String: (ce: [Float], kl: [Float])] = [:]
        for (i, plan) in plans.enumerated() {
            try context.checkCancelled()
            guard let hookValue = clean.captures[plan.hook] else {
                throw ActivationsError("splice: the clean pass did not capture \(plan.hook)")
            }
            if zeroByHook[plan.hook] == nil {
                zeroByHook[plan.hook] = try patchedLosses(plan, Matrix(rows: hookValue.rows, cols: hookValue.cols), rows: zeroRows)
            }
            let zero = zeroByHook[plan.hook]!
            sums[i].add(ceClean: ceClean, ceZero: zero.ce, klZero: zero.kl,
                        predictionInclude: predictionInclude, positionInclude: include)
            let (reconstruction, active) = try targets[i].reconstructCounting(hookValue)
            if let active {
                guard active.count == hookValue.rows else {
                    throw ActivationsError("splice \(plan.hook): \(active.count) active-feature counts for \(hookValue.rows) rows")
                }
                sums[i].add(activeFeatures: active, rows: reconRows)
            }
            let recon = try patchedLosses(plan, reconstruction, rows: reconRows)
            sums[i].add(ceRecon: recon.ce, klRecon: recon.kl, predictionInclude: predictionInclude, positionInclude: include)
        }
    }
}

/// Token-weighted running sums of one target's metrics.
private struct SpliceSums {
    let hook: String
    var ceClean = 0.0, ceZero = 0.0, ceRecon = 0.0, klZero = 0.0, klRecon = 0.0
    var predictions = 0, positions = 0
    var activeFeatures = 0, countedRows = 0

    init(hook: String) { self.hook = hook }

    mutating func add(activeFeatures active: [Int], rows: [Bool]) {
        for (r, use) in rows.enumerated() where use { activeFeatures += active[r]; countedRows += 1 }
    }

    mutating func add(ceClean clean: [Float], ceZero zero: [Float], klZero kl: [Float], predictionInclude: [Bool],
                      positionInclude: [Bool]) {
        for (k, use) in predictionInclude.enumerated() where use {
            ceClean += Double(clean[k]); ceZero += Double(zero[k]); predictions += 1
        }
        for (k, use) in positionInclude.enumerated() where use { klZero += Double(kl[k]); positions += 1 }
    }

    mutating func add(ceRecon recon: [Float], klRecon kl: [Float], predictionInclude: [Bool], positionInclude: [Bool]) {
        for (k, use) in predictionInclude.enumerated() where use { ceRecon += Double(recon[k]) }
        for (k, use) in positionInclude.enumerated() where use { klRecon += Double(kl[k]) }
    }

    func result() -> SpliceResult {
        let p = Double(max(1, predictions)), q = Double(max(1, positions))
        return SpliceResult(hook: hook, ceClean: ceClean / p, ceZero: ceZero / p, ceRecon: ceRecon / p,
                            klZero: klZero / q, klRecon: klRecon / q,
                            l0: countedRows > 0 ? Double(activeFeatures) / Double(countedRows) : nil,
                            predictions: predictions, positions: positions)
    }
}
