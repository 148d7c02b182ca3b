// One sparse autoencoder: parameters in the SAELens layout, encode / decode, loss and hand-written gradients.
// What differs between architectures lives in their SAEKind (Architecture.swift, Kinds/); the math is in
// ../shared/design/nsae.md §3.
import Foundation
import Tensor

/// What every architecture offers. `SAE` is the one concrete implementation; architectures differ through their
/// registered kind (`config.architecture`).
public protocol SparseAutoencoder: AnyObject {
    var config: SAEConfig { get }
    /// c = f(W_encᵀ(x − b_dec) + b_enc) for the rows of x [B, dIn] → [B, dSAE]. `noise` only affects noisy kinds.
    func encode(_ x: Matrix, noise: Bool, rng: inout RNG) throws -> Matrix
    /// x′ = c W_dec + b_dec for c [B, dSAE] → [B, dIn].
    func decode(_ c: Matrix) throws -> Matrix
    /// decode(encode(x)) with the evaluation noise setting.
    func reconstruct(_ x: Matrix) throws -> Matrix
    /// The per-token loss on a batch and its exact gradients (SAELens layout), the noise drawn from `rng`.
    func lossAndGradients(_ x: Matrix, noise: Bool, rng: inout RNG) throws -> (LossTerms, SAEGradients)
}

/// The loss of one batch, split into its terms (all per token, i.e. averaged over the batch rows).
public struct LossTerms: Sendable, Equatable, Codable {
    public var loss: Double
    /// (1/B)Σ‖x′ − x‖², divided further by dIn when mse=mean.
    public var mseTerm: Double
    /// β·(1/B)Σ‖c‖₁.
    public var l1Term: Double
    /// Mean number of active features per token.
    public var l0: Double
    /// Mean ‖c‖₁ per token.
    public var l1: Double
    /// The L1 weight used: α for relu, α·(mean ‖x‖)² for nsae, 0 for kinds without an L1 term.
    public var beta: Double
    /// The architecture's own loss term (TopK's AuxK, JumpReLU's L0 penalty), included in `loss`.
    public var auxTerm: Double = 0
    public init(loss: Double = 0, mseTerm: Double = 0, l1Term: Double = 0, l0: Double = 0, l1: Double = 0, beta: Double = 0,
                auxTerm: Double = 0) {
        self.loss = loss; self.mseTerm = mseTerm; self.l1Term = l1Term; self.l0 = l0; self.l1 = l1; self.beta = beta
        self.auxTerm = auxTerm
    }

    /// The step's terms from its sums over a batch of B rows of width n: Σ‖x′ − x‖², Σ‖c‖₁ and the active count.
    /// Both step paths (sparse and dense) report through this one formula.
    init(sumSquaredError: Double, sumL1: Double, activeCount: Int, rows B: Int, width n: Int, mse: MSEMode, beta: Double) {
        let mseTerm = mse == .mean ? sumSquaredError / (Double(B) * Double(n)) : sumSquaredError / Double(B)
        let l1Term = beta * sumL1 / Double(B)
        self.init(loss: mseTerm + l1Term, mseTerm: mseTerm, l1Term: l1Term, l0: Double(activeCount) / Double(B),
                  l1: sumL1 / Double(B), beta: beta)
    }
}

/// Gradients of the loss with respect to each parameter, in the parameters' SAELens shapes.
public struct SAEGradients: Sendable {
    public var W_enc: Matrix   // [dIn, dSAE]
    public var b_enc: [Float]  // [dSAE]
    public var W_dec: Matrix   // [dSAE, dIn]
    public var b_dec: [Float]  // [dIn]
    /// The architecture's extra parameters (e.g. JumpReLU's threshold θ), in `SAEKind.extraParameters` order.
    public var extra: [[Float]] = []
}

public final class SAE: SparseAutoencoder, @unchecked Sendable {
    // @unchecked Sendable: front ends hand an SAE between threads (a kernel's execute thread, a REPL worker), but
    // never use one from two threads at once; training mutates it in place from the thread that runs `train`.
    public internal(set) var config: SAEConfig
    /// Encoder weights stored as rows per feature, [dSAE, dIn] = W_encᵀ, so that the sparse gradient of feature j
    /// is one contiguous row. `W_enc` below gives and takes the SAELens [dIn, dSAE] layout.
    var encoderRows: Matrix
    public internal(set) var b_enc: [Float]
    /// Decoder [dSAE, dIn]: row j is feature j's dictionary vector (a "decoder column" in the math's W_d [dIn, dSAE]).
    public internal(set) var W_dec: Matrix
    public internal(set) var b_dec: [Float]
    /// The architecture's parameters beyond the four above, one [dSAE] vector each, in `extraParameters` order.
    public internal(set) var extraParameters: [[Float]]
    /// Per feature, the training tokens since it last fired (for architectures that treat dead features).
    var tokensSinceFired: [Int]?
    /// Optimizer state, kept with the parameters so a cancelled or finished `train` resumes where it stopped.
    var optimizerState: AdamState?
    /// The training step's path; `automatic` (the default) chooses per batch by the codes' density (DenseStep).
    /// Forcing a path is for tests and benchmarks.
    public var stepPath = StepPath.automatic
    /// Training steps that took the dense path (for tests and benchmarks).
    public internal(set) var denseSteps = 0
    /// Fraction of tokens on which each feature fired, from the last evaluation (or training's last log window);
    /// saved as SAELens's sparsity.safetensors (log10 density).
    public var featureDensity: [Float]?

    public var dIn: Int { config.dIn }
    public var dSAE: Int { config.dSAE }

    /// Initialization: W_dec rows are random unit vectors (normal samples, normalized), W_enc = W_decᵀ, b_enc = 0
    /// and b_dec = 0 (call `setDecoderBias` to start from the data mean). Same seed, same parameters.
    public init(config given: SAEConfig) throws {
        var config = given
        config.architecture.applyDefaults(&config)
        try config.validate()
        self.config = config
        var rng = RNG(seed: config.seed)
        var dec = rng.normalMatrix(config.dSAE, config.dIn)
        dec.data.withUnsafeMutableBufferPointer { p in
            for j in 0..<config.dSAE {
                let row = p.baseAddress! + j * config.dIn
                let norm = Vec.dot(row, row, config.dIn).squareRoot()
                if norm > 0 { for i in 0..<config.dIn { row[i] /= norm } }
            }
        }
        W_dec = dec
        encoderRows = dec
        b_enc = [Float](repeating: 0, count: config.dSAE)
        b_dec = [Float](repeating: 0, count: config.dIn)
        extraParameters = config.architecture.kind.extraParameters.map { [Float](repeating: $0.initialValue(config), count: config.dSAE) }
    }

    /// An SAE with the given parameters (SAELens layout); shapes are checked against the config.
    public init(config given: SAEConfig, W_enc: Matrix, b_enc: [Float], W_dec: Matrix, b_dec: [Float], extra: [[Float]]? = nil) throws {
        var config = given
        config.architecture.applyDefaults(&config)
        try config.validate()
        let n = config.dIn, m = config.dSAE
        guard W_enc.rows == n, W_enc.cols == m else { throw SAEError("W_enc is \(W_enc.rows)x\(W_enc.cols), expected [d_in, d_sae] = \(n)x\(m)") }
        guard W_dec.rows == m, W_dec.cols == n else { throw SAEError("W_dec is \(W_dec.rows)x\(W_dec.cols), expected [d_sae, d_in] = \(m)x\(n)") }
        guard b_enc.count == m else { throw SAEError("b_enc has \(b_enc.count) values, expected d_sae = \(m)") }
        guard b_dec.count == n else { throw SAEError("b_dec has \(b_dec.count) values, expected d_in = \(n)") }
        let specs = config.architecture.kind.extraParameters
        let extras = extra ?? specs.map { [Float](repeating: $0.initialValue(config), count: m) }
        guard extras.count == specs.count else { throw SAEError("\(config.architecture) has \(specs.count) extra parameters, got \(extras.count)") }
        for (spec, values) in zip(specs, extras) where values.count != m {
            throw SAEError("\(spec.name) has \(values.count) values, expected d_sae = \(m)")
        }
        self.extraParameters = extras
        self.config = config
        self.encoderRows = W_enc.transposed()
        self.b_enc = b_enc
        self.W_dec = W_dec
        self.b_dec = b_dec
    }

    /// The encoder in SAELens layout [dIn, dSAE] (a transposed copy of the internal per-feature rows).
    public var W_enc: Matrix {
        get { encoderRows.transposed() }
        set {
            precondition(newValue.rows == dIn && newValue.cols == dSAE, "W_enc must be \(dIn)x\(dSAE)")
            encoderRows = newValue.transposed(); optimizerState = nil
        }
    }

    /// Replaces b_dec (e.g. with the data mean before training).
    public func setDecoderBias(_ bias: [Float]) throws {
        guard bias.count == dIn else { throw SAEError("b_dec needs \(dIn) values, got \(bias.count)") }
        b_dec = bias
    }

    /// Sets every parameter at once (SAELens layout), e.g. to perturb one entry in a test; resets optimizer state.
    public func setParameters(W_enc: Matrix? = nil, b_enc: [Float]? = nil, W_dec: Matrix? = nil, b_dec: [Float]? = nil,
                              extra: [[Float]]? = nil) throws {
        if let w = W_enc {
            guard w.rows == dIn, w.cols == dSAE else { throw SAEError("W_enc is \(w.rows)x\(w.cols), expected \(dIn)x\(dSAE)") }
            encoderRows = w.transposed()
        }
        if let b = b_enc { guard b.count == dSAE else { throw SAEError("b_enc has \(b.count) values, expected \(dSAE)") }; self.b_enc = b }
        if let w = W_dec {
            guard w.rows == dSAE, w.cols == dIn else { throw SAEError("W_dec is \(w.rows)x\(w.cols), expected \(dSAE)x\(dIn)") }
            self.W_dec = w
        }
        if let b = b_dec { guard b.count == dIn else { throw SAEError("b_dec has \(b.count) values, expected \(dIn)") }; self.b_dec = b }
        if let e = extra {
            guard e.count == extraParameters.count, e.allSatisfy({ $0.count == dSAE }) else {
                throw SAEError("extra parameters: expected \(extraParameters.count) vectors of d_sae = \(dSAE) values")
            }
            extraParameters = e
        }
        optimizerState = nil
    }

    /// A deep copy (parameters, config and optimizer state).
    public func copy() -> SAE {
        let s = try! SAE(config: config, W_enc: W_enc, b_enc: b_enc, W_dec: W_dec, b_dec: b_dec, extra: extraParameters)
        s.optimizerState = optimizerState?.copy()
        s.tokensSinceFired = tokensSinceFired
        s.featureDensity = featureDensity
        return s
    }

    func checkInput(_ x: Matrix, _ what: String) throws {
        guard x.cols == dIn else {
            throw SAEError("\(what): input has \(x.cols) columns but this SAE has d_in = \(dIn)\(config.hookName.map { " (\($0))" } ?? "")")
        }
    }

    /// Marks a fraction of the features as dead (not fired for a long time), so a benchmark can price the
    /// dead-feature terms (AuxK) on a fresh SAE.
    public func markDeadForBenchmark(fraction: Double) {
        let cut = Int(Double(dSAE) * fraction)
        tokensSinceFired = (0..<dSAE).map { $0 < cut ? 1 << 29 : 0 }
    }

    /// Whether a forward asked to be noisy draws noise (only architectures with noise do).
    func drawsNoise(_ noise: Bool) -> Bool { noise && config.architecture.kind.noiseSigma(config, training: true) != nil }

    // MARK: inference

    public func encode(_ x: Matrix, noise: Bool, rng: inout RNG) throws -> Matrix {
        try checkInput(x, "encode")
        let ws = StepWorkspace(dIn: dIn, dSAE: dSAE)
        ws.forward(self, x: x, noiseSeed: drawsNoise(noise) ? rng.next() : nil, step: 0, denseCodes: true, needGradients: false)
        return Matrix(rows: x.rows, cols: dSAE, data: ws.pre.array(x.rows * dSAE))
    }

    /// Encodes with the evaluation noise setting (noise only when config.noise == .always), seeded from the config.
    public func encode(_ x: Matrix) throws -> Matrix {
        var rng = RNG(seed: config.seed &+ 0x5EED)
        return try encode(x, noise: config.noiseInEvaluation, rng: &rng)
    }

    public func decode(_ c: Matrix) throws -> Matrix {
        guard !config.normalization.transformsRows else {
            throw SAEError("decode: this SAE normalizes its inputs (normalize_activations = \(config.normalization.rawValue)), so its output depends on the input rows; use reconstruct")
        }
        guard c.cols == dSAE else { throw SAEError("decode: codes have \(c.cols) columns but this SAE has d_sae = \(dSAE)") }
        var out = Matrix(rows: c.rows, cols: dIn)
        let n = dIn, m = dSAE
        c.data.withUnsafeBufferPointer { pc in
            W_dec.data.withUnsafeBufferPointer { pw in
                out.data.withUnsafeMutableBufferPointer { po in
                    for b in 0..<c.rows {
                        let row = po.baseAddress! + b * n
                        for i in 0..<n { row[i] = b_dec[i] }
                        let codes = pc.baseAddress! + b * m
                        for j in 0..<m where codes[j] != 0 { Vec.axpy(codes[j], pw.baseAddress! + j * n, row, n) }
                    }
                }
            }
        }
        return out
    }

    public func reconstruct(_ x: Matrix) throws -> Matrix {
        guard config.normalization.transformsRows else { return try decode(try encode(x)) }
        try checkInput(x, "reconstruct")
        let ws = StepWorkspace(dIn: dIn, dSAE: dSAE)
        var rng = RNG(seed: config.seed &+ 0x5EED)
        ws.forward(self, x: x, noiseSeed: config.noiseInEvaluation ? rng.next() : nil, step: 0, denseCodes: false, needGradients: false)
        return Matrix(rows: x.rows, cols: dIn, data: ws.recon.array(x.rows * dIn))
    }

    /// The codes alone, with the architecture's evaluation-time activation and no reconstruction (`encode` also
    /// decodes, as its workspace serves training): what `top`, `feature` and `features` scan. Nil when evaluation
    /// draws noise, whose numbers only the seeded `encode` gives.
    public func codesOnlyEncoder() -> ((Matrix) throws -> Matrix)? {
        guard !config.noiseInEvaluation else { return nil }
        return { x in try ScanEncoder(sae: self)!.encode(x).codes }
    }

    /// For kinds whose code saturates (NSAE): the pre-activation where the feature fires, ReLU(W_encᵀ(x − b_dec) +
    /// b_enc), 0 elsewhere, so top activations that all read tanh(·) = 1.0 are still ordered. Nil for the other
    /// kinds (their code is the ranking), and when evaluation draws noise (as `codesOnlyEncoder`).
    public func preActivationEncoder() -> ((Matrix) throws -> Matrix)? {
        guard config.architecture.kind.codeSaturates, !config.noiseInEvaluation else { return nil }
        return { x in try ScanEncoder(sae: self)!.encode(x).keys! }
    }

    // MARK: training math

    public func lossAndGradients(_ x: Matrix, noise: Bool, rng: inout RNG) throws -> (LossTerms, SAEGradients) {
        try checkInput(x, "loss")
        guard x.rows > 0 else { throw SAEError("loss: the batch is empty") }
        let ws = StepWorkspace(dIn: dIn, dSAE: dSAE)
        ws.forward(self, x: x, noiseSeed: drawsNoise(noise) ? rng.next() : nil, step: 0, denseCodes: false, needGradients: true)
        ws.backward(self)
        var gEncRows = Matrix(rows: dSAE, cols: dIn)
        var gDec = Matrix(rows: dSAE, cols: dIn)
        gEncRows.data.withUnsafeMutableBufferPointer { pe in
            gDec.data.withUnsafeMutableBufferPointer { pd in
                for j in 0..<dSAE {
                    ws.featureGradients(j, dec: pd.baseAddress! + j * dIn, enc: pe.baseAddress! + j * dIn)
                }
            }
        }
        return (ws.terms, SAEGradients(W_enc: gEncRows.transposed(), b_enc: ws.gradBEnc, W_dec: gDec, b_dec: ws.gradBDec,
                                       extra: ws.gradExtra))
    }

    /// The loss alone (same noise as `lossAndGradients` for the same rng state), for finite-difference checks.
    public func loss(_ x: Matrix, noise: Bool, rng: inout RNG) throws -> LossTerms {
        try checkInput(x, "loss")
        let ws = StepWorkspace(dIn: dIn, dSAE: dSAE)
        ws.forward(self, x: x, noiseSeed: drawsNoise(noise) ? rng.next() : nil, step: 0, denseCodes: false,
                   needGradients: false, training: true)
        return ws.terms
    }

    /// The unit-norm decoder constraint's gradient step: removes from each decoder row's gradient its component along
    /// that row, so a step moves along the unit sphere to first order.
    public func projectDecoderGradient(_ grad: inout Matrix) {
        precondition(grad.rows == dSAE && grad.cols == dIn)
        let n = dIn
        grad.data.withUnsafeMutableBufferPointer { pg in
            W_dec.data.withUnsafeBufferPointer { pw in
                for j in 0..<dSAE { Self.removeParallel(pg.baseAddress! + j * n, along: pw.baseAddress! + j * n, n) }
            }
        }
    }

    /// Rescales every decoder row to unit norm (rows of norm 0 are left alone).
    public func normalizeDecoderRows() {
        let n = dIn
        W_dec.data.withUnsafeMutableBufferPointer { pw in
            for j in 0..<dSAE { Self.normalize(pw.baseAddress! + j * n, n) }
        }
    }

    @inline(__always)
    static func removeParallel(_ g: UnsafeMutablePointer<Float>, along w: UnsafePointer<Float>, _ n: Int) {
        let ww = Vec.dot(w, w, n)
        guard ww > 0 else { return }
        Vec.axpy(-Vec.dot(g, w, n) / ww, w, g, n)
    }

    @inline(__always)
    static func normalize(_ w: UnsafeMutablePointer<Float>, _ n: Int) {
        let norm = Vec.dot(w, w, n).squareRoot()
        guard norm > 0, norm.isFinite else { return }
        let s = 1 / norm
        for i in 0..<n { w[i] *= s }
    }
}

