// The dense path of the training step, for batches whose codes are not sparse (issue 19).
//
// The sparse step (StepWorkspace.decode/backward, featureGradients) costs ~4·nnz·n row axpys/dots, at memory
// speed; the dense step costs four more [B, m, n] GEMMs at OpenBLAS speed (~200 GFLOP/s here). Per batch and per
// layer, after the codes are known, the step takes the cheaper one by the measured density nnz/(B·m):
//   c      dense [B, m] in `pre`: a training forward whose last batch was dense has the activation write the codes
//          dense (SAEKind.activateRowDense) and count them (nnz, per-feature fire counts, Σc) without any entry
//          list; otherwise the listed entries are scattered back (and, with gradients, counted the same way)
//   x′     = c · W_dec + b_dec                                  sgemm [B, m]·[m, n]
//   dx     = s·(x′ − x)                                         as the sparse path
//   dW_dec = cᵀ · dx                                            sgemm [m, B]·[B, n] → gradDec [m, n]
//   G      = dx · W_decᵀ, a block of rows at a time             sgemm [R, n]·[n, m] → denseBlock [R, m]
//   dpre   = (G + β/B)·f′(c) where c ≠ 0, 0 elsewhere, over c in `pre` while the block is in cache; db_enc = Σ_b dpre
//   dW_enc = dpreᵀ · xc                                         sgemm [m, B]·[B, n] → gradEnc [m, n]
// Adam reads the gradient rows from gradDec/gradEnc as on the sparse path. The two paths differ only by float32
// summation order (db_enc, Σc, and the GEMMs' sums; tested in DensePathTests).
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
    /// Re-measured after the dense path lost its entry lists (codes written dense by the activation, 2026-12-02,
    /// this machine kind: 2 cores, OpenBLAS 2 threads, release build, `Benchmarks sae-density --quick`, each case
    /// one train call alternating the forced paths, best step; load average 2.4–3.8 from other agents), batch
    /// 4096, one step in ms, sparse / dense, two runs at 768→6144:
    ///   L0 10%: relu 1672 / 2328, 1364 / 2181    nsae 1870 / 2372, 1900 / 2444   (sparse/dense 0.63–0.79)
    ///   L0 25%: relu 3629 / 2200, 3739 / 2265    nsae 4740 / 2579, 4121 / 2566   (sparse/dense 1.61–1.84)
    /// Interpolating the log of the ratio puts the crossing at 16–17% (relu) and 14–15% (nsae): 15% stays. At
    /// 768→24576 (one run, load 3.4–5.2) the crossing is earlier, 11–12% (10%: relu 11896 / 14067, nsae 8669 /
    /// 9183; 25%: 22157 / 8802, 22969 / 10155), as W_dec (75 MB) no longer fits the 32 MB L3 and the sparse
    /// decode gathers its rows from memory; one threshold for both sizes costs at most ~15% between 11 and 15%
    /// there. (Before the dense path's change: 15%, from 0.65–0.76 at 10% and 1.44–1.58 at 25%; before that 12%.)
    static let crossoverDensity = 0.15

    /// The crossover once W_dec [m, n] no longer fits the last-level cache (the sparse decode then gathers its rows
    /// from memory): training 11% (the crossing measured at 768→24576, 75 MB of W_dec: 11–12% last stop; 10%:
    /// relu 3917 / 3961 ms sparse / dense on 2026-12-02, quiet); a decode alone (`eval`, no gradients) 5%: at
    /// 768→24576 the evaluation's sparse decode took 40.4–41.7 s over 65,536 tokens at L0 10% (0.86× numpy) and
    /// 18.8–19.6 s at 1%, the dense one 28.5–30.1 s at 50% (`Benchmarks scan --tokens=65536 --case=eval`), of which
    /// ~13.4 s is the encoder GEMM at either density: the sparse decode grows ~2.4 s per percent from ~5.6 s, the
    /// dense one ~15 s, crossing near 5%. (At 768→6144 the two decodes measured even at 10%, so 15% stays there.)
    static let largeDictionaryCrossover = (training: 0.11, decodeOnly: 0.05)

    /// The size of W_dec from which the large-dictionary crossover applies: a measured threshold, not the machine's
    /// cache. It was set at the Zen 4 kind's last-level cache (lscpu: 32 MiB, one instance; sysconf reports 320 MB
    /// on that VM), but the same 768→24576 crossing held on the Intel Xeon kind (2 cores, 105 MB L3, so W_dec's
    /// 75 MB fits; 2026-12-03, `Benchmarks sae-density --quick --dsae=24576 --l0=5,10,15,25`, sparse / dense ms):
    /// relu 10% 6338 / 5937, 15% 8652 / 6740; nsae 10% 6314 / 7896, 15% 10019 / 7449 — crossings ~9% and ~12%,
    /// as the sparse decode's row gathers and the fire-count scatter outgrow L2 there too. Reading the cache size
    /// would move the threshold to 105 MB on that kind and lose ~30% at 11–15% density.
    static let largeDictionaryDecoderBytes = 32 << 20

    /// The density from which an SAE's step (or, `decodeOnly`, its decode without gradients) takes the dense path.
    static func crossover(_ sae: SAE, decodeOnly: Bool) -> Double {
        guard sae.dSAE * sae.dIn * MemoryLayout<Float>.size > largeDictionaryDecoderBytes else { return crossoverDensity }
        return decodeOnly ? largeDictionaryCrossover.decodeOnly : largeDictionaryCrossover.training
    }

    /// Whether a training forward of kind K writes its codes dense (and lists no entries), from the density of
    /// the SAE's last batch (dense before the first: a standard initialisation fires about half the features).
    static func writesCodesDense<K: SAEKind>(_ kind: K.Type, _ sae: SAE, previousDensity: Double?, decodeOnly: Bool) -> Bool {
        guard K.hasDenseStep else { return false }
        switch sae.stepPath {
        case .sparse: return false
        case .dense: return true
        case .automatic: return (previousDensity ?? 1) >= crossover(sae, decodeOnly: decodeOnly)
        }
    }

    /// Rows of G = dx·W_decᵀ per block: ~12 MB of G (512 rows at 6144 features), so a block is still in L3 when the
    /// dL/dpre pass reads it, and at least 256 rows so the sgemm keeps its speed (perf samples of the sgemms at
    /// relu 768→6144 L0 50%, three steps: 13220 with 512-row blocks, 13065 for the whole batch at once; 170-row
    /// blocks: 13930).
    static func blockRows(features m: Int, rows B: Int) -> Int { min(B, max(256, (3 << 20) / max(m, 1))) }

    /// Whether a step of kind K on this batch takes the dense path.
    static func chooses<K: SAEKind>(_ kind: K.Type, _ sae: SAE, nnz: Int, rows: Int, decodeOnly: Bool) -> Bool {
        guard K.hasDenseStep else { return false }
        switch sae.stepPath {
        case .sparse: return false
        case .dense: return true
        case .automatic:
            let cells = Double(rows) * Double(sae.dSAE)
            return cells > 0 && Double(nnz) / cells >= crossover(sae, decodeOnly: decodeOnly)
        }
    }
}

extension StepWorkspace {
    /// The dense counterpart of `decode`, with the codes c dense in `pre` (and, with gradients, counted: nnz,
    /// fireCount, denseL1): x′ and the loss terms; with gradients also dx, db_enc and the dense weight gradients in
    /// gradDec/gradEnc, `pre` then overwritten with dL/dpre. Without gradients (evaluation, the top-k scans'
    /// encode) `pre` holds the codes c afterwards.
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
        let denormalize = config.normalization.transformsRows
        let shiftP = rowShift.base, scaleP = rowScale.base
        let workers = min(Parallel.workers(forWork: B * n * 4), max(1, B / 8))
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
            denseCodeGradients(K.self, wd: wd, rows: B, l1Grad: l1Grad)
        }
        if needGradients {
            BLAS.sgemm(transA: true, transB: false, m: m, n: n, k: B, a: preP, lda: m, b: xcP, ldb: n,
                       beta: 0, c: gradEnc.base, ldc: n)
        }
        terms = LossTerms(sumSquaredError: (0..<B).reduce(0.0) { $0 + sqP[$1] },
                          sumL1: denseL1 ?? Kernels.sumDouble(entryValue.base, count: nnz), activeCount: nnz,
                          rows: B, width: n, mse: config.mse, beta: beta)
    }

    /// dL/dpre = (G + β/B)·f′(c) where c ≠ 0 (0 elsewhere) over the codes in `pre`, with G = dx·W_decᵀ computed a
    /// block of rows at a time into denseBlock; db_enc = Σ_b dL/dpre (per-worker partial sums, then added).
    private func denseCodeGradients<K: SAEKind>(_ kind: K.Type, wd: UnsafePointer<Float>, rows B: Int, l1Grad: Float) {
        let n = dIn, m = dSAE
        let R = DenseStep.blockRows(features: m, rows: B)
        denseBlock.ensure(R * m)
        let workers = min(Parallel.workers(forWork: R * m), max(1, R / 8))
        workerColumnSums.ensure(workers * m)
        let preP = pre.base, dxP = dx.base, blockP = denseBlock.base, sumsP = workerColumnSums.base
        for w in 0..<workers { (sumsP + w * m).update(repeating: 0, count: m) }
        let l1 = SIMD16<Float>(repeating: l1Grad)
        var start = 0
        while start < B {
            let count = min(R, B - start)
            BLAS.sgemm(transA: false, transB: true, m: count, n: m, k: n, a: dxP + start * n, lda: n, b: wd, ldb: n,
                       beta: 0, c: blockP, ldc: m)
            let first = start
            Parallel.run(workers) { w in
                let sums = UnsafeMutableRawPointer(sumsP + w * m)
                for b in Parallel.slice(count, part: w, of: workers) {
                    let c = UnsafeMutableRawPointer(preP + (first + b) * m), g = UnsafeRawPointer(blockP + b * m)
                    var j = 0
                    while j + 16 <= m {
                        let code = c.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                        let grad = (g.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self) + l1) * K.slope(ofCodes: code)
                        let d = grad.replacing(with: 0, where: code .== 0)
                        c.storeBytes(of: d, toByteOffset: j * 4, as: SIMD16<Float>.self)
                        sums.storeBytes(of: sums.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self) + d,
                                        toByteOffset: j * 4, as: SIMD16<Float>.self)
                        j += 16
                    }
                    let cs = preP + (first + b) * m, gs = blockP + b * m, ss = sumsP + w * m
                    while j < m {
                        let code = cs[j]
                        let d: Float = code == 0 ? 0 : (gs[j] + l1Grad) * K.slope(ofCode: code)
                        cs[j] = d; ss[j] += d
                        j += 1
                    }
                }
            }
            start += count
        }
        gradBEnc.withUnsafeMutableBufferPointer { ge in
            ge.baseAddress!.update(from: sumsP, count: m)
            for w in 1..<max(workers, 1) { for j in 0..<m { ge[j] += sumsP[w * m + j] } }
        }
    }
}
