// The forward and backward pass of one SAE on one batch, using the sparsity of the codes c.
//
// Shapes: x, xc, x′, dx [B, n]; pre [B, m]; the active entries of c as a row-major list (CSR, ~B·L0 entries) and
// its per-feature transpose (CSC). Only the encoder's forward product is dense:
//   xc   = x − b_dec                                   [B, n]
//   pre  = xc · W_encᵀrows + b_enc (+ σε for nsae)      [B, m]   one sgemm
//   c    = f(pre), the architecture's activation       kept only where active (SAEKind.activateRow)
//   x′   = b_dec + Σ_{j active in b} c_bj · W_dec[j]   [B, n]   sparse: B·L0 row axpys
//   L    = (1/B)Σ_b (‖x′_b − x_b‖² [/n when mse=mean] + β‖c_b‖₁)
// Everything is generic over the architecture (K: SAEKind), so the per-entry loops are specialised per kind.
// Backward (s = 2/B, or 2/(B·n) when mse=mean), the first two lines fused into the decode loop while row b's
// decoder rows are in cache:
//   dx_b        = s·(x′_b − x_b)
//   dpre_bj     = (dx_b · W_dec[j] + β/B) · f′(pre_bj)       only for active (b, j); f′ = SAEKind.slope
//   dW_dec[j]   = Σ_{b: j active} c_bj · dx_b               (per feature, from the CSC list, into gradDec [m, n],
//                                                            blocked over columns: SparseKernels.swift)
//   dW_enc[:,j] = Σ_{b: j active} dpre_bj · xc_b             (into gradEnc [m, n]; Adam reads both row by row)
//   db_enc[j]   = Σ_b dpre_bj
//   db_dec      = Σ_b dx_b − W_enc · db_enc                 (b_dec enters through x′ and through xc)
import Foundation
import Tensor

/// A growable buffer of plain values, reused across steps so a training step allocates nothing.
final class Scratch<T> {
    private(set) var base: UnsafeMutablePointer<T>
    private(set) var capacity: Int
    var count = 0

    init(capacity: Int = 16) {
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }
    deinit { base.deallocate() }

    /// Makes room for `n` values; contents are not kept.
    func ensure(_ n: Int) {
        guard n > capacity else { return }
        base.deallocate()
        capacity = max(n, capacity * 2)
        base = .allocate(capacity: capacity)
    }

    @inline(__always) func append(_ v: T) {
        if count == capacity {
            let bigger = UnsafeMutablePointer<T>.allocate(capacity: capacity * 2)
            bigger.moveInitialize(from: base, count: count)
            base.deallocate()
            base = bigger
            capacity *= 2
        }
        (base + count).initialize(to: v)
        count += 1
    }

    func array(_ n: Int) -> [T] { Array(UnsafeBufferPointer(start: base, count: n)) }

    /// Grows to hold at least `n` values, keeping the first `count`.
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        let newCapacity = max(n, capacity * 2)
        let bigger = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
        bigger.moveInitialize(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity = newCapacity
    }
}

/// The active entries one worker found in its rows.
final class CodePart {
    let feature = Scratch<Int32>(capacity: 1 << 14)
    let value = Scratch<Float>(capacity: 1 << 14)
    let rowCount = Scratch<Int32>(capacity: 256)
    func clear() { feature.count = 0; value.count = 0; rowCount.count = 0 }
    /// Room for `extra` more entries, so a row can be written through plain pointers.
    func reserve(_ extra: Int) { feature.reserve(feature.count + extra); value.reserve(value.count + extra) }
}

/// The large buffers of a step that live only from one forward to the end of its Adam update: the dense
/// pre-activations (and the dense path's codes) [B, m], the weight gradients gradDec/gradEnc [m, n] and the sparse
/// kernels' tile-major copies.
/// Ownership: the workspaces of one group's layers may share one instance because a group trains its layers one
/// after another (each `trainStep` runs forward → backward → Adam before the next layer's starts). Workspaces that
/// step concurrently (on different threads) must not share one. Sizes grow to the largest user.
final class SharedStepBuffers {
    let pre = Scratch<Float>()
    let gradDec = Scratch<Float>()
    let gradEnc = Scratch<Float>()
    /// Tile-major copies of dx, xc and AuxK's dx [B, n] for the sparse weight gradients (SparseKernels.swift).
    let packedDx = Scratch<Float>()
    let packedXc = Scratch<Float>()
    let packedAuxDx = Scratch<Float>()
    /// A block of rows of the dense path's G = dx·W_decᵀ (DenseStep.swift).
    let denseBlock = Scratch<Float>()
    init() {}
}

final class StepWorkspace {
    let dIn: Int
    let dSAE: Int
    private(set) var rows = 0

    let xc = Scratch<Float>()
    /// Dense pre-activations [B, m], only alive during `forward`, so the layers of a group can share one.
    let pre: Scratch<Float>
    let recon = Scratch<Float>()
    let dx = Scratch<Float>()
    let inputNorms = Scratch<Float>()
    /// Per-row input normalization x ↦ (x − shift)·scale, when the SAE normalizes its inputs.
    let rowShift = Scratch<Float>()
    let rowScale = Scratch<Float>()
    let rowSquaredError = Scratch<Double>()
    // Active entries, row-major.
    let rowStart = Scratch<Int>()
    let entryFeature = Scratch<Int32>()
    let entryRow = Scratch<Int32>()
    let entryValue = Scratch<Float>()
    let entrySlope = Scratch<Float>()
    let entryGrad = Scratch<Float>()
    /// Per row, the first of its entries not yet decoded by the feature-blocked decode.
    let rowCursor = Scratch<Int>()
    /// Per feature (and per feature's AuxK entries), the first of its grouped entries not yet summed by the
    /// row-chunked weight gradients.
    let featureCursor = Scratch<Int>()
    /// The sparse kernels' cache blocking (tests set small blocks so that many are crossed).
    var sparseBlocking = SparseBlocking()
    // The same entries grouped by feature (k in colStart[j]..<colStart[j+1]): row, c and dL/dpre.
    let colStart = Scratch<Int>()
    let colRow = Scratch<Int32>()
    let colValue = Scratch<Float>()
    let colGrad = Scratch<Float>()
    private let fill = Scratch<Int>()
    // An architecture's auxiliary entries (TopK's AuxK): `auxPerRow` entries per row, row-major, each with its
    // code a, its dL/dpre, and per row the gradient of the auxiliary term w.r.t. its own reconstruction (auxDx).
    var auxPerRow = 0
    let auxFeature = Scratch<Int32>()
    let auxValue = Scratch<Float>()
    let auxGrad = Scratch<Float>()
    let auxDx = Scratch<Float>()
    let auxColStart = Scratch<Int>()
    let auxColRow = Scratch<Int32>()
    let auxColValue = Scratch<Float>()
    let auxColGrad = Scratch<Float>()
    private var parts: [CodePart] = []

    /// Per feature, the largest noise-free pre-activation W_e·xc + b_e over the batch, recorded when the forward
    /// draws training noise: a feature that fires only because of the noise (the NSAE's σ = 1 makes nearly every
    /// feature fire somewhere in a batch of 4096) is still dead where it is evaluated, without noise.
    let noiseFreeMaximum = Scratch<Float>()
    private(set) var recordedNoiseFreeFiring = false
    /// Per-worker partial results of the activation and the dense step, [workers, m] each.
    private let workerMaximum = Scratch<Float>()
    let workerCounts = Scratch<Int32>()
    let workerColumnSums = Scratch<Float>()
    /// Per feature, the rows where it fired, when counted on the codes (the dense path), else from colStart.
    let fireCount = Scratch<Int32>()
    private(set) var countsAreDense = false
    /// Σ c over the batch, when counted on the dense codes (nil: sum the entry list).
    private(set) var denseL1: Double?
    /// The density nnz/(B·m) of the last forward with gradients: whether the next writes its codes dense.
    private(set) var previousDensity: Double?

    var nnz = 0
    var terms = LossTerms()
    /// Whether the last forward ran the architecture's training-time behaviour.
    private(set) var training = false
    /// The architecture's whole-batch value of the last forward (BatchTopK's threshold), if any.
    private(set) var batchValue: Float?
    var gradBEnc: [Float]
    var gradBDec: [Float]
    /// Gradients of the architecture's extra parameters (filled by its `finishStep`), in their order.
    var gradExtra: [[Float]] = []
    var gradientsReady = false
    /// Whether the last forward took the dense path (DenseStep.swift): the per-feature lists are then not built.
    var denseGradients = false
    /// The weight gradients' dense rows [m, n] after `backward` (either path), what Adam reads.
    let gradDec: Scratch<Float>
    let gradEnc: Scratch<Float>
    let packedDx: Scratch<Float>, packedXc: Scratch<Float>, packedAuxDx: Scratch<Float>
    let denseBlock: Scratch<Float>

    init(dIn: Int, dSAE: Int, shared: SharedStepBuffers? = nil) {
        self.dIn = dIn; self.dSAE = dSAE
        let buffers = shared ?? SharedStepBuffers()
        pre = buffers.pre
        gradDec = buffers.gradDec
        gradEnc = buffers.gradEnc
        packedDx = buffers.packedDx
        packedXc = buffers.packedXc; packedAuxDx = buffers.packedAuxDx
        denseBlock = buffers.denseBlock
        gradBEnc = [Float](repeating: 0, count: dSAE)
        gradBDec = [Float](repeating: 0, count: dIn)
    }

    /// Runs the forward pass. With `denseCodes`, `pre` holds c (zeros included) afterwards; otherwise only the
    /// active-entry list is complete. The noise of row block k is drawn from stream (noiseSeed, step, k).
    /// `training` (default: `needGradients`) selects the architecture's training-time behaviour.
    func forward(_ sae: SAE, x: Matrix, noiseSeed: UInt64?, step: UInt64, denseCodes: Bool, needGradients: Bool,
                 training: Bool? = nil) {
        x.data.withUnsafeBufferPointer { px in
            forward(sae, x: px.baseAddress!, rows: x.rows, noiseSeed: noiseSeed, step: step,
                    denseCodes: denseCodes, needGradients: needGradients, training: training)
        }
    }

    /// `readsOnlyCounts`: the caller reads the reconstruction and the counts (nnz, `fires`, `l1Sum`), not the entry
    /// list, so a forward without gradients may write its codes dense and count them as the training step does
    /// (chosen by the density of this workspace's last such forward).
    func forward(_ sae: SAE, x: UnsafePointer<Float>, rows B: Int, noiseSeed: UInt64?, step: UInt64,
                 denseCodes: Bool, needGradients: Bool, training: Bool? = nil, readsOnlyCounts: Bool = false) {
        forward(sae.config.architecture.kind, sae, x: x, rows: B, noiseSeed: noiseSeed, step: step,
                denseCodes: denseCodes, needGradients: needGradients, training: training ?? needGradients,
                readsOnlyCounts: readsOnlyCounts)
    }

    private func forward<K: SAEKind>(_ kind: K.Type, _ sae: SAE, x: UnsafePointer<Float>, rows B: Int, noiseSeed: UInt64?,
                                     step: UInt64, denseCodes: Bool, needGradients: Bool, training: Bool,
                                     readsOnlyCounts: Bool) {
        let n = dIn, m = dSAE
        rows = B
        gradientsReady = false
        denseGradients = false
        self.training = training
        auxPerRow = 0
        xc.ensure(B * n); pre.ensure(B * m); recon.ensure(B * n); inputNorms.ensure(B); rowSquaredError.ensure(B)
        if needGradients { dx.ensure(B * n) }
        guard B > 0 else { terms = LossTerms(); nnz = 0; return }
        let workers = min(Parallel.workers(forWork: B * n * 4), max(1, B / 8))
        let xcP = xc.base, normsP = inputNorms.base
        let normalization = sae.config.normalization
        if normalization.transformsRows { rowShift.ensure(B); rowScale.ensure(B) }
        let shiftP = rowShift.base, scaleP = rowScale.base
        sae.b_dec.withUnsafeBufferPointer { bdec in
            Parallel.run(workers) { w in
                for b in Parallel.slice(B, part: w, of: workers) {
                    let xr = x + b * n, xcr = xcP + b * n
                    normsP[b] = Vec.dot(xr, xr, n).squareRoot()
                    if normalization.transformsRows {
                        let (shift, scale) = InputNormalizer.rowParameters(normalization, xr, n, norm: normsP[b])
                        shiftP[b] = shift; scaleP[b] = scale
                        for i in 0..<n { xcr[i] = (xr[i] - shift) * scale - bdec[i] }
                    } else {
                        for i in 0..<n { xcr[i] = xr[i] - bdec[i] }
                    }
                }
            }
        }
        sae.encoderRows.data.withUnsafeBufferPointer { we in
            BLAS.sgemm(transA: false, transB: true, m: B, n: m, k: n, a: xcP, lda: n, b: we.baseAddress!, ldb: n,
                       beta: 0, c: pre.base, ldc: m)
        }
        // A training forward whose codes are expected dense (by the last batch's density) writes them dense and
        // counts them, without the entry list; the path is then chosen on this batch's own density, and a wrong
        // guess costs one pass (the list collected from the codes, or the codes scattered from the list).
        let counted = needGradients || readsOnlyCounts
        let codesOnly = counted && DenseStep.writesCodesDense(K.self, sae, previousDensity: previousDensity,
                                                              decodeOnly: !needGradients)
        activate(K.self, sae, rows: B, noiseSeed: noiseSeed, step: step, denseCodes: denseCodes, codesOnly: codesOnly)
        if DenseStep.chooses(K.self, sae, nnz: nnz, rows: B, decodeOnly: !needGradients) {
            if !codesOnly { scatterCodes(rows: B, tally: needGradients) }
            denseDecode(K.self, sae, x: x, rows: B, needGradients: needGradients)
        } else {
            if codesOnly { collectEntries(K.self, rows: B) }
            decode(K.self, sae, x: x, rows: B, needGradients: needGradients)
        }
        if counted { previousDensity = Double(nnz) / (Double(B) * Double(m)) }
        K.finishStep(self, sae, needGradients: needGradients)
    }

    /// Adds b_enc (and noise), applies the activation, and collects the active entries; with `codesOnly`, writes
    /// the codes dense over `pre` and counts them (nnz, fireCount, denseL1) instead.
    private func activate<K: SAEKind>(_ kind: K.Type, _ sae: SAE, rows B: Int, noiseSeed: UInt64?, step: UInt64, denseCodes: Bool,
                                      codesOnly: Bool) {
        let m = dSAE
        let blocks = (B + GaussianNoise.rowsPerStream - 1) / GaussianNoise.rowsPerStream
        let workers = min(Parallel.workers(forWork: B * m * 2), blocks)
        while parts.count < workers { parts.append(CodePart()) }
        let sigma = noiseSeed != nil ? sae.config.sigma : nil
        let preP = pre.base
        let training = self.training
        let config = sae.config
        let edges = GaussianNoise.upperEdge
        let extra = K.featureValues(sae, training: training) ?? []
        recordedNoiseFreeFiring = training && (sigma ?? 0) > 0
        let recordMaximum = recordedNoiseFreeFiring
        if recordMaximum { workerMaximum.ensure(workers * m) }
        if codesOnly { workerCounts.ensure(workers * m) }
        countsAreDense = codesOnly
        denseL1 = nil
        let maximumP = workerMaximum.base, countsP = workerCounts.base
        var tallies = [(active: Int, l1: Double)](repeating: (0, 0), count: workers)
        sae.b_enc.withUnsafeBufferPointer { benc in
          extra.withUnsafeBufferPointer { extraP in
            edges.withUnsafeBufferPointer { edge in
                var context = ActivationContext(bEnc: benc.baseAddress!, m: m, config: config, sigma: sigma,
                                                noiseEdge: edge.baseAddress!, extra: extraP.baseAddress,
                                                batchValue: nil, training: training)
                if let v = K.prepareBatch(UnsafePointer(preP), rows: B, context: context) {
                    context = ActivationContext(bEnc: benc.baseAddress!, m: m, config: config, sigma: sigma,
                                                noiseEdge: edge.baseAddress!, extra: extraP.baseAddress,
                                                batchValue: v, training: training)
                }
                self.batchValue = context.batchValue
                let parts = self.parts
                tallies.withUnsafeMutableBufferPointer { tally in
                    Parallel.run(workers) { w in
                        let part = parts[w]
                        part.clear()
                        let maximum = maximumP + w * m, counts = countsP + w * m
                        if recordMaximum { maximum.update(repeating: -.infinity, count: m) }
                        if codesOnly { counts.update(repeating: 0, count: m) }
                        var active = 0, l1 = 0.0
                        for block in Parallel.slice(blocks, part: w, of: workers) {
                            var rng = NoiseStream(seed: GaussianNoise.streamSeed(base: noiseSeed ?? 0, step: step, block: block))
                            let rowEnd = min(B, (block + 1) * GaussianNoise.rowsPerStream)
                            for b in (block * GaussianNoise.rowsPerStream)..<rowEnd {
                                let p = preP + b * m
                                if recordMaximum { ActivationRows.raiseMaximum(maximum, p, m) }
                                if codesOnly {
                                    K.activateRowDense(p, context, &rng)
                                    let (found, sum) = ActivationRows.tally(p, m, counts)
                                    active += found; l1 += sum
                                    continue
                                }
                                part.reserve(m)
                                let start = part.feature.count
                                let f = part.feature.base + start, v = part.value.base + start
                                let found = K.activateRow(p, context, &rng, f, v, dense: denseCodes)
                                part.feature.count = start + found
                                part.value.count = start + found
                                part.rowCount.append(Int32(found))
                            }
                        }
                        tally[w] = (active, l1)
                    }
                }
                if recordMaximum {
                    // noiseFreeMaximum[j] = max_b pre[b, j] + b_enc[j], before the activation added noise.
                    noiseFreeMaximum.ensure(m)
                    let out = noiseFreeMaximum.base
                    out.update(from: maximumP, count: m)
                    for w in 1..<max(workers, 1) {
                        let other = maximumP + w * m
                        for j in 0..<m where other[j] > out[j] { out[j] = other[j] }
                    }
                    for j in 0..<m { out[j] += benc[j] }
                }
            }
          }
        }
        if codesOnly {
            nnz = tallies.reduce(0) { $0 + $1.active }
            denseL1 = tallies.reduce(0.0) { $0 + $1.l1 }
            mergeCounts(workers: workers)
        } else {
            mergeParts(K.self, workers: workers, rows: B)
        }
    }

    /// fireCount = Σ over workers of workerCounts.
    func mergeCounts(workers: Int) {
        let m = dSAE
        fireCount.ensure(m)
        let out = fireCount.base, counts = workerCounts.base
        out.update(from: counts, count: m)
        for w in 1..<max(workers, 1) {
            let other = counts + w * m
            for j in 0..<m { out[j] += other[j] }
        }
    }

    /// The entry list of the dense codes in `pre` (the activation wrote them dense, but the batch takes the
    /// sparse path): the entries `activateRow` would have listed, in its order.
    private func collectEntries<K: SAEKind>(_ kind: K.Type, rows B: Int) {
        let m = dSAE
        let workers = min(Parallel.workers(forWork: B * m), max(1, B / 8))
        while parts.count < workers { parts.append(CodePart()) }
        let parts = self.parts, preP = pre.base
        Parallel.run(workers) { w in
            let part = parts[w]
            part.clear()
            for b in Parallel.slice(B, part: w, of: workers) {
                part.reserve(m)
                let start = part.feature.count
                let found = ActivationRows.listNonzero(preP + b * m, m, part.feature.base + start, part.value.base + start)
                part.feature.count = start + found
                part.value.count = start + found
                part.rowCount.append(Int32(found))
            }
        }
        mergeParts(K.self, workers: workers, rows: B)
    }

    /// The codes dense in `pre` from the entry list (the activation listed them, but the batch takes the dense
    /// path); with `tally`, also counted as the dense activation counts them.
    private func scatterCodes(rows B: Int, tally: Bool) {
        let m = dSAE
        let workers = min(Parallel.workers(forWork: B * m), max(1, B / 8))
        if tally { workerCounts.ensure(workers * m) }
        let preP = pre.base, countsP = workerCounts.base
        let rs = rowStart.base, feat = entryFeature.base, val = entryValue.base
        var sums = [Double](repeating: 0, count: workers)
        sums.withUnsafeMutableBufferPointer { sum in
            Parallel.run(workers) { w in
                let counts = countsP + w * m
                if tally { counts.update(repeating: 0, count: m) }
                var l1 = 0.0
                for b in Parallel.slice(B, part: w, of: workers) {
                    let row = preP + b * m
                    row.update(repeating: 0, count: m)
                    for e in rs[b]..<rs[b + 1] { row[Int(feat[e])] = val[e] }
                    if tally { l1 += ActivationRows.tally(row, m, counts).sum }
                }
                sum[w] = l1
            }
        }
        if tally {
            mergeCounts(workers: workers)
            countsAreDense = true
            denseL1 = sums.reduce(0, +)
        }
    }

    private func mergeParts<K: SAEKind>(_ kind: K.Type, workers: Int, rows B: Int) {
        var total = 0
        for w in 0..<workers { total += parts[w].feature.count }
        nnz = total
        rowStart.ensure(B + 1)
        entryFeature.ensure(total); entryRow.ensure(total); entryValue.ensure(total); entrySlope.ensure(total)
        entryGrad.ensure(total)
        var e = 0, b = 0
        rowStart.base[0] = 0
        for w in 0..<workers {
            let part = parts[w]
            let k = part.feature.count
            (entryFeature.base + e).update(from: part.feature.base, count: k)
            (entryValue.base + e).update(from: part.value.base, count: k)
            let slope = entrySlope.base + e, value = part.value.base
            for q in 0..<k { slope[q] = K.slope(ofCode: value[q]) }
            for r in 0..<part.rowCount.count {
                let c = Int(part.rowCount.base[r])
                for q in 0..<c { entryRow.base[rowStart.base[b] + q] = Int32(b) }
                rowStart.base[b + 1] = rowStart.base[b] + c
                b += 1
            }
            e += k
        }
        precondition(b == B && e == total, "active-entry merge lost rows")
    }

    /// x′ = b_dec + Σ c_bj W_dec[j] per row and the loss terms; with gradients also dx = dL/dx′ and then dL/dpre
    /// of the active entries. Both passes walk W_dec a block of features at a time (SparseBlocking): every row of the
    /// worker's takes its entries in the block while the block's rows are cached, where row by row each row gathered
    /// its ~d_sae·L0 decoder rows from L3 or memory twice.
    private func decode<K: SAEKind>(_ kind: K.Type, _ sae: SAE, x: UnsafePointer<Float>, rows B: Int, needGradients: Bool) {
        let n = dIn
        let workers = min(Parallel.workers(forWork: (nnz + B) * n), max(1, B / 8))
        let config = sae.config
        let meanNorm = Kernels.sumDouble(inputNorms.base, count: B) / Double(B)
        let beta = K.sparsityWeight(config, meanInputNorm: meanNorm)
        let gradScale = Float(config.mse == .mean ? 2.0 / (Double(B) * Double(n)) : 2.0 / Double(B))
        let l1Grad = Float(beta / Double(B))
        let reconP = recon.base, dxP = dx.base, sqP = rowSquaredError.base
        let denormalize = config.normalization.transformsRows
        let shiftP = rowShift.base, scaleP = rowScale.base
        let rs = rowStart.base, feat = entryFeature.base, val = entryValue.base, slope = entrySlope.base, grad = entryGrad.base
        let m = dSAE, F = sparseBlocking.decodeFeatures(dIn: n)
        rowCursor.ensure(B)
        let cursor = rowCursor.base
        sae.W_dec.data.withUnsafeBufferPointer { wdBuf in
            sae.b_dec.withUnsafeBufferPointer { bdec in
                let wd = wdBuf.baseAddress!
                Parallel.run(workers) { w in
                    let rows = Parallel.slice(B, part: w, of: workers)
                    for b in rows { (reconP + b * n).update(from: bdec.baseAddress!, count: n) }
                    // x′_b += Σ c_bj W_dec[j], one block of features at a time for all the worker's rows.
                    Self.forEachFeatureBlock(rows: rows, features: m, blockSize: F, rowStart: rs, feature: feat, cursor: cursor) { b, entries in
                        let r = reconP + b * n
                        var e = entries.lowerBound
                        let end = entries.upperBound
                        while e + 3 < end {
                            Vec.axpy4(SIMD4(val[e], val[e + 1], val[e + 2], val[e + 3]), wd + Int(feat[e]) * n,
                                      wd + Int(feat[e + 1]) * n, wd + Int(feat[e + 2]) * n, wd + Int(feat[e + 3]) * n, r, n)
                            e += 4
                        }
                        while e + 1 < end {
                            Vec.axpy2(val[e], wd + Int(feat[e]) * n, val[e + 1], wd + Int(feat[e + 1]) * n, r, n)
                            e += 2
                        }
                        if e < end { Vec.axpy(val[e], wd + Int(feat[e]) * n, r, n) }
                    }
                    for b in rows {
                        let r = reconP + b * n
                        if denormalize {
                            let shift = shiftP[b], inverse = 1 / scaleP[b]
                            for i in 0..<n { r[i] = r[i] * inverse + shift }
                        }
                        let xr = x + b * n
                        var sq: Double = 0
                        for i in 0..<n { let d = Double(r[i] - xr[i]); sq += d * d }
                        sqP[b] = sq
                        guard needGradients else { continue }
                        let g = dxP + b * n
                        for i in 0..<n { g[i] = gradScale * (r[i] - xr[i]) }
                    }
                    guard needGradients else { return }
                    // dpre_bj = (dx_b · W_dec[j] + β/B) · f′(pre_bj), block by block as the decode.
                    Self.forEachFeatureBlock(rows: rows, features: m, blockSize: F, rowStart: rs, feature: feat, cursor: cursor) { b, entries in
                        let g = dxP + b * n
                        var e = entries.lowerBound
                        let end = entries.upperBound
                        while e + 3 < end {
                            let d = Vec.dot4(g, wd + Int(feat[e]) * n, wd + Int(feat[e + 1]) * n, wd + Int(feat[e + 2]) * n,
                                             wd + Int(feat[e + 3]) * n, n)
                            for q in 0..<4 { grad[e + q] = (d[q] + l1Grad) * slope[e + q] }
                            e += 4
                        }
                        while e + 1 < end {
                            let (d1, d2) = Vec.dot2(g, wd + Int(feat[e]) * n, wd + Int(feat[e + 1]) * n, n)
                            grad[e] = (d1 + l1Grad) * slope[e]
                            grad[e + 1] = (d2 + l1Grad) * slope[e + 1]
                            e += 2
                        }
                        if e < end { grad[e] = (Vec.dot(g, wd + Int(feat[e]) * n, n) + l1Grad) * slope[e] }
                    }
                }
            }
        }
        terms = LossTerms(sumSquaredError: (0..<B).reduce(0.0) { $0 + sqP[$1] },
                          sumL1: Kernels.sumDouble(entryValue.base, count: nnz), activeCount: nnz,
                          rows: B, width: n, mse: config.mse, beta: beta)
    }

    /// For each block of `blockSize` features in turn, body(b, the entries of row b in the block) for every row of
    /// `rows` (row b's entries at rowStart[b]..<rowStart[b + 1], in ascending feature order, as every activation lists
    /// them). `cursor` holds one index per row.
    @inline(__always)
    static func forEachFeatureBlock(rows: Range<Int>, features m: Int, blockSize: Int, rowStart: UnsafePointer<Int>,
                                    feature: UnsafePointer<Int32>, cursor: UnsafeMutablePointer<Int>,
                                    _ body: (_ row: Int, _ entries: Range<Int>) -> Void) {
        for b in rows { cursor[b] = rowStart[b] }
        var first = 0
        while first < m {
            let last = min(m, first + blockSize)
            for b in rows {
                let start = cursor[b]
                var end = start
                while end < rowStart[b + 1] && Int(feature[end]) < last { end += 1 }
                cursor[b] = end
                body(b, start..<end)
            }
            first = last
        }
    }

    /// Groups the active entries by feature and computes the bias gradients (after a forward with gradients).
    func backward(_ sae: SAE) {
        let n = dIn, m = dSAE, B = rows
        let dxP = dx.base
        if !denseGradients { groupEntriesByFeature() }   // the dense path summed db_enc in its dL/dpre pass
        groupAuxiliaryEntries()
        if !denseGradients { tiledWeightGradients() }
        // db_dec = Σ_b dx_b − W_encRowsᵀ · db_enc
        for i in 0..<n { gradBDec[i] = 0 }
        gradBDec.withUnsafeMutableBufferPointer { gb in
            for b in 0..<B { Vec.axpy(1, dxP + b * n, gb.baseAddress!, n) }
            gradBEnc.withUnsafeBufferPointer { ge in
                sae.encoderRows.data.withUnsafeBufferPointer { we in
                    BLAS.sgemm(transA: true, transB: false, m: n, n: 1, k: m, alpha: -1, a: we.baseAddress!, lda: n,
                               b: ge.baseAddress!, ldb: 1, beta: 1, c: gb.baseAddress!, ldc: 1)
                }
            }
        }
        gradientsReady = true
    }

    /// The sparse path's per-feature lists (counting sort by feature; each feature's entries keep ascending row
    /// order) and db_enc from them.
    private func groupEntriesByFeature() {
        let m = dSAE
        let feat = entryFeature.base, grad = entryGrad.base, val = entryValue.base, rowOf = entryRow.base
        colStart.ensure(m + 1); colRow.ensure(max(nnz, 1)); colValue.ensure(max(nnz, 1)); colGrad.ensure(max(nnz, 1))
        let cs = colStart.base
        fill.ensure(m)
        let cRow = colRow.base, cValue = colValue.base, cGrad = colGrad.base
        FeatureGrouping.group(count: nnz, features: m, feature: feat, start: cs, next: fill.base) { e, k in
            cRow[k] = rowOf[e]; cValue[k] = val[e]; cGrad[k] = grad[e]
        }
        for j in 0..<m {
            var s: Float = 0
            for k in cs[j]..<cs[j + 1] { s += colGrad.base[k] }
            gradBEnc[j] = s
        }
    }

    /// Feature j's gradient rows, dL/dW_dec[j] into `dec` and dL/dW_enc[:, j] into `enc` (n values each), copied
    /// from gradDec/gradEnc (valid after `backward`).
    @inline(__always)
    func featureGradients(_ j: Int, dec: UnsafeMutablePointer<Float>, enc: UnsafeMutablePointer<Float>) {
        let n = dIn
        dec.update(from: gradDec.base + j * n, count: n)
        enc.update(from: gradEnc.base + j * n, count: n)
    }

    /// The auxiliary entries grouped by feature, their sums added to db_enc (their pre-activations depend on b_enc
    /// and, through x − b_dec, on b_dec, which the W_encᵀ·db_enc term of db_dec then covers).
    private func groupAuxiliaryEntries() {
        let m = dSAE
        auxColStart.ensure(m + 1)
        let cs = auxColStart.base
        for j in 0...m { cs[j] = 0 }
        let total = auxPerRow * rows
        guard total > 0 else { return }
        auxColRow.ensure(total); auxColValue.ensure(total); auxColGrad.ensure(total)
        fill.ensure(m)
        let perRow = auxPerRow
        let aRow = auxColRow.base, aValue = auxColValue.base, aGrad = auxColGrad.base, value = auxValue.base, grad = auxGrad.base
        FeatureGrouping.group(count: total, features: m, feature: auxFeature.base, start: cs, next: fill.base) { e, k in
            aRow[k] = Int32(e / perRow); aValue[k] = value[e]; aGrad[k] = grad[e]
        }
        for j in 0..<m where cs[j + 1] > cs[j] {
            var s: Float = 0
            for k in cs[j]..<cs[j + 1] { s += auxColGrad.base[k] }
            gradBEnc[j] += s
        }
    }

    /// Σ c over the batch (after the forward).
    var l1Sum: Double { denseL1 ?? Kernels.sumDouble(entryValue.base, count: nnz) }

    /// Number of rows in which feature j was active (valid after `backward`, or after a forward that `readsOnlyCounts`).
    @inline(__always) func fires(_ j: Int) -> Int {
        countsAreDense ? Int(fireCount.base[j]) : colStart.base[j + 1] - colStart.base[j]
    }

    /// Whether feature j fired on this batch as it would where it is used: without the training noise when the
    /// forward drew noise, else as trained (valid after `backward`).
    @inline(__always) func firedWithoutNoise(_ j: Int) -> Bool {
        recordedNoiseFreeFiring ? noiseFreeMaximum.base[j] > 0 : fires(j) > 0
    }
}

extension ActivationRows {
    /// The entries with v = p + b above their feature's threshold (and above 0: c = ReLU(v)·H(v − θ)), as SAELens's
    /// JumpReLU; with `dense`, p holds the row's codes afterwards.
    @inline(__always)
    static func aboveThresholds(_ p: UnsafeMutablePointer<Float>, _ benc: UnsafePointer<Float>, _ theta: UnsafePointer<Float>,
                                _ m: Int, _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>,
                                dense: Bool) -> Int {
        var j = 0, k = 0
        let rp = UnsafeMutableRawPointer(p), rb = UnsafeRawPointer(benc), rt = UnsafeRawPointer(theta)
        while j + 16 <= m {
            let v = rp.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                + rb.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            let t = rt.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            let on = (v .> t) .& (v .> 0)
            if dense { rp.storeBytes(of: v.replacing(with: 0, where: .!on), toByteOffset: j * 4, as: SIMD16<Float>.self) }
            if any(on) {
                for q in 0..<16 where on[q] { feature[k] = Int32(j + q); value[k] = v[q]; k += 1 }
            }
            j += 16
        }
        while j < m {
            let v = p[j] + benc[j]
            let on = v > theta[j] && v > 0
            if on { feature[k] = Int32(j); value[k] = v; k += 1 }
            if dense { p[j] = on ? v : 0 }
            j += 1
        }
        return k
    }
}

/// SAELens's run-time input normalizations (see InputNormalization).
enum InputNormalizer {
    /// (shift, scale) of one row: the SAE encodes (x − shift)·scale and decodes to out/scale + shift.
    @inline(__always)
    static func rowParameters(_ mode: InputNormalization, _ x: UnsafePointer<Float>, _ n: Int, norm: Float) -> (Float, Float) {
        switch mode {
        case .constantNormRescale:
            return (0, norm > 0 ? Float(Double(n).squareRoot()) / norm : 1)
        case .layerNorm:
            var sum = 0.0
            for i in 0..<n { sum += Double(x[i]) }
            let mean = sum / Double(n)
            var sq = 0.0
            for i in 0..<n { let d = Double(x[i]) - mean; sq += d * d }
            let std = n > 1 ? (sq / Double(n - 1)).squareRoot() : 0
            return (Float(mean), Float(1 / (std + 1e-5)))
        case .none, .expectedAverageOnlyIn:
            return (0, 1)
        }
    }
}

/// Row activations shared by the architectures.
enum ActivationRows {
    /// Writes the entries of one row whose pre-activation is positive to `feature`/`value` (pre-activation value
    /// for now); returns how many. The caller reserved room for m entries.
    @inline(__always)
    static func positive(_ p: UnsafeMutablePointer<Float>, _ benc: UnsafePointer<Float>, _ m: Int,
                                    _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>,
                                    dense: Bool) -> Int {
        var j = 0, k = 0
        let rp = UnsafeMutableRawPointer(p), rb = UnsafeRawPointer(benc)
        while j + 16 <= m {
            let v = rp.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                + rb.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            let positive = v .> 0
            if dense { rp.storeBytes(of: v.replacing(with: 0, where: .!positive), toByteOffset: j * 4, as: SIMD16<Float>.self) }
            if any(positive) {
                for q in 0..<16 where v[q] > 0 { feature[k] = Int32(j + q); value[k] = v[q]; k += 1 }
            }
            j += 16
        }
        while j < m {
            let v = p[j] + benc[j]
            if v > 0 { feature[k] = Int32(j); value[k] = v; k += 1 }
            if dense { p[j] = max(v, 0) }
            j += 1
        }
        return k
    }

    /// One NSAE entry with noise: v + σ·Φ⁻¹(u) where that is positive, else 0 (NaN too); Φ⁻¹ is evaluated only
    /// where u's bucket bound allows activity. Shared by the list-writing and the dense activation, so both draw
    /// and keep the same values.
    @inline(__always)
    static func noisyPositive(_ v: Float, _ u: UInt32, _ sigma: Float, _ edge: UnsafePointer<Float>, shift: UInt32) -> Float {
        guard v + sigma * edge[Int(u >> shift)] > 0 else { return 0 }
        let noisy = v + sigma * GaussianNoise.normal(fromBits: u)
        return noisy > 0 ? noisy : 0
    }

    /// `noisyPositive` of eight entries at once, the same values lane for lane: v holds the entries' p + b, u
    /// their uniforms. Φ⁻¹ is evaluated (eight lanes together) only when some lane's bucket bound allows activity.
    @inline(__always)
    static func noisyPositive(_ v: SIMD8<Float>, _ u: SIMD8<UInt32>, _ sigma: Float, _ edge: UnsafePointer<Float>,
                              shift: UInt32) -> SIMD8<Float> {
        var bound = SIMD8<Float>()
        for lane in 0..<8 { bound[lane] = edge[Int(u[lane] >> shift)] }
        let possible = v + sigma * bound .> 0
        guard any(possible) else { return SIMD8<Float>() }
        let probability = (SIMD8<Double>(u) + 0.5) * (1.0 / 4_294_967_296.0)
        let noisy = v + sigma * SIMD8<Float>(GaussianNoise.inverseNormalCDF(probability, needed: possible))
        return noisy.replacing(with: 0, where: .!(possible .& (noisy .> 0)))
    }

    /// The uniforms of eight entries: the two 32-bit halves of four draws, low half first (the order the scalar
    /// loop takes them in).
    @inline(__always)
    static func uniforms(_ rng: inout NoiseStream) -> SIMD8<UInt32> {
        let bits = SIMD4<UInt64>(rng.next(), rng.next(), rng.next(), rng.next())
        let low = SIMD4<UInt32>(truncatingIfNeeded: bits), high = SIMD4<UInt32>(truncatingIfNeeded: bits &>> 32)
        return SIMD8<UInt32>(low[0], high[0], low[1], high[1], low[2], high[2], low[3], high[3])
    }

    /// As `positive`, with ε = σ·Φ⁻¹(u) added; ε is only evaluated where the bucket bound allows activity.
    @inline(__always)
    static func positiveWithNoise(_ p: UnsafeMutablePointer<Float>, _ benc: UnsafePointer<Float>, _ m: Int,
                                             _ sigma: Float, _ edge: UnsafePointer<Float>, _ rng: inout NoiseStream,
                                             _ feature: UnsafeMutablePointer<Int32>, _ value: UnsafeMutablePointer<Float>,
                                             dense: Bool) -> Int {
        let shift = UInt32(32 - GaussianNoise.bucketBits)
        var j = 0, k = 0
        while j + 8 <= m {
            let out = noisyPositive(Vec.load(p + j) + Vec.load(benc + j), uniforms(&rng), sigma, edge, shift: shift)
            if dense { Vec.store(out, p + j) }
            if any(out .> 0) {
                for q in 0..<8 where out[q] > 0 { feature[k] = Int32(j + q); value[k] = out[q]; k += 1 }
            }
            j += 8
        }
        while j < m {
            let bits = rng.next()
            for half in 0..<2 where j < m {
                let u = UInt32(truncatingIfNeeded: half == 0 ? bits : bits >> 32)
                let out = noisyPositive(p[j] + benc[j], u, sigma, edge, shift: shift)
                if out > 0 { feature[k] = Int32(j); value[k] = out; k += 1 }
                if dense { p[j] = out }
                j += 1
            }
        }
        return k
    }

    /// The dense step's ReLU row: p ← max(p + b, 0).
    @inline(__always)
    static func positiveDense(_ p: UnsafeMutablePointer<Float>, _ benc: UnsafePointer<Float>, _ m: Int) {
        var j = 0
        let rp = UnsafeMutableRawPointer(p), rb = UnsafeRawPointer(benc)
        while j + 16 <= m {
            let v = rp.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                + rb.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            rp.storeBytes(of: v.replacing(with: 0, where: .!(v .> 0)), toByteOffset: j * 4, as: SIMD16<Float>.self)
            j += 16
        }
        while j < m { let v = p[j] + benc[j]; p[j] = v > 0 ? v : 0; j += 1 }
    }

    /// `positiveWithNoise` written dense over p: the same draws, lane for lane, and the same values.
    @inline(__always)
    static func positiveWithNoiseDense(_ p: UnsafeMutablePointer<Float>, _ benc: UnsafePointer<Float>, _ m: Int,
                                       _ sigma: Float, _ edge: UnsafePointer<Float>, _ rng: inout NoiseStream) {
        let shift = UInt32(32 - GaussianNoise.bucketBits)
        var j = 0
        while j + 8 <= m {
            Vec.store(noisyPositive(Vec.load(p + j) + Vec.load(benc + j), uniforms(&rng), sigma, edge, shift: shift), p + j)
            j += 8
        }
        while j < m {
            let bits = rng.next()
            for half in 0..<2 where j < m {
                let u = UInt32(truncatingIfNeeded: half == 0 ? bits : bits >> 32)
                p[j] = noisyPositive(p[j] + benc[j], u, sigma, edge, shift: shift)
                j += 1
            }
        }
    }

    /// maximum[j] ← max(maximum[j], p[j]) (a NaN in p is skipped, as a comparison skips it).
    @inline(__always)
    static func raiseMaximum(_ maximum: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, _ m: Int) {
        var j = 0
        let rm = UnsafeMutableRawPointer(maximum), rp = UnsafeRawPointer(p)
        while j + 16 <= m {
            let v = rp.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            let old = rm.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            rm.storeBytes(of: old.replacing(with: v, where: v .> old), toByteOffset: j * 4, as: SIMD16<Float>.self)
            j += 16
        }
        while j < m { if p[j] > maximum[j] { maximum[j] = p[j] }; j += 1 }
    }

    /// Counts a row of dense codes: count[j] += 1 where c_j ≠ 0; returns how many and Σ c_j (in double, per lane).
    @inline(__always)
    static func tally(_ row: UnsafePointer<Float>, _ m: Int, _ count: UnsafeMutablePointer<Int32>) -> (found: Int, sum: Double) {
        var j = 0
        let rr = UnsafeRawPointer(row), rc = UnsafeMutableRawPointer(count)
        var found = SIMD16<Int32>(), sumLow = SIMD8<Double>(), sumHigh = SIMD8<Double>()
        let one = SIMD16<Int32>(repeating: 1), zero = SIMD16<Int32>()
        while j + 16 <= m {
            let c = rr.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            let on = zero.replacing(with: one, where: c .!= 0)
            rc.storeBytes(of: rc.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Int32>.self) &+ on, toByteOffset: j * 4,
                          as: SIMD16<Int32>.self)
            found &+= on
            sumLow += SIMD8<Double>(c.lowHalf)
            sumHigh += SIMD8<Double>(c.highHalf)
            j += 16
        }
        var n = Int(found.wrappedSum()), s = (sumLow + sumHigh).sum()
        while j < m {
            if row[j] != 0 { count[j] += 1; n += 1; s += Double(row[j]) }
            j += 1
        }
        return (n, s)
    }

    /// Lists a row's nonzero codes (ascending features) into feature/value (room for m); returns how many.
    @inline(__always)
    static func listNonzero(_ row: UnsafePointer<Float>, _ m: Int, _ feature: UnsafeMutablePointer<Int32>,
                            _ value: UnsafeMutablePointer<Float>) -> Int {
        var j = 0, k = 0
        let rr = UnsafeRawPointer(row)
        while j + 16 <= m {
            let c = rr.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            if any(c .!= 0) {
                for q in 0..<16 where c[q] != 0 { feature[k] = Int32(j + q); value[k] = c[q]; k += 1 }
            }
            j += 16
        }
        while j < m { if row[j] != 0 { feature[k] = Int32(j); value[k] = row[j]; k += 1 }; j += 1 }
        return k
    }
}
