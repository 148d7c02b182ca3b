// The sparse step's weight gradients, blocked over columns of d_in for the caches (issue 19).
//
// dW_dec[j] = Σ_{b: j active} c_bj·dx_b and dW_enc[:, j] = Σ_b dpre_bj·xc_b gather, per feature, the rows dx_b and
// xc_b of the batch rows where j fired. Walked feature by feature over all n columns (the fused Adam loop before),
// every gathered row came from L3 or memory (dx and xc are 12.5 MB each at B = 4096, n = 768). Here the columns
// are cut into tiles of `tileWidth` = 32 floats: a tile of dx plus xc (2 × B × 128 B = 1 MB at B = 4096) stays in
// the core's L2 while the worker's features stream past it, each feature's 32 lanes of both gradients in eight
// SIMD8 registers, and the rows are written to the dense gradient rows gradDec/gradEnc [m, n] that Adam then reads
// row by row, as on the dense path. The per-feature (CSC) lists are re-read once per tile (12 B per entry, 24
// tiles at n = 768), small next to the rows they stop refetching. dx, xc (and AuxK's dx) are first copied
// tile-major (tile t, of width w at column c, is the contiguous block at offset B·c with row stride w): read in
// place, a tile's rows lie 3 KB apart, which maps them onto 1/16 of the L2's sets, and the tiled loop ran 2× slower
// than the untiled one (measured). With the copies: 1614–1937 → 630–810 perf samples for the gradients and Adam at
// relu 768→6144 L0 5% (same run, load ≈ 6).
//   dW_dec[j][t] = Σ_{k in col j} c_k · dx_{b_k}[t]      (+ the AuxK entries' a_k · auxDx_{b_k}[t])
//   dW_enc[j][t] = Σ_{k in col j} dpre_k · xc_{b_k}[t]   (+ their dpre_k · xc_{b_k}[t])
// The batch rows are taken in chunks of SparseBlocking.gradientRows (1024: 256 KB of the two tiles), each
// feature's running sums stored between chunks: the whole batch's tiles (1 MB at B = 4096) ran 1.4× the perf samples of
// 1024-row chunks (see SparseBlocking).
// Each element's sum runs over the feature's rows in ascending order (per chunk its main entries, then AuxK's); only
// its grouping into partial sums differs from the fused loop (float32 summation order; DensePathTests,
// SparseKernelTests).
// The decode (StepWorkspace.decode) is blocked the other way, by features (see SparseBlocking): tiling it over
// columns (W_dec packed per tile, x′ and partial dots per tile) was no faster, as the per-entry horizontal sums of
// the tiled dots cost what the tiling saved.
import Foundation
import Tensor

/// The cache blocking of the sparse step's kernels. Measured on this session's machine (2 cores of a Xeon with AMX,
/// 2 MB L2 per core, 105 MB L3; earlier sessions' machines were Zen 4 with 1 MB L2 and 32 MB L3, not re-measured)
/// with `Benchmarks sae-density --quick --path=sparse` and perf samples of each kernel (step times of one binary
/// vary ±20% between runs here), 2026-12-03, relu 768→6144 L0 10%, 3–4 runs of each setting:
///   decode, features per block (512 = 1.5 MB):  6144 (row by row) 13.5–17.2k samples, 768 5.6–8.1k, 512 6.4–7.1k,
///       384 7.0–8.7k, 256 7.6–9.1k, 160 8.7–9.4k, 96 9.4–10.6k
///   weight gradients, rows per chunk:  4096 (whole batch) 13.7–15.9k, 2048 10.4–13.7k, 1024 8.3–11.8k,
///       512 11.5–14.5k, 256 15.5–17.6k
/// The step, old → new blocking, best step of alternating runs: relu 10% 1288–1762 (five runs) → 1004–1153 ms
/// (three), nsae 10% 1734–2068 → 1155–1395, nsae 5% 912–1148 → 877–1071, relu 1% unchanged (377–396 → 313–534);
/// at 768→24576 relu 10% 5079–6312 → 4532–4670, nsae 5% 5447 → 4150.
struct SparseBlocking {
    /// Bytes of W_dec rows per decode block.
    var decodeBytes = 3 << 19
    /// Batch rows per chunk of the weight gradients.
    var gradientRows = 1024

    func decodeFeatures(dIn: Int) -> Int { max(1, decodeBytes / max(1, dIn * MemoryLayout<Float>.size)) }
}

extension StepWorkspace {
    /// Columns per tile: four SIMD8 registers per entry; see the header for the cache budget behind it.
    static let tileWidth = 32

    /// The dense weight-gradient rows gradDec/gradEnc [m, n] from the per-feature lists (and AuxK's, when
    /// auxPerRow > 0): every element written, features without entries get zero rows.
    func tiledWeightGradients() {
        let n = dIn, m = dSAE, T = Self.tileWidth
        gradDec.ensure(m * n); gradEnc.ensure(m * n)
        let workers = min(Parallel.workers(forWork: 2 * (nnz + auxPerRow * rows) * n + m * n), max(1, m / 8))
        let B = rows
        packedXc.ensure(B * n); packedDx.ensure(B * n)
        Self.packTiles(xc.base, rows: B, n, into: packedXc.base)
        Self.packTiles(dx.base, rows: B, n, into: packedDx.base)
        let hasAux = auxPerRow > 0
        if hasAux {
            packedAuxDx.ensure(B * n)
            Self.packTiles(auxDx.base, rows: B, n, into: packedAuxDx.base)
        }
        let gdP = gradDec.base, geP = gradEnc.base
        let dxPacked = packedDx.base, xcPacked = packedXc.base, auxPacked = packedAuxDx.base
        let cs = colStart.base, row = colRow.base, val = colValue.base, grad = colGrad.base
        let acs = auxColStart.base, arow = auxColRow.base, aval = auxColValue.base, agrad = auxColGrad.base
        let chunkRows = max(1, sparseBlocking.gradientRows)
        featureCursor.ensure(2 * m)
        let cursor = featureCursor.base, auxCursor = featureCursor.base + m
        Parallel.run(workers) { w in
            let features = Parallel.slice(m, part: w, of: workers)
            var col = 0
            while col < n {
                let width = min(T, n - col)
                // dx_b[col..<col+width] at dxP + b·width (xc, auxDx alike): packed, see the header.
                let dxP = dxPacked + B * col, xcP = xcPacked + B * col, auxDxP = auxPacked + B * col
                for j in features { cursor[j] = cs[j]; auxCursor[j] = hasAux ? acs[j] : 0 }
                var chunkStart = 0
                while chunkStart < B {
                    let chunkEnd = min(B, chunkStart + chunkRows), firstChunk = chunkStart == 0
                    for j in features {
                        let gd = gdP + j * n + col, ge = geP + j * n + col
                        var k = cursor[j]
                        let kEnd = cs[j + 1]
                        var a = auxCursor[j]
                        let aEnd = hasAux ? acs[j + 1] : 0
                        if width == T {
                            var sums = TileSums()
                            if !firstChunk { sums.load(gd, ge) }
                            while k < kEnd && Int(row[k]) < chunkEnd {
                                let r = Int(row[k]) * width
                                sums.add(val[k], dxP + r, grad[k], xcP + r)
                                k += 1
                            }
                            if hasAux {
                                while a < aEnd && Int(arow[a]) < chunkEnd {
                                    let r = Int(arow[a]) * width
                                    sums.add(aval[a], auxDxP + r, agrad[a], xcP + r)
                                    a += 1
                                }
                            }
                            sums.store(gd, ge)
                        } else {
                            if firstChunk { for i in 0..<width { gd[i] = 0; ge[i] = 0 } }
                            while k < kEnd && Int(row[k]) < chunkEnd {
                                let r = Int(row[k]) * width, v = val[k], q = grad[k]
                                for i in 0..<width { gd[i] += v * dxP[r + i]; ge[i] += q * xcP[r + i] }
                                k += 1
                            }
                            if hasAux {
                                while a < aEnd && Int(arow[a]) < chunkEnd {
                                    let r = Int(arow[a]) * width, v = aval[a], q = agrad[a]
                                    for i in 0..<width { gd[i] += v * auxDxP[r + i]; ge[i] += q * xcP[r + i] }
                                    a += 1
                                }
                            }
                        }
                        cursor[j] = k
                        auxCursor[j] = a
                    }
                    chunkStart = chunkEnd
                }
                col += width
            }
        }
    }
}

/// One feature's running sums over a full tile (tileWidth = 32 columns) of both weight gradients, in eight SIMD8
/// registers: dec += v·dx_b[tile], enc += q·xc_b[tile] per entry.
struct TileSums {
    var d0 = SIMD8<Float>(), d1 = SIMD8<Float>(), d2 = SIMD8<Float>(), d3 = SIMD8<Float>()
    var e0 = SIMD8<Float>(), e1 = SIMD8<Float>(), e2 = SIMD8<Float>(), e3 = SIMD8<Float>()

    /// The sums a previous row chunk stored.
    @inline(__always) mutating func load(_ dec: UnsafeMutablePointer<Float>, _ enc: UnsafeMutablePointer<Float>) {
        d0 = Vec.load(dec); d1 = Vec.load(dec + 8); d2 = Vec.load(dec + 16); d3 = Vec.load(dec + 24)
        e0 = Vec.load(enc); e1 = Vec.load(enc + 8); e2 = Vec.load(enc + 16); e3 = Vec.load(enc + 24)
    }

    @inline(__always)
    mutating func add(_ value: Float, _ dxRow: UnsafeMutablePointer<Float>, _ grad: Float, _ xcRow: UnsafeMutablePointer<Float>) {
        let v = SIMD8<Float>(repeating: value), q = SIMD8<Float>(repeating: grad)
        d0 += v * Vec.load(dxRow); d1 += v * Vec.load(dxRow + 8); d2 += v * Vec.load(dxRow + 16); d3 += v * Vec.load(dxRow + 24)
        e0 += q * Vec.load(xcRow); e1 += q * Vec.load(xcRow + 8); e2 += q * Vec.load(xcRow + 16); e3 += q * Vec.load(xcRow + 24)
    }

    @inline(__always) func store(_ dec: UnsafeMutablePointer<Float>, _ enc: UnsafeMutablePointer<Float>) {
        Vec.store(d0, dec); Vec.store(d1, dec + 8); Vec.store(d2, dec + 16); Vec.store(d3, dec + 24)
        Vec.store(e0, enc); Vec.store(e1, enc + 8); Vec.store(e2, enc + 16); Vec.store(e3, enc + 24)
    }
}

extension StepWorkspace {
    /// Copies the row-major [rows, n] matrix tile-major: tile t (columns c..<c+w, w = tileWidth but the last) to
    /// out + rows·c with row stride w. Rows split between workers.
    static func packTiles(_ a: UnsafePointer<Float>, rows: Int, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        let T = tileWidth
        let workers = min(Parallel.workers(forWork: rows * n * 4), max(1, rows / 8))
        Parallel.run(workers) { w in
            for r in Parallel.slice(rows, part: w, of: workers) {
                var col = 0
                while col < n {
                    let width = min(T, n - col)
                    (out + rows * col + r * width).update(from: a + r * n + col, count: width)
                    col += width
                }
            }
        }
    }
}

/// Entries grouped by feature with a counting sort (each feature's entries keep their order in the input, so
/// ascending rows for a row-major input): the one grouping the step's entries and AuxK's both go through.
struct FeatureGrouping {
    /// Fills start[0...m] (feature j's entries at start[j]..<start[j+1]) and, for each input entry e in order,
    /// calls place(e, slot) with its slot in the grouped order. `next` is scratch for m counters.
    @inline(__always)
    static func group(count: Int, features m: Int, feature: UnsafePointer<Int32>, start: UnsafeMutablePointer<Int>,
                      next: UnsafeMutablePointer<Int>, place: (_ entry: Int, _ slot: Int) -> Void) {
        for j in 0...m { start[j] = 0 }
        for e in 0..<count { start[Int(feature[e]) + 1] += 1 }
        for j in 0..<m { start[j + 1] += start[j] }
        next.update(from: start, count: m)
        for e in 0..<count {
            let j = Int(feature[e]), k = next[j]
            place(e, k)
            next[j] = k + 1
        }
    }
}
