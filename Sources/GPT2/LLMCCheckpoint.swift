import Foundation
import Tensor

/// Reads llm.c's `gpt2_124M.bin`: a 256-int32 header [20240326, version 3, maxT, V, L, NH, C, Vp], then 16 fp32
/// tensors grouped by kind across layers, in nn.Linear [out, in] layout (transposed here to [in, out]); wte has Vp
/// rows of which the last Vp − V are padding.
enum LLMCCheckpoint {
    static let magic: Int32 = 20240326

    static func load(path: String) throws -> (GPT2Config, GPT2Weights) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw GPT2Error("\(path): cannot read: \(error.localizedDescription)")
        }
        guard data.count >= 1024 else { throw GPT2Error("\(path): \(data.count) bytes, shorter than the 1024-byte llm.c header") }
        return try data.withUnsafeBytes { raw -> (GPT2Config, GPT2Weights) in
            let h = (0..<8).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            guard h[0] == Int(magic) else { throw GPT2Error("\(path): magic \(h[0]), expected \(magic) (an llm.c GPT-2 checkpoint)") }
            guard h[1] == 3 else {
                throw GPT2Error("\(path): llm.c version \(h[1]) is not supported (only version 3: fp32, padded vocabulary)")
            }
            let (maxT, V, L, NH, C, Vp) = (h[2], h[3], h[4], h[5], h[6], h[7])
            let config = GPT2Config(nLayer: L, nHead: NH, nEmbd: C, nPositions: maxT, vocabSize: V)
            try config.validate(source: path)
            guard Vp >= V, Vp <= V + (1 << 16) else {
                throw GPT2Error("\(path): padded vocabulary \(Vp) is not in \(V)...\(V + (1 << 16)) (the vocabulary is \(V))")
            }
            // Within the config's limits (validated above) none of these products can overflow.
            let sizes = [Vp * C, maxT * C, L * C, L * C, L * 3 * C * C, L * 3 * C, L * C * C, L * C,
                         L * C, L * C, L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C, C, C]
            let expected = 1024 + 4 * sizes.reduce(0, +)
            guard raw.count == expected else {
                throw GPT2Error("\(path): file is \(raw.count) bytes, expected \(expected) for L=\(L) C=\(C) maxT=\(maxT) Vp=\(Vp)\(raw.count < expected ? " (truncated)" : "")")
            }
            var offset = 1024
            var tensors: [UnsafeBufferPointer<Float>] = []
            // The body is fp32 little-endian; on little-endian hosts the mapped bytes are the floats.
            for n in sizes {
                tensors.append(UnsafeBufferPointer(start: (raw.baseAddress! + offset).assumingMemoryBound(to: Float.self), count: n))
                offset += 4 * n
            }
            func copy(_ t: Int, from start: Int, count n: Int) -> [Float] {
                [Float](unsafeUninitializedCapacity: n) { buf, initialized in
                    buf.baseAddress!.initialize(from: tensors[t].baseAddress! + start, count: n)
                    initialized = n
                }
            }
            func slice(_ t: Int, _ l: Int, _ n: Int) -> [Float] { copy(t, from: l * n, count: n) }
            /// Layer l of an [L, out, in] tensor as an [in, out] matrix.
            func linear(_ t: Int, _ l: Int, out: Int, in inn: Int) -> Matrix {
                Matrix(rows: out, cols: inn, data: slice(t, l, out * inn)).transposed()
            }
            let blocks = (0..<L).map { l in
                BlockWeights(ln1Weight: slice(2, l, C), ln1Bias: slice(3, l, C),
                             attnQKV: linear(4, l, out: 3 * C, in: C), attnQKVBias: slice(5, l, 3 * C),
                             attnProj: linear(6, l, out: C, in: C), attnProjBias: slice(7, l, C),
                             ln2Weight: slice(8, l, C), ln2Bias: slice(9, l, C),
                             mlpFC: linear(10, l, out: 4 * C, in: C), mlpFCBias: slice(11, l, 4 * C),
                             mlpProj: linear(12, l, out: C, in: 4 * C), mlpProjBias: slice(13, l, C))
            }
            let weights = GPT2Weights(tokenEmbedding: Matrix(rows: V, cols: C, data: copy(0, from: 0, count: V * C)),
                                      positionEmbedding: Matrix(rows: maxT, cols: C, data: copy(1, from: 0, count: maxT * C)),
                                      blocks: blocks, lnFinalWeight: copy(14, from: 0, count: C), lnFinalBias: copy(15, from: 0, count: C))
            return (config, weights)
        }
    }

    /// Writes weights in the version-3 layout (fp32, vocabulary padded to a multiple of 128), as llm.c's
    /// `write_model` does. Used by tests and for exporting.
    static func encode(config c: GPT2Config, weights w: GPT2Weights) -> Data {
        let C = c.nEmbd, V = c.vocabSize, Vp = (V + 127) / 128 * 128
        var header = [Int32](repeating: 0, count: 256)
        header[0] = magic; header[1] = 3
        header[2] = Int32(c.nPositions); header[3] = Int32(V); header[4] = Int32(c.nLayer)
        header[5] = Int32(c.nHead); header[6] = Int32(C); header[7] = Int32(Vp)
        var out = Data()
        func put(_ values: [Float]) { values.withUnsafeBytes { out.append(contentsOf: $0) } }
        header.withUnsafeBytes { out.append(contentsOf: $0) }
        put(w.tokenEmbedding.data); put([Float](repeating: 0, count: (Vp - V) * C))
        put(w.positionEmbedding.data)
        for kind in 0..<12 {
            for b in w.blocks {
                switch kind {
                case 0: put(b.ln1Weight)
                case 1: put(b.ln1Bias)
                case 2: put(b.attnQKV.transposed().data)
                case 3: put(b.attnQKVBias)
                case 4: put(b.attnProj.transposed().data)
                case 5: put(b.attnProjBias)
                case 6: put(b.ln2Weight)
                case 7: put(b.ln2Bias)
                case 8: put(b.mlpFC.transposed().data)
                case 9: put(b.mlpFCBias)
                case 10: put(b.mlpProj.transposed().data)
                default: put(b.mlpProjBias)
                }
            }
        }
        put(w.lnFinalWeight); put(w.lnFinalBias)
        return out
    }
}
