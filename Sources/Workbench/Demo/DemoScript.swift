// The built-in default experiment (`nsae demo`): the study's central comparison on synthetic activations with known
// ground truth. The same text, at full size, is `examples/synthetic.nsae` (a test keeps the two identical).

public enum DemoScript {
    /// Sizes of one demo run; `quick` is the reduced size CI runs.
    public struct Size: Sendable {
        public var tokens: Int
        public var steps: Int
        public var batch: Int
        public var pairs: Int

        public static let full = Size(tokens: 200_000, steps: 1_000, batch: 2_048, pairs: 100_000)
        public static let quick = Size(tokens: 20_000, steps: 150, batch: 1_024, pairs: 20_000)
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
        acts = synth d=64 features=512 active=5 layers=4 norms=[1,4,16,64] tokens=\(size.tokens) seed=1 out=\(quoteString(out + "/acts"))
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
}
