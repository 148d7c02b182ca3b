// The built-in default experiment (`nsae demo`), in two parts: the study's central comparison on synthetic
// activations with known ground truth, then the same comparison on the MLP outputs of nsae's built-in GPT-2
// (models/builtin-gpt2) over the Python documentation. The same texts, at full size, are `examples/synthetic.nsae`
// and `examples/builtin-gpt2.nsae` (a test keeps them identical).

public enum DemoScript {
    /// Where Debian's `python3.11-doc` package puts the reStructuredText sources the built-in GPT-2 was trained on.
    public static let pythonDocsCorpus = "/usr/share/doc/python3.11/html/_sources"

    /// Sizes of one demo run; `quick` is the reduced size CI runs.
    public struct Size: Sendable {
        public var tokens: Int
        public var steps: Int
        public var batch: Int
        public var pairs: Int

        public static let full = Size(tokens: 200_000, steps: 1_000, batch: 2_048, pairs: 100_000)
        public static let quick = Size(tokens: 20_000, steps: 150, batch: 1_024, pairs: 20_000)
    }

    /// Sizes of the second part, on the built-in GPT-2.
    public struct LanguageModelSize: Sendable {
        public var tokens: Int
        public var steps: Int
        public var batch: Int
        public var spliceTokens: Int
        public var pairs: Int
        public var cardContexts: Int
        /// Store tokens the explained-variance frontier and match measure on.
        public var frontierTokens: Int

        /// Six SAE groups (two sweeps of three) train here where two did before: one epoch of the store each at
        /// batch 1024 keeps the whole demo under 8 minutes on 2 quiet cores.
        public static let full = LanguageModelSize(tokens: 409_600, steps: 400, batch: 1_024, spliceTokens: 4_096,
                                                   pairs: 100_000, cardContexts: 8, frontierTokens: 50_000)
        public static let quick = LanguageModelSize(tokens: 40_960, steps: 80, batch: 1_024, spliceTokens: 2_048,
                                                    pairs: 20_000, cardContexts: 5, frontierTokens: 10_000)
    }

    /// The script with its sizes and output folder filled in. `## ` comments title the report's sections.
    public static func synthetic(size: Size, out: String) -> String {
        """
        # nsae demo: the Normalized SAE study's central experiment on synthetic activations with known ground truth.
        # Four "layers" share one sparse generative model (512 unit features in 64 dimensions, 5 active per token)
        # but their input norms span two orders of magnitude, as GPT-2's MLP outputs do across layers. A standard
        # ReLU SAE group with one L1 coefficient for every layer and an NSAE group (tanh(ReLU(.)) codes, noise
        # sigma=1, L1 weight alpha·mean‖x‖² per layer) are trained on the same tokens and compared. Both use the
        # default start (unit decoder rows, b_dec = 0) and mse=sum; the NSAE is evaluated without noise.
        set seed=1

        ## The activations: input norms per layer
        acts = synth d=64 features=512 active=5 layers=4 norms=[1,4,16,64] tokens=\(size.tokens) seed=1 out=\(quoteString(out + "/acts")) overwrite=true
        stats acts

        ## Two SAE groups, one SAE per layer, trained on the same batches
        base = sae relu acts expansion=8 alpha=1 seed=1
        norm = sae nsae acts expansion=8 alpha=0.005 sigma=1 seed=1
        train base acts steps=\(size.steps) batch=\(size.batch) lr=3e-3 log_every=\(max(1, size.steps / 10))
        train norm acts steps=\(size.steps) batch=\(size.batch) lr=3e-3 log_every=\(max(1, size.steps / 10))

        ## Sparsity and reconstruction per layer
        cmp = compare base norm
        cmp
        plot cmp x="layer" y="l0" by="sae" kind=line

        ## L1 against L0 per layer
        plot cmp x="l0" y="l1" by="sae" kind=scatter

        ## Recovery of the ground-truth features (mean max cosine similarity)
        recovery base acts
        recovery norm acts

        ## L0 against mean input norm across layers
        fit base acts
        fit norm acts

        ## The dictionaries: decoder column norms
        norms base
        norms norm

        ## The dictionaries: cosine similarity of sampled pairs and of pillar vectors
        cosine base pairs=\(size.pairs)
        cosine norm pairs=\(size.pairs)

        save norm \(quoteString(out + "/nsae"))
        save base \(quoteString(out + "/relu"))
        """ + "\n"
    }

    /// The second part: the built-in GPT-2's MLP outputs. `corpus` is the `_sources` folder of the Python docs.
    public static func builtinGPT2(size: LanguageModelSize, corpus: String, out: String) -> String {
        let k = size.cardContexts
        return """
        # nsae demo, part 2: the same comparison on a real language model, nsae's built-in GPT-2 (4 layers, d_model
        # 128, the real GPT-2 tokenizer, trained on the Python 3.11 documentation; see models/builtin-gpt2/README.md).
        # The MLP outputs of its 4 layers are harvested over the library reference; a ReLU SAE group and an NSAE
        # group are trained on the same tokens, compared, and spliced back into the model on the tutorial, text the
        # SAEs have not seen. Each is the middle of a sweep of three L1 coefficients, whose frontiers (L0 against
        # explained variance and CE score) compare the two kinds at matched L0. Feature cards show what single
        # features respond to.
        gpt2 = load gpt2 builtin
        docs = load text \(quoteString(corpus + "/library"))
        tutorial = load text \(quoteString(corpus + "/tutorial"))

        ## Built-in GPT-2: MLP-output norms per layer
        mlp = harvest gpt2 docs hook=mlp_out tokens=\(size.tokens) context=128 out=\(quoteString(out + "/mlp")) overwrite=true
        stats mlp

        ## Built-in GPT-2: a sweep of three L1 coefficients per kind, one SAE per layer and coefficient, all on the same batches
        mlp_relu = sweep relu mlp expansion=8 alpha=[\(reluGrid.joined(separator: ", "))] seed=1
        mlp_nsae = sweep nsae mlp expansion=8 alpha=[\(nsaeGrid.joined(separator: ", "))] sigma=1 seed=1
        train mlp_relu mlp steps=\(size.steps) batch=\(size.batch) lr=3e-3 log_every=\(max(1, size.steps / 10))
        train mlp_nsae mlp steps=\(size.steps) batch=\(size.batch) lr=3e-3 log_every=\(max(1, size.steps / 10))
        mlp_base = pick mlp_relu alpha=\(reluAlpha)
        mlp_norm = pick mlp_nsae alpha=\(nsaeAlpha)

        ## Built-in GPT-2: sparsity and reconstruction per layer
        mlp_cmp = compare mlp_base mlp_norm
        mlp_cmp
        plot mlp_cmp x="layer" y="l0" by="sae" kind=line

        ## Built-in GPT-2: sparsity–fidelity frontiers, L0 against explained variance and CE score
        frontier mlp_relu mlp_nsae tokens=\(size.frontierTokens)
        frontier mlp_relu mlp_nsae metric=ce_score model=gpt2 corpus=tutorial tokens=\(size.spliceTokens)

        ## Built-in GPT-2: NSAE against ReLU at matched L0 (interpolated log-linearly between grid points)
        match mlp_relu mlp_nsae tokens=\(size.frontierTokens)
        match mlp_relu mlp_nsae metric=ce_score model=gpt2 corpus=tutorial tokens=\(size.spliceTokens)

        ## Built-in GPT-2: the reconstructions spliced into the model, on held-out text (CE and KL)
        splice mlp_base gpt2 tutorial tokens=\(size.spliceTokens)
        splice mlp_norm gpt2 tutorial tokens=\(size.spliceTokens)

        ## Built-in GPT-2: L0 against mean input norm across layers
        fit mlp_base mlp
        fit mlp_norm mlp
        fit mlp_relu mlp
        fit mlp_nsae mlp

        ## Built-in GPT-2: the dictionaries
        norms mlp_norm
        cosine mlp_norm pairs=\(size.pairs)

        ## Built-in GPT-2: feature cards (top-activating contexts, activation histogram, logit lens)
        features mlp_norm layer=3 sort=density top=10
        \(normCards.map { "feature mlp_norm mlp layer=\($0.layer) id=\($0.id) model=gpt2 k=\(k)" }.joined(separator: "\n"))
        top mlp_base mlp layer=\(baseTop.layer) feature=\(baseTop.id) k=\(k) context=8

        save mlp_norm \(quoteString(out + "/mlp-nsae"))
        save mlp_base \(quoteString(out + "/mlp-relu"))
        """ + "\n"
    }

    static let reluAlpha = "1"
    static let nsaeAlpha = "0.003"
    /// Each kind's grid: its single-group coefficient and a factor of 3 either way (seeds=same: the middle group is
    /// the one a lone `sae` of that coefficient trains to, bit for bit).
    static let reluGrid = ["0.3", reluAlpha, "3"]
    static let nsaeGrid = ["0.001", nsaeAlpha, "0.01"]
    /// NSAE features shown as cards, and a ReLU feature shown by its top contexts: chosen once by reading the
    /// full-size run's top contexts of features with densities between 0.3% and 3% (training is seeded, so the same
    /// ids come back): a reST role name after its colon (`:func:`, `:envvar:`), the `::` that ends a paragraph
    /// before a literal block, the line that starts a table rule or a heading underline, and (ReLU) a directive
    /// name (`.. versionadded::`, `.. method::`). At the quick size the same ids may mean something else, or nothing.
    static let normCards: [(layer: Int, id: Int)] = [(3, 594), (3, 854), (2, 3)]
    static let baseTop: (layer: Int, id: Int) = (3, 105)
}
