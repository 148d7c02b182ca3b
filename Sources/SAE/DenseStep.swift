// The dense path of the training step, for batches whose codes are not sparse (issue 19).
//
// The sparse step (StepWorkspace.decode/backward, featureGradients) costs ~4·nnz·n row axpys/dots, at memory
// speed; the dense step costs four more [B, m, n] GEMMs at OpenBLAS speed (~200 GFLOP/s here). Per batch and per
// layer, after the codes are known, the step takes the cheaper one by the measured density nnz/(B·m):
//   c      dense [B, m] in `pre` (zeros and the active entries scattered back)
//   x′     = c · W_dec + b_dec                                  sgemm [B, m]·[m, n]
//   dx     = s·(x′ − x)                                         as the sparse path
//   dW_dec = cᵀ · dx                                            sgemm [m, B]·[B, n] → gradDec [m, n]
//   G      = dx · W_decᵀ, into `pre` (c is no longer needed)    sgemm [B, n]·[n, m]
//   dpre   = (G + β/B)·f′(pre) at the active entries, 0 elsewhere (also written to entryGrad, as the sparse path)
//   dW_enc = dpreᵀ · xc                                         sgemm [m, B]·[B, n] → gradEnc [m, n]
// db_enc and the firing counts come from the active-entry list in the same order as the sparse path (so they are
// bit-identical); Adam reads the gradient rows from gradDec/gradEnc instead of rebuilding them from the CSC list.
// The two paths differ only by float32 summation order (tested in DensePathTests).
import Foundation
import Tensor

/// Which path a training step takes; `automatic` chooses per batch from the density of its codes.
public enum StepPath: Sendable, Equatable {
    case automatic
    case sparse
    case dense
}

enum DenseStep {
    /// The density nnz/(B·m) from which the dense path is taken, for the kinds that have one.
    ///
    /// Re-measured after the sparse path's blocked weight gradients and 4-row dots (2026-12-02, this machine kind:
    /// 2 cores, OpenBLAS 2 threads, release build, `swift run -c release Benchmarks sae-density --quick`, each
    /// case one train call alternating the forced paths, best step; load average 7–9 from other agents),
    /// 768→6144 batch 4096, one step in ms, sparse / dense, two runs:
    ///   L0 10%: relu 3502 / 4917, 2538 / 3354    nsae 1606 / 2289, 2186 / 3361   (sparse/dense 0.65–0.76)
    ///   L0 25%: relu 5920 / 3804, 5553 / 3506    nsae 3459 / 2399, 3762 / 2484   (sparse/dense 1.44–1.58)
    /// and at 1–5% sparse is 2.1–3.6× faster, at 50% dense 2.5–2.6× faster. Interpolating the ratio between 10%
    /// and 25% (linearly or in its log) puts the crossing at 14–18% for both kinds; 15% is taken. (Before those
    /// changes it was 12%: sparse/dense 0.90–0.95 at 10% and 1.77–1.90 at 25%.)
    static let crossoverDensity = 0.15

    /// Whether a step of kind K on this batch takes the dense path.
    static func chooses<K: SAEKind>(_ kind: K.Type, _ sae: SAE, nnz: Int, rows: Int) -> Bool {
        guard K.hasDenseStep else { return false }
        switch sae.stepPath {
        case .sparse: return false
        case .dense: return true
        case .automatic:
            let cells = Double(rows) * Double(sae.dSAE)
            return cells > 0 && Double(nnz) / cells >= crossoverDensity
        }
    }
}

extension StepWorkspace {
    /// The dense counterpart of `decode`: x′ and the loss terms; with gradients also dx, dL/dpre of the active
    /// entries, and the dense weight gradients in gradDec/gradEnc, `pre` then overwritten (c, then G, then dpre).
    /// Without gradients (evaluation, the top-k scans' encode) `pre` holds the dense codes c afterwards.
    func denseDecode<K: SAEKind>(_ kind: K.Type, _ sae: SAE, x: UnsafePointer<Float>, rows B: Int, needGradients: Bool) {
        let n = dIn, m = dSAE
        denseGradients = needGradients
        if needGradients { gradDec.ensure(m * n); gradEnc.ensure(m * n) }
        let config = sae.config
        let meanNorm = Kernels.sumDouble(inputNorms.base, count: B) / Double(B)
        let beta = K.sparsityWeight(config, meanInputNorm: meanNorm)
        let gradScale = Float(config.mse == .mean ? 2.0 / (Double(B) * Double(n)) : 2.0 / Double(B))
        let l1Grad = Float(beta / Double(B))
        let preP = pre.base, reconP = recon.base, dxP = dx.base, sqP = rowSquaredError.base, xcP = xc.base
        let rs = rowStart.base, feat = entryFeature.base, val = entryValue.base, slope = entrySlope.base, grad = entryGrad.base
        let denormalize = config.normalization.transformsRows
        let shiftP = rowShift.base, scaleP = rowScale.base
        let workers = min(Parallel.workers(forWork: B * m), max(1, B / 8))
        // c dense: the activation left `pre` as pre-activations; the codes are the entry list.
        Parallel.run(workers) { w in
            for b in Parallel.slice(B, part: w, of: workers) {
                let row = preP + b * m
                row.update(repeating: 0, count: m)
                for e in rs[b]..<rs[b + 1] { row[Int(feat[e])] = val[e] }
            }
        }
        sae.W_dec.data.withUnsafeBufferPointer { wdBuf in
            let wd = wdBuf.baseAddress!
            BLAS.sgemm(transA: false, transB: false, m: B, n: n, k: m, a: preP, lda: m, b: wd, ldb: n,
                       beta: 0, c: reconP, ldc: n)
            sae.b_dec.withUnsafeBufferPointer { bdec in
                Parallel.run(workers) { w in
                    for b in Parallel.slice(B, part: w, of: workers) {
                        let r = reconP + b * n, xr = x + b * n, g = dxP + b * n
                        for i in 0..<n { r[i] += bdec[i] }
                        if denormalize {
                            let shift = shiftP[b], inverse = 1 / scaleP[b]
                            for i in 0..<n { r[i] = r[i] * inverse + shift }
                        }
                        var sq: Double = 0
                        for i in 0..<n { let d = Double(r[i] - xr[i]); sq += d * d }
                        sqP[b] = sq
                        guard needGradients else { continue }
                        for i in 0..<n { g[i] = gradScale * (r[i] - xr[i]) }
                    }
                }
            }
            guard needGradients else { return }
            BLAS.sgemm(transA: true, transB: false, m: m, n: n, k: B, a: preP, lda: m, b: dxP, ldb: n,
                       beta: 0, c: gradDec.base, ldc: n)
            BLAS.sgemm(transA: false, transB: true, m: B, n: m, k: n, a: dxP, lda: n, b: wd, ldb: n,
                       beta: 0, c: preP, ldc: m)
        }
        if needGradients {
            Parallel.run(workers) { w in
                for b in Parallel.slice(B, part: w, of: workers) {
                    let row = preP + b * m
                    let start = rs[b], end = rs[b + 1]
                    for e in start..<end { grad[e] = (row[Int(feat[e])] + l1Grad) * slope[e] }
                    row.update(repeating: 0, count: m)
                    for e in start..<end { row[Int(feat[e])] = grad[e] }
                }
            }
            BLAS.sgemm(transA: true, transB: false, m: m, n: n, k: B, a: preP, lda: m, b: xcP, ldb: n,
                       beta: 0, c: gradEnc.base, ldc: n)
        }
        terms = LossTerms(sumSquaredError: (0..<B).reduce(0.0) { $0 + sqP[$1] },
                          sumL1: Kernels.sumDouble(entryValue.base, count: nnz), activeCount: nnz,
                          rows: B, width: n, mse: config.mse, beta: beta)
    }

    /// The dense path's backward: firing counts (colStart) and db_enc from the entry list, summed per feature in
    /// ascending row order as the sparse path's CSC sums, without building the per-feature lists.
    func denseBackwardCounts() {
        let m = dSAE
        colStart.ensure(m + 1)
        let cs = colStart.base, feat = entryFeature.base, grad = entryGrad.base
        for j in 0...m { cs[j] = 0 }
        gradBEnc.withUnsafeMutableBufferPointer { ge in
            for j in 0..<m { ge[j] = 0 }
            for e in 0..<nnz {
                let j = Int(feat[e])
                cs[j + 1] += 1
                ge[j] += grad[e]
            }
        }
        for j in 0..<m { cs[j + 1] += cs[j] }
    }
}
