import XCTest
import Tensor
@testable import SAE

/// The sparse step's blocked weight-gradient kernel (SparseKernels.swift) and the buffers a group's layers share
/// (SharedStepBuffers), each against a plain reference.
final class SparseKernelTests: XCTestCase {
    /// d_in 72 = two full 32-column tiles and an 8-column remainder, so both code paths of the kernel run.
    private let dIn = 72, dSAE = 96, rows = 50

    /// The weight gradients the tiled kernel wrote (gradDec/gradEnc) against Σ over each feature's list entries in
    /// float64, straight from the row-major dx and xc (no tiles, no packing), for relu, nsae and topk with AuxK on;
    /// and the decode's x′ against b_dec + Σ c·W_dec in float64. With the default blocking these sizes are one
    /// decode block and one row chunk; the small blocking (7 features: 14 blocks, the last partial; 9 rows: 6 chunks,
    /// the last partial) crosses many, so an entry dropped or taken twice at a block's edge is caught.
    func testTiledWeightGradientsMatchTheListSumsInFloat64() throws {
        var rng = RNG(seed: 5)
        let x = rng.normalMatrix(rows, dIn)
        let small = SparseBlocking(decodeBytes: 7 * dIn * 4, gradientRows: 9)
        XCTAssertEqual(small.decodeFeatures(dIn: dIn), 7)
        for (arch, blocking) in ["relu", "nsae", "topk"].flatMap({ a in [(a, SparseBlocking()), (a, small)] }) {
            let sae = try SAERegistry.make(arch, dIn: dIn, dSAE: dSAE, alpha: arch == "nsae" ? 1e-4 : 1e-2, seed: 3,
                                           options: arch == "topk" ? ["k": 6, "aux_k": 5, "dead_window": 10] : [:])
            if arch == "topk" { sae.tokensSinceFired = (0..<dSAE).map { $0 % 3 == 0 ? 1000 : 0 } }
            sae.stepPath = .sparse
            let ws = StepWorkspace(dIn: dIn, dSAE: dSAE)
            ws.sparseBlocking = blocking
            ws.forward(sae, x: x, noiseSeed: arch == "nsae" ? 7 : nil, step: 0, denseCodes: false, needGradients: true)
            var worstDecode = 0.0
            for b in 0..<rows {
                var sum = sae.b_dec.map(Double.init), scale = sae.b_dec.map { abs(Double($0)) + 1e-30 }
                for e in ws.rowStart.base[b]..<ws.rowStart.base[b + 1] {
                    let j = Int(ws.entryFeature.base[e]), c = Double(ws.entryValue.base[e])
                    for i in 0..<dIn {
                        let term = c * Double(sae.W_dec.data[j * dIn + i])
                        sum[i] += term; scale[i] += abs(term)
                    }
                }
                for i in 0..<dIn { worstDecode = max(worstDecode, abs(Double(ws.recon.base[b * dIn + i]) - sum[i]) / scale[i]) }
            }
            XCTAssertLessThan(worstDecode, 1e-5, "\(arch), \(blocking): the decode's x′ against Σ c·W_dec in float64")
            ws.backward(sae)
            XCTAssertFalse(ws.denseGradients, arch)
            if arch == "topk" { XCTAssertGreaterThan(ws.auxPerRow, 0, "AuxK must be on for this check") }
            let n = dIn
            var worst = 0.0
            for j in 0..<dSAE {
                // Each sum and the sum of its terms' magnitudes (float32 rounding error scales with the latter).
                var dec = [Double](repeating: 0, count: n), enc = [Double](repeating: 0, count: n)
                var decScale = [Double](repeating: 1e-30, count: n), encScale = [Double](repeating: 1e-30, count: n)
                func add(_ v: Float, _ g: Float, _ dxRow: UnsafeMutablePointer<Float>, _ xcRow: UnsafeMutablePointer<Float>) {
                    for i in 0..<n {
                        let d = Double(v) * Double(dxRow[i]), e = Double(g) * Double(xcRow[i])
                        dec[i] += d; enc[i] += e; decScale[i] += abs(d); encScale[i] += abs(e)
                    }
                }
                for k in ws.colStart.base[j]..<ws.colStart.base[j + 1] {
                    let r = Int(ws.colRow.base[k]) * n
                    add(ws.colValue.base[k], ws.colGrad.base[k], ws.dx.base + r, ws.xc.base + r)
                }
                if ws.auxPerRow > 0 {
                    for k in ws.auxColStart.base[j]..<ws.auxColStart.base[j + 1] {
                        let r = Int(ws.auxColRow.base[k]) * n
                        add(ws.auxColValue.base[k], ws.auxColGrad.base[k], ws.auxDx.base + r, ws.xc.base + r)
                    }
                }
                for i in 0..<n {
                    let gd = Double(ws.gradDec.base[j * n + i]), ge = Double(ws.gradEnc.base[j * n + i])
                    worst = max(worst, abs(gd - dec[i]) / decScale[i], abs(ge - enc[i]) / encScale[i])
                }
            }
            // float32 sums of ≤ 50 terms: error ≤ ~50·2⁻²⁴ of the terms' magnitude; a wrong row or column is O(1).
            XCTAssertLessThan(worst, 1e-5, "\(arch), \(blocking): tiled weight gradients against the list sums")
        }
    }

    /// dL/dpre of every entry (the decode's second blocked pass) and the step's weight gradients are the same with
    /// many decode blocks and row chunks as with one (float32 summation order only: the decode's sums are grouped
    /// four entries at a time within a block; the chunks keep each gradient element's order, AuxK's entries aside).
    func testSmallBlocksGiveTheGradientsOfOneBlock() throws {
        var rng = RNG(seed: 8)
        let x = rng.normalMatrix(rows, dIn)
        for arch in ["relu", "nsae", "topk"] {
            let sae = try SAERegistry.make(arch, dIn: dIn, dSAE: dSAE, alpha: arch == "nsae" ? 1e-4 : 1e-2, seed: 4,
                                           options: arch == "topk" ? ["k": 6, "aux_k": 5, "dead_window": 10] : [:])
            if arch == "topk" { sae.tokensSinceFired = (0..<dSAE).map { $0 % 3 == 0 ? 1000 : 0 } }
            sae.stepPath = .sparse
            func run(_ blocking: SparseBlocking) -> (grad: [Float], dec: [Float], enc: [Float]) {
                let ws = StepWorkspace(dIn: dIn, dSAE: dSAE)
                ws.sparseBlocking = blocking
                ws.forward(sae, x: x, noiseSeed: arch == "nsae" ? 7 : nil, step: 0, denseCodes: false, needGradients: true)
                ws.backward(sae)
                return (ws.entryGrad.array(ws.nnz), ws.gradDec.array(dSAE * dIn), ws.gradEnc.array(dSAE * dIn))
            }
            let one = run(SparseBlocking()), many = run(SparseBlocking(decodeBytes: 5 * dIn * 4, gradientRows: 4))
            XCTAssertEqual(one.grad.count, many.grad.count, arch)
            XCTAssertGreaterThan(one.grad.count, rows, "\(arch): the check needs entries")
            for (name, a, b) in [("dL/dpre", one.grad, many.grad), ("dW_dec", one.dec, many.dec), ("dW_enc", one.enc, many.enc)] {
                let scale = a.map { abs($0) }.max() ?? 0
                XCTAssertGreaterThan(scale, 0, "\(arch) \(name)")
                let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(worst, 1e-5 * scale, "\(arch) \(name): many blocks against one")
            }
        }
    }

    /// A group whose layers share one SharedStepBuffers (as GroupTrainer builds it) ends with exactly the weights of
    /// each layer trained alone: a layer never reads what another left in the shared buffers. The layers differ in
    /// d_in and d_sae (buffers sized for the larger one first), and one layer's codes are dense, the other's sparse.
    func testLayersSharingStepBuffersTrainAsIfAlone() throws {
        var rng = RNG(seed: 9)
        let xs = [rng.normalMatrix(64, 72), rng.normalMatrix(64, 40)]
        func make() throws -> [SAE] {
            let a = try SAERegistry.make("relu", dIn: 72, dSAE: 160, alpha: 1e-2, seed: 1)
            let b = try SAERegistry.make("relu", dIn: 40, dSAE: 96, alpha: 1e-2, seed: 2)
            try a.setParameters(b_enc: [Float](repeating: -1.5, count: 160))   // sparse codes (~7%)
            try b.setParameters(b_enc: [Float](repeating: 0.5, count: 96))     // dense codes (~70%)
            return [a, b]
        }
        let grouped = try make()
        let group = try SAEGroup(saes: grouped)
        let trainer = GroupTrainer(optimizer: AdamConfig(lr: 1e-3), batchSize: 64, logEvery: 10)
        try trainer.train(group, source: FixedBatches(xs), steps: 4, context: .silent)
        XCTAssertEqual(grouped[0].denseSteps, 0)
        XCTAssertEqual(grouped[1].denseSteps, 4)
        for (i, alone) in try make().enumerated() {
            try trainer.train(try SAEGroup(saes: [alone]), source: FixedBatches([xs[i]]), steps: 4, context: .silent)
            XCTAssertEqual(alone.W_dec.data, grouped[i].W_dec.data, "layer \(i) W_dec")
            XCTAssertEqual(alone.W_enc.data, grouped[i].W_enc.data, "layer \(i) W_enc")
            XCTAssertEqual(alone.b_enc, grouped[i].b_enc, "layer \(i) b_enc")
        }
    }
}

/// The same matrices every step.
private final class FixedBatches: BatchSource {
    let xs: [Matrix]
    init(_ xs: [Matrix]) { self.xs = xs }
    var layerCount: Int { xs.count }
    var dims: [Int] { xs.map(\.cols) }
    func nextBatch(rows: Int) throws -> [Matrix] { xs }
}
