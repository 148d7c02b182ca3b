import Tensor

/// One transformer block's parameters, every projection in [in, out] layout (y = x·W + b, Hugging Face Conv1D).
public struct BlockWeights: Sendable {
    public var ln1Weight: [Float], ln1Bias: [Float]
    public var attnQKV: Matrix, attnQKVBias: [Float]      // [C, 3C]; output columns are q | k | v
    public var attnProj: Matrix, attnProjBias: [Float]    // [C, C]
    public var ln2Weight: [Float], ln2Bias: [Float]
    public var mlpFC: Matrix, mlpFCBias: [Float]          // [C, 4C]
    public var mlpProj: Matrix, mlpProjBias: [Float]      // [4C, C]
}

/// All parameters of a GPT-2. The unembedding is tied to `tokenEmbedding` unless weight processing gave it its own
/// matrix and bias (`unembedding`, `unembeddingBias`).
public struct GPT2Weights: Sendable {
    public var tokenEmbedding: Matrix      // wte [V, C]
    public var positionEmbedding: Matrix   // wpe [nPositions, C]
    public var blocks: [BlockWeights]
    public var lnFinalWeight: [Float], lnFinalBias: [Float]
    /// W_Uᵀ [V, C] when not tied to wte (logits = ln_final · unembeddingᵀ + unembeddingBias).
    public var unembedding: Matrix? = nil
    public var unembeddingBias: [Float]? = nil

    public init(tokenEmbedding: Matrix, positionEmbedding: Matrix, blocks: [BlockWeights], lnFinalWeight: [Float],
                lnFinalBias: [Float], unembedding: Matrix? = nil, unembeddingBias: [Float]? = nil) {
        self.tokenEmbedding = tokenEmbedding; self.positionEmbedding = positionEmbedding; self.blocks = blocks
        self.lnFinalWeight = lnFinalWeight; self.lnFinalBias = lnFinalBias
        self.unembedding = unembedding; self.unembeddingBias = unembeddingBias
    }

    /// The unembedding as [V, C] rows: its own matrix, or wte when tied.
    public var unembeddingRows: Matrix { unembedding ?? tokenEmbedding }

    /// Random weights of the given shape: uniform with GPT-2's init scale (std 0.02), LN parameters and biases
    /// perturbed so they matter. For benchmarks and tests: speed does not depend on the values, and uniform draws
    /// keep building GPT-2 small's 124M parameters quick.
    public static func random(config c: GPT2Config, seed: UInt64 = 0) -> GPT2Weights {
        var rng = RNG(seed: seed)
        let halfWidth: Float = 0.02 * Float(3).squareRoot()
        func m(_ r: Int, _ cols: Int) -> Matrix {
            var x = Matrix(rows: r, cols: cols)
            for i in 0..<x.count { x.data[i] = rng.uniform(-halfWidth, halfWidth) }
            return x
        }
        func v(_ n: Int, around base: Float) -> [Float] { (0..<n).map { _ in base + rng.uniform(-halfWidth, halfWidth) } }
        let C = c.nEmbd
        let blocks = (0..<c.nLayer).map { _ in
            BlockWeights(ln1Weight: v(C, around: 1), ln1Bias: v(C, around: 0),
                         attnQKV: m(C, 3 * C), attnQKVBias: v(3 * C, around: 0),
                         attnProj: m(C, C), attnProjBias: v(C, around: 0),
                         ln2Weight: v(C, around: 1), ln2Bias: v(C, around: 0),
                         mlpFC: m(C, 4 * C), mlpFCBias: v(4 * C, around: 0),
                         mlpProj: m(4 * C, C), mlpProjBias: v(C, around: 0))
        }
        return GPT2Weights(tokenEmbedding: m(c.vocabSize, C), positionEmbedding: m(c.nPositions, C), blocks: blocks,
                           lnFinalWeight: v(C, around: 1), lnFinalBias: v(C, around: 0))
    }
}
