// One training step for one SAE: forward, backward, and the fused per-feature Adam update.
import Foundation
import Tensor

extension SAE {
    /// Runs forward and backward on `x` and, when the loss and gradients are finite, one Adam step.
    /// Returns the loss terms; throws (leaving every parameter untouched) when they are not finite.
    func trainStep(_ ws: StepWorkspace, x: UnsafePointer<Float>, rows: Int, optimizer: AdamConfig, noiseStep: UInt64) throws -> LossTerms {
        let noisy = drawsNoise(true)
        ws.forward(self, x: x, rows: rows, noiseSeed: noisy ? config.seed : nil, step: noiseStep,
                   denseCodes: false, needGradients: true)
        ws.backward(self)
        var biasGradSum = Kernels.sumDouble(ws.gradBEnc, count: dSAE) + Kernels.sumDouble(ws.gradBDec, count: dIn)
        for g in ws.gradExtra { biasGradSum += Kernels.sumDouble(g, count: g.count) }
        guard ws.terms.loss.isFinite, biasGradSum.isFinite else {
            throw SAEError("non-finite loss or gradient (loss \(ws.terms.loss)); parameters kept from the last good step")
        }
        applyAdam(ws, optimizer)
        if ws.denseGradients { denseSteps += 1 }
        countTokensSinceFired(ws)
        afterStep(config.architecture.kind, ws)
        return ws.terms
    }

    /// p ← Adam(p, g) for every parameter, with g read row by row from the workspace's gradient rows (in place: a
    /// unit-norm decoder's rows lose their component along the row there, and the row is renormalized after; the
    /// gradient rows are scratch that only this update reads).
    func applyAdam(_ ws: StepWorkspace, _ optimizer: AdamConfig) {
        let state = optimizerState ?? AdamState(dIn: dIn, dSAE: dSAE, extraCount: extraParameters.count)
        optimizerState = state
        state.step += 1
        let n = dIn, m = dSAE
        let unitNorm = config.architecture.decoderConstraint == .unitNorm
        let workers = Parallel.workers(forWork: (ws.nnz + dSAE) * dIn * 4)
        let gradDec = ws.gradDec.base, gradEnc = ws.gradEnc.base
        W_dec.data.withUnsafeMutableBufferPointer { wdBuf in
            encoderRows.data.withUnsafeMutableBufferPointer { weBuf in
                let wd = wdBuf.baseAddress!, we = weBuf.baseAddress!
                var gradScale: Float = 1
                if let clip = optimizer.clipNorm {
                    var partial = [Double](repeating: 0, count: workers)
                    partial.withUnsafeMutableBufferPointer { part in
                        Parallel.run(workers) { w in
                            var s: Double = 0
                            for j in Parallel.slice(m, part: w, of: workers) {
                                let gd = gradDec + j * n, ge = gradEnc + j * n
                                if unitNorm { SAE.removeParallel(gd, along: wd + j * n, n) }
                                s += Vec.sumSquaresDouble(gd, n) + Vec.sumSquaresDouble(ge, n)
                            }
                            part[w] = s
                        }
                    }
                    let total = partial.reduce(0, +) + ws.gradBEnc.reduce(0) { $0 + Double($1 * $1) }
                        + ws.gradBDec.reduce(0) { $0 + Double($1 * $1) }
                        + ws.gradExtra.reduce(0) { $0 + $1.reduce(0) { $0 + Double($1 * $1) } }
                    let norm = total.squareRoot()
                    if norm > Double(clip) { gradScale = Float(Double(clip) / norm) }
                }
                let adam = AdamStepScalars(optimizer, step: state.step, gradScale: gradScale)
                let projected = optimizer.clipNorm != nil   // the clipping pass removed the parallel parts already
                Parallel.run(workers) { w in
                    for j in Parallel.slice(m, part: w, of: workers) {
                        let row = j * n
                        let gd = gradDec + row, ge = gradEnc + row
                        if unitNorm && !projected { SAE.removeParallel(gd, along: wd + row, n) }
                        adam.apply(wd + row, state.mDec + row, state.vDec + row, gd, n)
                        if unitNorm { SAE.normalize(wd + row, n) }
                        adam.apply(we + row, state.mEnc + row, state.vEnc + row, ge, n)
                    }
                }
                b_enc.withUnsafeMutableBufferPointer { p in
                    ws.gradBEnc.withUnsafeBufferPointer { g in adam.apply(p.baseAddress!, state.mBEnc, state.vBEnc, g.baseAddress!, m) }
                }
                b_dec.withUnsafeMutableBufferPointer { p in
                    ws.gradBDec.withUnsafeBufferPointer { g in adam.apply(p.baseAddress!, state.mBDec, state.vBDec, g.baseAddress!, n) }
                }
                for (e, g) in ws.gradExtra.enumerated() {
                    extraParameters[e].withUnsafeMutableBufferPointer { p in
                        g.withUnsafeBufferPointer { g in
                            adam.apply(p.baseAddress!, state.mExtra(e), state.vExtra(e), g.baseAddress!, m)
                        }
                    }
                }
            }
        }
    }

    private func afterStep<K: SAEKind>(_ kind: K.Type, _ ws: StepWorkspace) { K.afterStep(ws, self) }

    /// Per feature, the training tokens since it last fired (what AuxK and resampling call dead), judged without
    /// the training noise (`StepWorkspace.firedWithoutNoise`).
    func countTokensSinceFired(_ ws: StepWorkspace) {
        if tokensSinceFired?.count != dSAE { tokensSinceFired = [Int](repeating: 0, count: dSAE) }
        let B = ws.rows
        tokensSinceFired!.withUnsafeMutableBufferPointer { since in
            for j in 0..<dSAE { since[j] = ws.firedWithoutNoise(j) ? 0 : min(since[j] + B, 1 << 30) }
        }
    }

    /// The number of Adam steps this SAE has taken.
    public var optimizerSteps: Int { optimizerState?.step ?? 0 }
}
