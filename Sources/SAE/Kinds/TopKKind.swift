// TopK (Gao et al. 2024), as SAELens's TopK training SAE: c = ReLU(TopK_k(W_e(x − b_d) + b_e)) per token, a
// unit-norm decoder, loss ‖x′ − x‖² plus AuxK: the top `aux_k` pre-activations among the dead latents (not fired
// for `dead_window` training tokens) reconstruct the detached residual e = x − x′ without b_dec,
//   L_aux = aux_coefficient · min(n_dead/aux_k, 1) · (1/B) Σ_b ‖Σ_j a_bj W_dec[j] − e_b‖²,
// with a_bj the raw pre-activation (SAELens: k_aux = min(aux_k, n_dead), aux_k = d_in/2 by default).
import Foundation
import Tensor

enum TopKKind: SAEKind {
    static let name = "topk"
    static let summary = "TopK: c = ReLU(TopK_k(W_e(x − b_d) + b_e)) per token, unit-norm decoder rows, loss ‖x′ − x‖² + AuxK on dead latents"
    static let options = [
        SAEKindOption("k", .integer, default: "32", "active features per token"),
        SAEKindOption("aux_k", .integer, default: "d_in/2", "dead latents in the AuxK reconstruction (0 turns AuxK off)"),
        SAEKindOption("aux_coefficient", .number, default: "1", "weight of the AuxK loss"),
        SAEKindOption("dead_window", .integer, default: "4096000", "training tokens without firing after which a latent is dead"),
    ]
    static let sparsityControl = "k"
    static let decoderConstraint = DecoderConstraint.unitNorm
    static let saelensArchitecture = "topk"

    static func applyDefaults(_ config: inout SAEConfig) { applyTopKDefaults(&config) }

    static func applyTopKDefaults(_ config: inout SAEConfig) {
        if config.options["k"] == nil { config.options["k"] = Double(min(32, config.dSAE)) }
        if config.options["aux_k"] == nil { config.options["aux_k"] = Double(max(1, config.dIn / 2)) }
        if config.options["aux_coefficient"] == nil { config.options["aux_coefficient"] = 1 }
        if config.options["dead_window"] == nil { config.options["dead_window"] = 4_096_000 }
    }

    static func validate(_ config: SAEConfig) throws { try validateTopK(config) }

    static func validateTopK(_ config: SAEConfig) throws {
        let k = config.option("k"), auxK = config.option("aux_k")
        guard k >= 1, k <= Double(config.dSAE), k == k.rounded() else {
            throw SAEError("SAE config: k must be a whole number in 1...d_sae (\(config.dSAE)), got \(k)")
        }
        guard auxK >= 0, auxK <= Double(config.dSAE), auxK == auxK.rounded() else {
            throw SAEError("SAE config: aux_k must be a whole number in 0...d_sae (\(config.dSAE)), got \(auxK)")
        }
        guard config.option("aux_coefficient") >= 0 else { throw SAEError("SAE config: aux_coefficient must be ≥ 0, got \(config.option("aux_coefficient"))") }
        let window = config.option("dead_window")
        guard window >= 1, window == window.rounded(), window < Double(1 << 30) else {
            throw SAEError("SAE config: dead_window must be a whole number of tokens in 1..<2^30, got \(window)")
        }
    }

    @inline(__always)
    static func activateRow(_ p: UnsafeMutablePointer<Float>, _ context: ActivationContext, _ rng: inout NoiseStream,
                            _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>, dense: Bool) -> Int {
        let found = TopKSelection.topPositive(p, context.bEnc, context.m, k: Int(context.config.option("k")), feature, value)
        if dense {
            p.update(repeating: 0, count: context.m)
            for e in 0..<found { p[Int(feature[e])] = value[e] }
        }
        return found
    }

    static func finishStep(_ ws: StepWorkspace, _ sae: SAE, needGradients: Bool) {
        AuxK.apply(ws, sae, needGradients: needGradients)
    }

    static func saelensFields(_ config: SAEConfig) -> [String: Any] {
        ["k": Int(config.option("k")), "rescale_acts_by_decoder_norm": false]
    }

    static func readSAELens(_ cfg: SAELensConfigFields, _ config: inout SAEConfig) throws {
        // SAELens 6: `k`; before 6.0: activation_fn_kwargs.k.
        var k = try cfg.integer("k")
        if k == nil, let kwargs = cfg.value("activation_fn_kwargs") as? [String: Any] {
            let inner = SAELensConfigFields(path: cfg.path, fields: kwargs, metadata: [:], spelledAs: ["k": "activation_fn_kwargs.k"])
            k = try inner.integer("k")
        }
        guard let k else { throw cfg.refuse("k", "is missing: a TopK folder needs its k") }
        guard k >= 1, k <= config.dSAE else { throw cfg.refuse("k", "must be in 1...d_sae (\(config.dSAE))") }
        config.options["k"] = Double(k)
        if try cfg.bool("rescale_acts_by_decoder_norm") == true {
            throw cfg.refuse("rescale_acts_by_decoder_norm", "is not supported (save the SAE from SAELens with the norms folded)")
        }
    }
}

extension SAEArchitecture {
    public static let topk = SAEArchitecture(TopKKind.self)
}

/// Top-k selection over one row without allocation.
enum TopKSelection {
    /// The up to k largest positive values of p[j] + b[j] (ties: the lower feature wins), written in ascending
    /// feature order; returns how many.
    @inline(__always)
    static func topPositive(_ p: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ m: Int, k: Int,
                            _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>) -> Int {
        // A min-heap of the best k so far in feature/value[0..<count]; its root is the bar a newcomer must beat.
        var count = 0
        var bar: Float = 0
        var j = 0
        while j < m && count < k {
            let v = p[j] + b[j]
            if v > 0 {
                siftUpAppending(v, Int32(j), feature, value, &count)
                if count == k { bar = value[0] }
            }
            j += 1
        }
        // The heap is full: a newcomer must beat its root. 16 lanes compared at a time (most blocks have none), the
        // lanes that pass taken in feature order against the bar as it rises, as the scalar loop would.
        let rp = UnsafeRawPointer(p), rb = UnsafeRawPointer(b)
        while j + 16 <= m {
            let v = rp.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                + rb.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            if any(v .> SIMD16<Float>(repeating: bar)) {
                for q in 0..<16 where v[q] > bar {
                    siftDownReplacingRoot(v[q], Int32(j + q), feature, value, count)
                    bar = value[0]
                }
            }
            j += 16
        }
        while j < m {
            let v = p[j] + b[j]
            if v > bar {
                siftDownReplacingRoot(v, Int32(j), feature, value, count)
                bar = value[0]
            }
            j += 1
        }
        sortByFeature(feature, value, count)
        return count
    }

    /// The `k` largest values of p[j] + b[j] over the features with mask[j] (raw values, also negative), in
    /// ascending feature order; returns how many (min(k, number of masked features)).
    @inline(__always)
    static func topMasked(_ p: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ candidates: UnsafePointer<Int32>,
                          _ candidateCount: Int, k: Int,
                          _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>) -> Int {
        var count = 0
        for q in 0..<candidateCount {
            let j = Int(candidates[q])
            let v = p[j] + b[j]
            if count < k {
                siftUpAppending(v, Int32(j), feature, value, &count)
            } else if v > value[0] {
                siftDownReplacingRoot(v, Int32(j), feature, value, count)
            }
        }
        sortByFeature(feature, value, count)
        return count
    }

    /// Heap order: smaller value first; at equal values the higher feature is "smaller" (leaves first).
    @inline(__always)
    static func less(_ v: Float, _ f: Int32, _ w: Float, _ g: Int32) -> Bool { v < w || (v == w && f > g) }

    /// Appends (v, f) to the min-heap in feature/value[0..<count] and restores the heap order.
    @inline(__always)
    static func siftUpAppending(_ v: Float, _ f: Int32, _ feature: UnsafeMutablePointer<Int32>,
                                _ value: UnsafeMutablePointer<Float>, _ count: inout Int) {
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard less(v, f, value[parent], feature[parent]) else { break }
            value[i] = value[parent]; feature[i] = feature[parent]; i = parent
        }
        value[i] = v; feature[i] = f
    }

    @inline(__always)
    static func siftDownReplacingRoot(_ v: Float, _ f: Int32, _ feature: UnsafeMutablePointer<Int32>,
                                      _ value: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while true {
            let l = 2 * i + 1
            guard l < count else { break }
            var c = l
            if l + 1 < count, less(value[l + 1], feature[l + 1], value[l], feature[l]) { c = l + 1 }
            guard less(value[c], feature[c], v, f) else { break }
            value[i] = value[c]; feature[i] = feature[c]; i = c
        }
        value[i] = v; feature[i] = f
    }

    /// Insertion sort by feature (k is small).
    @inline(__always)
    static func sortByFeature(_ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>, _ count: Int) {
        guard count > 1 else { return }
        for i in 1..<count {
            let f = feature[i], v = value[i]
            var j = i
            while j > 0 && feature[j - 1] > f { feature[j] = feature[j - 1]; value[j] = value[j - 1]; j -= 1 }
            feature[j] = f; value[j] = v
        }
    }
}

/// The AuxK term of TopK and BatchTopK (see TopKKind's header), in training forwards only.
enum AuxK {
    static func apply(_ ws: StepWorkspace, _ sae: SAE, needGradients: Bool) {
        let config = sae.config
        guard ws.training, ws.rows > 0, let since = sae.tokensSinceFired, since.count == sae.dSAE else { return }
        let auxK = Int(config.option("aux_k")), coefficient = config.option("aux_coefficient")
        let window = Int(config.option("dead_window"))
        guard auxK > 0, coefficient > 0 else { return }
        let dead = since.indices.filter { since[$0] > window }.map { Int32($0) }
        guard !dead.isEmpty else { return }
        let kAux = min(auxK, dead.count)
        let scale = min(Double(dead.count) / Double(auxK), 1)
        let B = ws.rows, n = ws.dIn, m = ws.dSAE
        ws.auxPerRow = kAux
        ws.auxFeature.ensure(B * kAux); ws.auxValue.ensure(B * kAux); ws.auxGrad.ensure(B * kAux)
        if needGradients { ws.auxDx.ensure(B * n) }
        let g = Float(2 * coefficient * scale / Double(B))
        let workers = min(Parallel.workers(forWork: B * kAux * n * 2), max(1, B / 8))
        var partial = [Double](repeating: 0, count: workers)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: n * workers)
        defer { scratch.deallocate() }
        let pre = ws.pre.base, xc = ws.xc.base, recon = ws.recon.base, auxDx = ws.auxDx.base
        let feat = ws.auxFeature.base, val = ws.auxValue.base, grad = ws.auxGrad.base
        dead.withUnsafeBufferPointer { candidates in
            sae.b_enc.withUnsafeBufferPointer { benc in
                sae.b_dec.withUnsafeBufferPointer { bdec in
                    sae.W_dec.data.withUnsafeBufferPointer { wdBuf in
                        partial.withUnsafeMutableBufferPointer { part in
                            let wd = wdBuf.baseAddress!
                            Parallel.run(workers) { w in
                                let diff = scratch + n * w
                                var sum = 0.0
                                for b in Parallel.slice(B, part: w, of: workers) {
                                    let f = feat + b * kAux, v = val + b * kAux
                                    let found = TopKSelection.topMasked(pre + b * m, benc.baseAddress!, candidates.baseAddress!,
                                                                        candidates.count, k: kAux, f, v)
                                    precondition(found == kAux)
                                    // diff = ê − e = Σ a W_dec[j] − (x − x′), with x = xc + b_dec.
                                    let xcr = xc + b * n, rr = recon + b * n
                                    for i in 0..<n { diff[i] = rr[i] - xcr[i] - bdec[i] }
                                    for q in 0..<kAux { Vec.axpy(v[q], wd + Int(f[q]) * n, diff, n) }
                                    sum += Vec.sumSquaresDouble(diff, n)
                                    guard needGradients else { continue }
                                    let dx = auxDx + b * n
                                    for i in 0..<n { dx[i] = g * diff[i] }
                                    for q in 0..<kAux { grad[b * kAux + q] = Vec.dot(dx, wd + Int(f[q]) * n, n) }
                                }
                                part[w] = sum
                            }
                        }
                    }
                }
            }
        }
        let auxTerm = coefficient * scale * partial.reduce(0, +) / Double(B)
        ws.terms.auxTerm = auxTerm
        ws.terms.loss += auxTerm
    }
}

extension TopKKind {
    static func saelensTraining(_ c: SAEConfig) throws -> SAELensTraining? {
        try SAELensTraining.requireSummedMSE(c)
        return SAELensTraining(className: "TopKTrainingSAEConfig", note: "TopK with AuxK",
                               fields: [try SAELensTraining.option(c, "k", as: "k"),
                                        try SAELensTraining.option(c, "aux_coefficient", as: "aux_loss_coefficient", default: 1)])
    }
}
