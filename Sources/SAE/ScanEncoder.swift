// The codes a scan reads (top, feature, features, the `codesOnlyEncoder`), chunk after chunk of a store, into
// buffers kept across chunks:
//   xc   = x − b_dec (after the SAE's input normalization)           [B, n]
//   pre  = xc · W_encᵀrows[S] + b_enc[S]                            [B, |S|]  one sgemm
//   c    = f(pre), the architecture's evaluation-time activation     dense, in place
//   keys = ReLU(pre), for kinds whose code saturates (NSAE), from the same product
// S is the chosen features when a feature's code depends on its own pre-activation alone (relu, jumprelu, nsae),
// so one feature's scan is a matrix-vector product; else (TopK, BatchTopK: a row's code depends on the whole row) S is
// every feature. No reconstruction: a scan does not need one (the evaluation's own workspace decodes).
import Foundation
import Tensor

// The kinds whose code of feature j is a function of pre_j and j's own parameters (SAEKind.codesArePerFeature;
// false unless a kind says so, a safe default: the scan then encodes every feature).
extension ReLUKind { static var codesArePerFeature: Bool { true } }
extension JumpReLUKind { static var codesArePerFeature: Bool { true } }
extension NSAEKind { static var codesArePerFeature: Bool { true } }

public final class ScanEncoder {
    public let sae: SAE
    /// The feature of each code column.
    public let columns: [Int]
    /// Whether `encode` also gives ranking keys (the pre-activations of a kind whose code saturates).
    public let ranked: Bool
    private let subsetWeights: [Float]?
    private let bias: [Float]
    private let extra: [Float]?
    private let centred = Scratch<Float>()
    private let codeBuffer = Scratch<Float>()
    private let keyBuffer = Scratch<Float>()
    private var entryFeature: [Scratch<Int32>] = []
    private var entryValue: [Scratch<Float>] = []

    /// An encoder of `features` (nil: all), or nil when the SAE's evaluation draws noise (only its seeded `encode`
    /// gives those numbers). Feature indices are checked.
    public init?(sae: SAE, features: [Int]? = nil) throws {
        guard !sae.config.noiseInEvaluation else { return nil }
        let m = sae.dSAE, n = sae.dIn
        if let features, let bad = features.first(where: { $0 < 0 || $0 >= m }) {
            throw SAEError("scan: feature \(bad) outside 0..<\(m)")
        }
        self.sae = sae
        let kind = sae.config.architecture.kind
        let extraAll = Self.featureValues(kind, sae)
        ranked = kind.codeSaturates
        if let features, kind.codesArePerFeature, features.count < m {
            columns = features
            var w = [Float](repeating: 0, count: features.count * n)
            sae.encoderRows.data.withUnsafeBufferPointer { we in
                w.withUnsafeMutableBufferPointer { out in
                    for (i, f) in features.enumerated() { (out.baseAddress! + i * n).update(from: we.baseAddress! + f * n, count: n) }
                }
            }
            subsetWeights = w
            bias = features.map { sae.b_enc[$0] }
            extra = extraAll.map { e in features.map { e[$0] } }
        } else {
            columns = Array(0..<m)
            subsetWeights = nil
            bias = sae.b_enc
            extra = extraAll
        }
    }

    private static func featureValues<K: SAEKind>(_ kind: K.Type, _ sae: SAE) -> [Float]? {
        K.featureValues(sae, training: false)
    }

    /// Codes [rows, columns.count] of x [rows, d_in] (and keys of the same shape when `ranked`), valid until the next
    /// call.
    public func encode(_ x: UnsafePointer<Float>, rows B: Int) -> (codes: UnsafePointer<Float>, keys: UnsafePointer<Float>?) {
        encode(sae.config.architecture.kind, x, rows: B)
    }

    /// The codes as a new matrix (for callers that keep them).
    public func encode(_ x: Matrix) throws -> (codes: Matrix, keys: Matrix?) {
        try sae.checkInput(x, "encode")
        let w = columns.count, count = x.rows * columns.count
        let (c, k) = x.data.withUnsafeBufferPointer { encode($0.baseAddress!, rows: x.rows) }
        return (Matrix(rows: x.rows, cols: w, data: Array(UnsafeBufferPointer(start: c, count: count))),
                k.map { Matrix(rows: x.rows, cols: w, data: Array(UnsafeBufferPointer(start: $0, count: count))) })
    }

    private func encode<K: SAEKind>(_ kind: K.Type, _ x: UnsafePointer<Float>, rows B: Int)
        -> (codes: UnsafePointer<Float>, keys: UnsafePointer<Float>?) {
        let n = sae.dIn, w = columns.count
        centred.ensure(B * n); codeBuffer.ensure(B * w)
        if ranked { keyBuffer.ensure(B * w) }
        let codes = codeBuffer.base, keys = keyBuffer.base, xc = centred.base
        guard B > 0 else { return (UnsafePointer(codes), ranked ? UnsafePointer(keys) : nil) }
        let normalization = sae.config.normalization
        let workers = min(Parallel.workers(forWork: B * max(n, w) * 2), max(1, B / 8))
        sae.b_dec.withUnsafeBufferPointer { bdec in
            Parallel.run(workers) { part in
                for b in Parallel.slice(B, part: part, of: workers) {
                    let xr = x + b * n, row = xc + b * n
                    if normalization.transformsRows {
                        let (shift, scale) = InputNormalizer.rowParameters(normalization, xr, n, norm: Vec.dot(xr, xr, n).squareRoot())
                        for i in 0..<n { row[i] = (xr[i] - shift) * scale - bdec[i] }
                    } else {
                        for i in 0..<n { row[i] = xr[i] - bdec[i] }
                    }
                }
            }
        }
        let weights = subsetWeights ?? sae.encoderRows.data
        weights.withUnsafeBufferPointer { we in
            BLAS.sgemm(transA: false, transB: true, m: B, n: w, k: n, a: xc, lda: n, b: we.baseAddress!, ldb: n,
                       beta: 0, c: codes, ldc: w)
        }
        while entryFeature.count < workers { entryFeature.append(Scratch(capacity: w)); entryValue.append(Scratch(capacity: w)) }
        let features = entryFeature, values = entryValue, ranked = self.ranked
        let config = sae.config
        bias.withUnsafeBufferPointer { benc in
            (extra ?? []).withUnsafeBufferPointer { ep in
                GaussianNoise.upperEdge.withUnsafeBufferPointer { edge in
                    let context = ActivationContext(bEnc: benc.baseAddress!, m: w, config: config, sigma: nil,
                                                    noiseEdge: edge.baseAddress!, extra: extra == nil ? nil : ep.baseAddress,
                                                    batchValue: nil, training: false)
                    Parallel.run(workers) { part in
                        var rng = NoiseStream(seed: 0)
                        let f = features[part], v = values[part]
                        f.ensure(w); v.ensure(w)
                        for b in Parallel.slice(B, part: part, of: workers) {
                            let row = codes + b * w
                            if ranked {
                                let key = keys + b * w
                                for j in 0..<w { key[j] = max(0, row[j] + benc[j]) }
                            }
                            _ = K.activateRow(row, context, &rng, f.base, v.base, dense: true)
                        }
                    }
                }
            }
        }
        return (UnsafePointer(codes), ranked ? UnsafePointer(keys) : nil)
    }
}
