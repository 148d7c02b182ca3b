import Tensor

// A scale-aware start for the NSAE. Its codes live in [0, 1) (tanh) and its decoder is unconstrained, so the decoder
// rows must grow to the scale of the layer's inputs before reconstruction can work. Adam moves each weight by about
// `lr` per step whatever the scale, so from unit rows a layer whose ‖x‖ is ~100 needs thousands of steps just to
// reach its scale, while a layer with ‖x‖ ~1 is there at once: the comparison across layers would measure that
// start-up, not the method. Scaling the decoder rows to the layer's mean ‖x‖ (and the encoder rows by its inverse,
// so pre-activations start O(1), on the scale of the noise σ) gives every layer the same start.

extension SAE {
    /// Multiplies the decoder rows by `meanNorm` and the encoder rows by 1/`meanNorm`; resets optimizer state.
    /// Only for architectures with an unconstrained decoder (nsae); the relu SAE keeps unit decoder rows.
    public func scaleToInputNorm(_ meanNorm: Float) throws {
        guard config.architecture == .nsae else {
            throw SAEError("only the nsae architecture starts at the input scale: the relu SAE keeps unit-norm decoder rows")
        }
        guard meanNorm.isFinite, meanNorm > 0 else { throw SAEError("the mean input norm must be positive and finite, got \(meanNorm)") }
        W_dec.data.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= meanNorm } }
        let inverse = 1 / meanNorm
        encoderRows.data.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= inverse } }
        optimizerState = nil
    }
}

extension SAEGroup {
    /// `scaleToInputNorm` for every layer, with that layer's mean ‖x‖.
    public func scaleToInputNorms(_ meanNorms: [Float]) throws {
        guard meanNorms.count == count else { throw SAEError("\(meanNorms.count) mean norms for \(count) layers") }
        for (sae, norm) in zip(saes, meanNorms) { try sae.scaleToInputNorm(norm) }
    }
}
