import Foundation
import Tensor

/// A GPT-2 with immutable weights: load it once, run any number of forwards (from any thread).
public final class GPT2Model: Sendable {
    public let config: GPT2Config
    public let weights: GPT2Weights
    public let tokenizer: Tokenizer?
    /// The checkpoint's folder name (or file name without extension for an llm.c .bin).
    public let name: String
    /// The weight processing applied at load (none: Hugging Face numerics).
    public let processing: WeightProcessing

    /// `weights` are taken as given; `processing` says what was already applied to them.
    public init(config: GPT2Config, weights: GPT2Weights, tokenizer: Tokenizer? = nil, name: String = "gpt2",
                processing: WeightProcessing = .none) throws {
        try config.validate(source: name)
        try Self.check(weights, config, source: name)
        self.config = config
        self.weights = weights
        self.tokenizer = tokenizer
        self.name = name
        self.processing = processing
    }

    /// A model of the given shape with random weights (benchmarks, tests).
    public static func random(config: GPT2Config, seed: UInt64 = 0, tokenizer: Tokenizer? = nil) throws -> GPT2Model {
        try GPT2Model(config: config, weights: .random(config: config, seed: seed), tokenizer: tokenizer, name: "random-gpt2")
    }

    /// Loads a Hugging Face folder (config.json + model.safetensors), an llm.c `.bin` checkpoint, or a folder holding
    /// llm.c's `gpt2_124M.bin` (with `gpt2_tokenizer.bin` or the HF tokenizer files beside it). The tokenizer
    /// comes from `tokenizerPath` (a folder) if given, else from the checkpoint's folder if it holds tokenizer files.
    /// `processing: .transformerLens` applies `HookedTransformer.from_pretrained`'s default processing after loading.
    public static func load(path: String, tokenizerPath: String? = nil, processing: WeightProcessing = .none) throws -> GPT2Model {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw GPT2Error("\(path): no such file or folder") }
        let url = URL(fileURLWithPath: path)
        let config: GPT2Config, weights: GPT2Weights, folder: String, name: String
        let llmcInFolder = (path as NSString).appendingPathComponent("gpt2_124M.bin")
        if isDir.boolValue && !FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("model.safetensors"))
            && FileManager.default.fileExists(atPath: llmcInFolder) {
            (config, weights) = try LLMCCheckpoint.load(path: llmcInFolder)
            folder = path
            name = url.standardizedFileURL.lastPathComponent
        } else if isDir.boolValue {
            (config, weights) = try HFCheckpoint.load(folder: path)
            folder = path
            name = url.standardizedFileURL.lastPathComponent
        } else if path.hasSuffix(".safetensors") {
            folder = url.deletingLastPathComponent().path
            (config, weights) = try HFCheckpoint.load(folder: folder)
            name = url.deletingLastPathComponent().lastPathComponent
        } else {
            (config, weights) = try LLMCCheckpoint.load(path: path)
            folder = url.deletingLastPathComponent().path
            name = url.deletingPathExtension().lastPathComponent
        }
        var tokenizer: Tokenizer? = nil
        if let tokenizerPath {
            tokenizer = try Tokenizer.load(folder: tokenizerPath)
        } else {
            tokenizer = try Tokenizer.loadIfPresent(folder: folder)
        }
        if let tokenizer, tokenizer.vocabSize != config.vocabSize {
            throw GPT2Error("\(path): tokenizer has \(tokenizer.vocabSize) tokens but the model's vocabulary is \(config.vocabSize)")
        }
        let loaded = processing == .transformerLens ? weights.processedAsTransformerLens() : weights
        return try GPT2Model(config: config, weights: loaded, tokenizer: tokenizer, name: name, processing: processing)
    }

    /// Writes the weights as an llm.c version-3 checkpoint.
    public func writeLLMC(to path: String) throws {
        guard weights.unembedding == nil && weights.unembeddingBias == nil else {
            throw GPT2Error("\(name): processed weights have their own unembedding; llm.c's format ties it to wte. Load the model with processing=none to write it")
        }
        try AtomicFile.write(LLMCCheckpoint.encode(config: config, weights: weights), to: path)
    }

    private static func check(_ w: GPT2Weights, _ c: GPT2Config, source: String) throws {
        let C = c.nEmbd
        func want(_ what: String, _ m: Matrix, _ r: Int, _ cols: Int) throws {
            guard m.rows == r && m.cols == cols else { throw GPT2Error("\(source): \(what) is [\(m.rows), \(m.cols)], expected [\(r), \(cols)]") }
        }
        func want(_ what: String, _ v: [Float], _ n: Int) throws {
            guard v.count == n else { throw GPT2Error("\(source): \(what) has \(v.count) values, expected \(n)") }
        }
        try want("wte", w.tokenEmbedding, c.vocabSize, C)
        try want("wpe", w.positionEmbedding, c.nPositions, C)
        guard w.blocks.count == c.nLayer else { throw GPT2Error("\(source): \(w.blocks.count) blocks, config n_layer is \(c.nLayer)") }
        for (l, b) in w.blocks.enumerated() {
            try want("h.\(l).attn.c_attn.weight", b.attnQKV, C, 3 * C); try want("h.\(l).attn.c_attn.bias", b.attnQKVBias, 3 * C)
            try want("h.\(l).attn.c_proj.weight", b.attnProj, C, C); try want("h.\(l).attn.c_proj.bias", b.attnProjBias, C)
            try want("h.\(l).mlp.c_fc.weight", b.mlpFC, C, 4 * C); try want("h.\(l).mlp.c_fc.bias", b.mlpFCBias, 4 * C)
            try want("h.\(l).mlp.c_proj.weight", b.mlpProj, 4 * C, C); try want("h.\(l).mlp.c_proj.bias", b.mlpProjBias, C)
            for (n, v) in [("ln_1.weight", b.ln1Weight), ("ln_1.bias", b.ln1Bias), ("ln_2.weight", b.ln2Weight), ("ln_2.bias", b.ln2Bias)] {
                try want("h.\(l).\(n)", v, C)
            }
        }
        try want("ln_f.weight", w.lnFinalWeight, C); try want("ln_f.bias", w.lnFinalBias, C)
        if let u = w.unembedding { try want("unembedding", u, c.vocabSize, C) }
        if let b = w.unembeddingBias { try want("unembedding bias", b, c.vocabSize) }
    }
}
