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
// Each element's sum runs over the feature's rows in ascending order, main entries then AuxK's, as the fused loop
// did; only its grouping into partial sums differs (float32 summation order; DensePathTests, SparseKernelTests).
// The decode (StepWorkspace.decode) was tried the same way (W_dec packed per tile, x′ and the partial dpre dots per
// tile) and was no faster (960–1201 samples against 971–979): W_dec's 19 MB already sit in the 32 MB L3, and the
// per-entry horizontal sums of the tiled dots cost what the tiling saved; it stays row by row.
import Foundation
import Tensor

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
        Parallel.run(workers) { w in
            let features = Parallel.slice(m, part: w, of: workers)
            var col = 0
            while col < n {
                let width = min(T, n - col)
                // dx_b[col..<col+width] at dxP + b·width (xc, auxDx alike): packed, see the header.
                let dxP = dxPacked + B * col, xcP = xcPacked + B * col, auxDxP = auxPacked + B * col
                for j in features {
                    let gd = gdP + j * n + col, ge = geP + j * n + col
                    if width == T {
                        var d0 = SIMD8<Float>(), d1 = SIMD8<Float>(), d2 = SIMD8<Float>(), d3 = SIMD8<Float>()
                        var e0 = SIMD8<Float>(), e1 = SIMD8<Float>(), e2 = SIMD8<Float>(), e3 = SIMD8<Float>()
                        for k in cs[j]..<cs[j + 1] {
                            let r = Int(row[k]) * width
                            let v = SIMD8<Float>(repeating: val[k]), q = SIMD8<Float>(repeating: grad[k])
                            let dr = dxP + r, xr = xcP + r
                            d0 += v * Vec.load(dr); d1 += v * Vec.load(dr + 8); d2 += v * Vec.load(dr + 16); d3 += v * Vec.load(dr + 24)
                            e0 += q * Vec.load(xr); e1 += q * Vec.load(xr + 8); e2 += q * Vec.load(xr + 16); e3 += q * Vec.load(xr + 24)
                        }
                        if hasAux {
                            for k in acs[j]..<acs[j + 1] {
                                let r = Int(arow[k]) * width
                                let v = SIMD8<Float>(repeating: aval[k]), q = SIMD8<Float>(repeating: agrad[k])
                                let dr = auxDxP + r, xr = xcP + r
                                d0 += v * Vec.load(dr); d1 += v * Vec.load(dr + 8); d2 += v * Vec.load(dr + 16); d3 += v * Vec.load(dr + 24)
                                e0 += q * Vec.load(xr); e1 += q * Vec.load(xr + 8); e2 += q * Vec.load(xr + 16); e3 += q * Vec.load(xr + 24)
                            }
                        }
                        Vec.store(d0, gd); Vec.store(d1, gd + 8); Vec.store(d2, gd + 16); Vec.store(d3, gd + 24)
                        Vec.store(e0, ge); Vec.store(e1, ge + 8); Vec.store(e2, ge + 16); Vec.store(e3, ge + 24)
                    } else {
                        for i in 0..<width { gd[i] = 0; ge[i] = 0 }
                        for k in cs[j]..<cs[j + 1] {
                            let r = Int(row[k]) * width, v = val[k], q = grad[k]
                            for i in 0..<width { gd[i] += v * dxP[r + i]; ge[i] += q * xcP[r + i] }
                        }
                        if hasAux {
                            for k in acs[j]..<acs[j + 1] {
                                let r = Int(arow[k]) * width, v = aval[k], q = agrad[k]
                                for i in 0..<width { gd[i] += v * auxDxP[r + i]; ge[i] += q * xcP[r + i] }
                            }
                        }
                    }
                }
                col += width
            }
        }
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
