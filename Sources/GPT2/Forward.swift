import Tensor

extension GPT2Model {
    /// Forward over `batch` sequences of `seqLen` ids, flattened batch-major ([B·T]). Captured hooks come back as
    /// [B·T, width] matrices keyed by TransformerLens name (any of `HookPoint.all`, layouts in `HookPoint`); a
    /// captured value is the one that flows on (after any patch at that hook). Without `logits` the pass stops right
    /// after the last captured hook, whichever it is (after the q projection for `attn.hook_q`, say). `context` is checked for
    /// cancellation between blocks (throws `Cancelled`).
    public func forward(tokens: [Int32], batch: Int, seqLen: Int, captures: Set<String> = [],
                        patches: [String: Patch] = [:], logits: Bool = true,
                        context: WorkContext = .silent) throws -> ForwardResult {
        try checkTokens(tokens, batch: batch, seqLen: seqLen)
        var run = try ForwardRun(model: self, tokens: tokens, batch: batch, seqLen: seqLen, captures: captures,
                                 patches: patches, logits: logits, resumeAfter: nil, context: context)
        if run.isFinished(after: -1) { return run.result }
        var x = try run.embed()
        try run.blocks(&x, fromLayer: 0, atMLP: false)
        return run.result
    }

    /// Forward over equal-length sequences.
    public func forward(_ sequences: [[Int32]], captures: Set<String> = [], patches: [String: Patch] = [:],
                        logits: Bool = true, context: WorkContext = .silent) throws -> ForwardResult {
        guard let T = sequences.first?.count else { throw GPT2Error("forward: empty batch") }
        if let bad = sequences.firstIndex(where: { $0.count != T }) {
            throw GPT2Error("forward: sequence \(bad) has \(sequences[bad].count) tokens, sequence 0 has \(T); pad or cut them to one length")
        }
        return try forward(tokens: sequences.flatMap { $0 }, batch: sequences.count, seqLen: T, captures: captures,
                           patches: patches, logits: logits, context: context)
    }

    /// Continues a forward from a cached residual-stream value, running only what comes after `hook`: so clean,
    /// zero-ablated and spliced runs share the prefix. `hook` must be a residual hook (`blocks.L.hook_resid_pre`,
    /// `hook_resid_mid` or `hook_resid_post`); `value` is that hook's value ([B·T, C], as captured). Hooks at or
    /// before `hook` are not applied again; any hook after it (sub-module hooks included) can be captured or patched. To splice `blocks.L.hook_mlp_out`, resume from `blocks.L.hook_resid_mid`
    /// with a patch on `blocks.L.hook_mlp_out` (likewise attn_out from resid_pre). `tokens` are needed for position
    /// masks of patches.
    public func resume(from hook: String, value: Matrix, tokens: [Int32], batch: Int, seqLen: Int,
                       captures: Set<String> = [], patches: [String: Patch] = [:], logits: Bool = true,
                       context: WorkContext = .silent) throws -> ForwardResult {
        try checkTokens(tokens, batch: batch, seqLen: seqLen)
        let point = try HookPoint.parse(hook, nLayer: config.nLayer)
        guard value.rows == batch * seqLen && value.cols == config.nEmbd else {
            throw GPT2Error("resume from \(hook): value is [\(value.rows), \(value.cols)], expected [\(batch * seqLen), \(config.nEmbd)]")
        }
        let (layer, atMLP): (Int, Bool)
        switch point {
        case .block(let l, .residPre): (layer, atMLP) = (l, false)
        case .block(let l, .residMid): (layer, atMLP) = (l, true)
        case .block(let l, .residPost): (layer, atMLP) = (l + 1, false)
        default:
            throw GPT2Error("cannot resume from \(hook): resume from a residual hook (blocks.L.hook_resid_pre, hook_resid_mid or hook_resid_post); to splice attn_out or mlp_out resume from the resid_pre or resid_mid before it and patch")
        }
        var run = try ForwardRun(model: self, tokens: tokens, batch: batch, seqLen: seqLen, captures: captures,
                                 patches: patches, logits: logits, resumeAfter: point, context: context)
        if run.isFinished(after: point.order) { return run.result }
        var x = value
        try run.blocks(&x, fromLayer: layer, atMLP: atMLP)
        return run.result
    }

    /// Continues a forward with `hook` holding `value` ([B·T, width]) in place of what the model computes there,
    /// from a cached clean pass: what `forward(…, patches: [hook: .values(value)])` computes, without the prefix.
    /// `residualBefore` is the clean value of the residual hook the block half containing `hook` starts from
    /// (`HookPoint.Kind.residualBefore`: resid_pre for the attention half, resid_mid for the MLP half; not needed for
    /// a residual hook). A block output (hook_attn_out, hook_mlp_out) is added to that residual, as the forward adds
    /// it, and the pass resumes after the block half, so nothing of the half is recomputed; any other hook within a
    /// half reruns the half from `residualBefore` with the value patched in. `captures` and `patches` name hooks after
    /// `hook` (for a block output: after the residual it feeds, e.g. blocks.L.hook_resid_post after hook_mlp_out).
    public func resume(replacing hook: String, with value: Matrix, residualBefore: Matrix?, tokens: [Int32], batch: Int,
                       seqLen: Int, captures: Set<String> = [], patches: [String: Patch] = [:], logits: Bool = true,
                       context: WorkContext = .silent) throws -> ForwardResult {
        let point = try HookPoint.parse(hook, nLayer: config.nLayer)
        guard case .block(let layer, let kind) = point, point.isPerToken else {
            throw GPT2Error("cannot resume replacing \(hook): replace a per-token block hook (blocks.L.hook_resid_pre, attn.hook_z, hook_mlp_out, …; not hook_embed, ln_final or attention scores and patterns)")
        }
        if kind.residualBefore == kind {
            return try resume(from: point.name, value: value, tokens: tokens, batch: batch, seqLen: seqLen,
                              captures: captures, patches: patches, logits: logits, context: context)
        }
        let before = HookPoint.name(layer: layer, kind: kind.residualBefore)
        guard let residualBefore else { throw GPT2Error("resume replacing \(point.name): the clean value of \(before) is needed") }
        guard residualBefore.rows == batch * seqLen, residualBefore.cols == config.nEmbd else {
            throw GPT2Error("resume replacing \(point.name): \(before) is [\(residualBefore.rows), \(residualBefore.cols)], expected [\(batch * seqLen), \(config.nEmbd)]")
        }
        if patches.keys.contains(where: { (try? HookPoint.parse($0, nLayer: config.nLayer)) == point }) {
            throw GPT2Error("resume replacing \(point.name): the hook is replaced here, so it cannot also be patched")
        }
        switch kind {
        case .attnOut, .mlpOut:
            guard value.rows == batch * seqLen, value.cols == config.nEmbd else {
                throw GPT2Error("resume replacing \(point.name): value is [\(value.rows), \(value.cols)], expected [\(batch * seqLen), \(config.nEmbd)]")
            }
            // The forward adds a block output into the residual with axpy; the same addition keeps this bit-identical.
            var residual = residualBefore
            residual.data.withUnsafeMutableBufferPointer { r in
                value.data.withUnsafeBufferPointer { Kernels.axpy(1, $0.baseAddress!, r.baseAddress!, count: r.count) }
            }
            let after = HookPoint.name(layer: layer, kind: kind == .attnOut ? .residMid : .residPost)
            return try resume(from: after, value: residual, tokens: tokens, batch: batch, seqLen: seqLen,
                              captures: captures, patches: patches, logits: logits, context: context)
        default:
            var withValue = patches
            withValue[point.name] = .values(value)
            return try resume(from: before, value: residualBefore, tokens: tokens, batch: batch, seqLen: seqLen,
                              captures: captures, patches: withValue, logits: logits, context: context)
        }
    }

    func checkTokens(_ tokens: [Int32], batch: Int, seqLen: Int) throws {
        guard batch > 0, seqLen > 0 else { throw GPT2Error("forward: batch \(batch) and seqLen \(seqLen) must be positive") }
        guard tokens.count == batch * seqLen else {
            throw GPT2Error("forward: \(tokens.count) tokens, expected batch \(batch) × seqLen \(seqLen) = \(batch * seqLen)")
        }
        guard seqLen <= config.nPositions else {
            throw GPT2Error("forward: seqLen \(seqLen) exceeds the model's context of \(config.nPositions) positions")
        }
        if let i = tokens.firstIndex(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw GPT2Error("forward: token id \(tokens[i]) at position \(i) is outside the vocabulary 0..<\(config.vocabSize)")
        }
    }
}

/// The state of one forward pass: which hooks to capture and patch, where to stop, and the scratch buffers.
struct ForwardRun {
    let model: GPT2Model
    let tokens: [Int32]
    let B: Int, T: Int, N: Int, C: Int
    let captures: Set<HookPoint>
    let patches: [HookPoint: Patch]
    let wantLogits: Bool
    /// Order of the last hook anything depends on (captures, or Int.max for logits).
    let lastOrder: Int
    let resumeOrder: Int
    let context: WorkContext
    var result = ForwardResult()

    init(model: GPT2Model, tokens: [Int32], batch: Int, seqLen: Int, captures names: Set<String>,
         patches byName: [String: Patch], logits: Bool, resumeAfter: HookPoint?, context: WorkContext) throws {
        self.model = model
        self.context = context
        self.tokens = tokens
        B = batch; T = seqLen; N = batch * seqLen; C = model.config.nEmbd
        let nLayer = model.config.nLayer
        captures = Set(try names.map { try HookPoint.parse($0, nLayer: nLayer) })
        var p: [HookPoint: Patch] = [:]
        for (name, patch) in byName {
            let point = try HookPoint.parse(name, nLayer: nLayer)
            guard p[point] == nil else { throw GPT2Error("two patches for hook \(point.name)") }
            p[point] = patch
        }
        patches = p
        wantLogits = logits
        lastOrder = logits ? Int.max : (captures.map(\.order).max() ?? -1)
        resumeOrder = resumeAfter?.order ?? -1
        if let resumeAfter, let early = (captures.union(patches.keys)).filter({ $0.order <= resumeAfter.order }).min() {
            throw GPT2Error("hook \(early.name) comes at or before the resume point \(resumeAfter.name); it cannot be captured or patched here")
        }
    }

    func isFinished(after order: Int) -> Bool { order >= lastOrder }

    func needs(_ p: HookPoint) -> Bool { captures.contains(p) || patches[p] != nil }

    /// Patches, then captures, the value at hook `p`.
    mutating func hook(_ p: HookPoint, _ x: inout Matrix) throws {
        if let patch = patches[p] { try patch.apply(to: &x, tokens: tokens, hook: p.name) }
        if captures.contains(p) { result.captures[p.name] = x }
    }

    /// Token plus position embeddings: the residual stream entering block 0.
    mutating func embed() throws -> Matrix {
        let w = model.weights
        var tok = Matrix(rows: N, cols: C)
        var pos = Matrix(rows: N, cols: C)
        w.tokenEmbedding.data.withUnsafeBufferPointer { wte in
            w.positionEmbedding.data.withUnsafeBufferPointer { wpe in
                tok.data.withUnsafeMutableBufferPointer { t in
                    pos.data.withUnsafeMutableBufferPointer { p in
                        for n in 0..<N {
                            let id = Int(tokens[n]), t0 = n % T
                            (t.baseAddress! + n * C).update(from: wte.baseAddress! + id * C, count: C)
                            (p.baseAddress! + n * C).update(from: wpe.baseAddress! + t0 * C, count: C)
                        }
                    }
                }
            }
        }
        if needs(.embed) { try hook(.embed, &tok) }
        if needs(.posEmbed) { try hook(.posEmbed, &pos) }
        tok.data.withUnsafeMutableBufferPointer { t in
            pos.data.withUnsafeBufferPointer { p in Kernels.axpy(1, p.baseAddress!, t.baseAddress!, count: N * C) }
        }
        return tok
    }

    /// Runs blocks `fromLayer`… (starting at that block's MLP half when `atMLP`), then the final LN and unembedding
    /// as needed, stopping as soon as nothing further is needed.
    mutating func blocks(_ x: inout Matrix, fromLayer first: Int, atMLP: Bool) throws {
        let cfg = model.config
        var s = Scratch(N: N, C: C)
        for l in first..<cfg.nLayer {
            try context.checkCancelled()
            let w = model.weights.blocks[l]
            if !(l == first && atMLP) {
                if try step(.block(l, .residPre), &x) { return }
                if try attentionHalf(l, w, &x, &s) { return }
                if try step(.block(l, .residMid), &x) { return }
            }
            if try mlpHalf(l, w, &x, &s) { return }
            if try step(.block(l, .residPost), &x) { return }
        }
        try final(x, &s)
    }

    /// LN1, attention and its output projection added into the residual x; true when the pass can stop.
    private mutating func attentionHalf(_ l: Int, _ w: BlockWeights, _ x: inout Matrix, _ s: inout Scratch) throws -> Bool {
        if try hookedLayerNorm(x, w.ln1Weight, w.ln1Bias, scale: .block(l, .ln1Scale), normalized: .block(l, .ln1Normalized),
                               into: &s.ln) { return true }
        linear(s.ln, w.attnQKV, w.attnQKVBias, into: &s.qkv)
        for (kind, offset) in [(HookPoint.Kind.q, 0), (.k, C), (.v, 2 * C)] {
            let p = HookPoint.block(l, kind)
            if needs(p) {
                var part = s.qkv.columns(offset..<(offset + C))
                if try step(p, &part) { return true }
                s.qkv.setColumns(offset, from: part)
            } else if isFinished(after: p.order) { return true }
        }
        let scores = HookPoint.block(l, .attnScores), pattern = HookPoint.block(l, .pattern)
        if needs(scores) || needs(pattern) {
            if try attentionThroughPattern(scores: scores, pattern: pattern, &s) { return true }
        } else {
            if isFinished(after: pattern.order) { return true }
            attention(&s)
        }
        if try step(.block(l, .z), &s.z) { return true }
        let result = HookPoint.block(l, .result)
        if needs(result) {
            var perHead = headResults(s.z, w.attnProj)
            if try step(result, &perHead) { return true }
            sumHeads(perHead, bias: w.attnProjBias, into: &s.out)
            if try step(.block(l, .attnOut), &s.out) { return true }
            x.data.withUnsafeMutableBufferPointer { xp in
                s.out.data.withUnsafeBufferPointer { Kernels.axpy(1, $0.baseAddress!, xp.baseAddress!, count: N * C) }
            }
            return false
        }
        return try project(s.z, w.attnProj, w.attnProjBias, hook: .block(l, .attnOut), out: &s.out, residual: &x)
    }

    /// LN2, the MLP and its output projection added into the residual x; true when the pass can stop.
    private mutating func mlpHalf(_ l: Int, _ w: BlockWeights, _ x: inout Matrix, _ s: inout Scratch) throws -> Bool {
        if try hookedLayerNorm(x, w.ln2Weight, w.ln2Bias, scale: .block(l, .ln2Scale), normalized: .block(l, .ln2Normalized),
                               into: &s.ln) { return true }
        linear(s.ln, w.mlpFC, w.mlpFCBias, into: &s.fc)
        if try step(.block(l, .mlpPre), &s.fc) { return true }
        gelu(&s.fc)
        if try step(.block(l, .mlpPost), &s.fc) { return true }
        return try project(s.fc, w.mlpProj, w.mlpProjBias, hook: .block(l, .mlpOut), out: &s.out, residual: &x)
    }

    /// residual += input·W + b, through the hook `p` on the block output when it is captured or patched; otherwise
    /// the product accumulates straight into the residual. True when the pass can stop here.
    private mutating func project(_ input: Matrix, _ wt: Matrix, _ bias: [Float], hook p: HookPoint,
                                  out: inout Matrix, residual x: inout Matrix) throws -> Bool {
        if p.order > resumeOrder && needs(p) {
            linear(input, wt, bias, into: &out)
            if try step(p, &out) { return true }
            x.data.withUnsafeMutableBufferPointer { xp in
                out.data.withUnsafeBufferPointer { Kernels.axpy(1, $0.baseAddress!, xp.baseAddress!, count: N * C) }
            }
            return false
        }
        let (r, c) = (x.rows, x.cols)
        x.data.withUnsafeMutableBufferPointer { xp in
            bias.withUnsafeBufferPointer { Kernels.addRowVector(xp.baseAddress!, rows: r, cols: c, $0.baseAddress!) }
        }
        BLAS.gemm(input, wt, into: &x, beta: 1)
        return isFinished(after: p.order)
    }

    /// Applies hook `p` unless it lies at or before the resume point; true when the pass can stop here.
    mutating func step(_ p: HookPoint, _ x: inout Matrix) throws -> Bool {
        if p.order <= resumeOrder { return false }
        if needs(p) { try hook(p, &x) }
        return isFinished(after: p.order)
    }

    /// out = LN(x) with the LayerNorm's two hooks, as TransformerLens's `LayerNorm`: hook_scale is √(var + ε) per
    /// row ([N, 1]); hook_normalized is (x − mean) / scale, before the weight and bias (so with processing=tl, where
    /// those are 1 and 0, it is the LayerNorm's output, as TransformerLens's LNPre). A patched scale is the one
    /// divided by; a patched normalized value is the one scaled and shifted. The fast kernel runs when neither hook
    /// is captured or patched. True when the pass can stop.
    private mutating func hookedLayerNorm(_ x: Matrix, _ g: [Float], _ b: [Float], scale sp: HookPoint,
                                          normalized np: HookPoint, into out: inout Matrix) throws -> Bool {
        guard needs(sp) || needs(np) else {
            if isFinished(after: sp.order) { return true }
            layerNorm(x, g, b, into: &out)
            return isFinished(after: np.order)
        }
        let cols = x.cols
        var mean = [Float](repeating: 0, count: N)
        var scale = Matrix(rows: N, cols: 1)
        for r in 0..<N {
            var m: Float = 0
            for c in 0..<cols { m += x.data[r * cols + c] }
            m /= Float(cols)
            var v: Float = 0
            for c in 0..<cols { let d = x.data[r * cols + c] - m; v += d * d }
            mean[r] = m
            scale.data[r] = (v / Float(cols) + model.config.layerNormEpsilon).squareRoot()
        }
        if try step(sp, &scale) { return true }
        for r in 0..<N {
            let inv = 1 / scale.data[r]
            for c in 0..<cols { out.data[r * cols + c] = (x.data[r * cols + c] - mean[r]) * inv }
        }
        // Scaled and shifted even when the pass may stop here: the final LayerNorm's output still feeds the logits.
        let stop = try step(np, &out)
        for r in 0..<N { for c in 0..<cols { out.data[r * cols + c] = out.data[r * cols + c] * g[c] + b[c] } }
        return stop
    }

    private mutating func final(_ x: Matrix, _ s: inout Scratch) throws {
        let w = model.weights
        // With logits wanted the pass never stops early (lastOrder is Int.max), so only the unembedding is left.
        _ = try hookedLayerNorm(x, w.lnFinalWeight, w.lnFinalBias, scale: .lnFinalScale, normalized: .lnFinal, into: &s.ln)
        guard wantLogits else { return }
        var logits = Matrix(rows: N, cols: model.config.vocabSize)
        // beta = 1 onto the freshly zeroed matrix: spares OpenBLAS a pass over all B·T·V outputs scaling by beta = 0.
        if let bias = w.unembeddingBias {
            logits.data.withUnsafeMutableBufferPointer { lp in
                bias.withUnsafeBufferPointer { for n in 0..<N { (lp.baseAddress! + n * $0.count).update(from: $0.baseAddress!, count: $0.count) } }
            }
        }
        BLAS.gemm(s.ln, w.unembeddingRows, transB: true, into: &logits, beta: 1)
        result.logits = logits
    }

    func layerNorm(_ x: Matrix, _ g: [Float], _ b: [Float], into out: inout Matrix) {
        let eps = model.config.layerNormEpsilon
        x.data.withUnsafeBufferPointer { xp in
            out.data.withUnsafeMutableBufferPointer { op in
                g.withUnsafeBufferPointer { gp in
                    b.withUnsafeBufferPointer { bp in
                        Kernels.layerNorm(xp.baseAddress!, rows: N, cols: C, gamma: gp.baseAddress!, beta: bp.baseAddress!,
                                          eps: eps, into: op.baseAddress!)
                    }
                }
            }
        }
    }

    /// out = x·W + b: the bias is written first and the product accumulated onto it (beta = 1), which spares
    /// OpenBLAS its separate pass scaling C by beta = 0 and us a pass adding the bias.
    func linear(_ x: Matrix, _ wt: Matrix, _ bias: [Float], into out: inout Matrix) {
        fillRows(&out, bias)
        BLAS.gemm(x, wt, into: &out, beta: 1)
    }

    private func fillRows(_ out: inout Matrix, _ bias: [Float]) {
        let (r, c) = (out.rows, out.cols)
        out.data.withUnsafeMutableBufferPointer { o in
            bias.withUnsafeBufferPointer { b in
                for i in 0..<r { (o.baseAddress! + i * c).update(from: b.baseAddress!, count: c) }
            }
        }
    }

    /// GELU (gelu_new) in place, spread over the cores.
    private func gelu(_ fc: inout Matrix) {
        let n = fc.count
        fc.data.withUnsafeMutableBufferPointer { buf in
            let fc = SharedPointer(buf.baseAddress!)
            Parallel.runOnBLASCores { worker, workers in
                let per = (n / workers + 15) / 16 * 16
                let start = min(n, worker * per), end = min(n, start + per)
                FastMath.gelu(fc.base + start, count: end - start)
            }
        }
    }
}

/// Buffers reused by every block of one forward pass.
struct Scratch {
    var ln: Matrix, qkv: Matrix, z: Matrix, out: Matrix, fc: Matrix
    init(N: Int, C: Int) {
        ln = Matrix(rows: N, cols: C); qkv = Matrix(rows: N, cols: 3 * C); z = Matrix(rows: N, cols: C)
        out = Matrix(rows: N, cols: C); fc = Matrix(rows: N, cols: 4 * C)
    }
}
