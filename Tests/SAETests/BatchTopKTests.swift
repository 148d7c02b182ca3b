import XCTest
import Tensor
@testable import SAE

final class BatchTopKTests: XCTestCase {
    func makeBatchTopK(k: Int, dIn: Int = 6, dSAE: Int = 12, options: [String: Double] = [:]) throws -> SAE {
        let sae = try SAERegistry.make("batchtopk", dIn: dIn, dSAE: dSAE, alpha: 0, seed: 4,
                                       options: ["k": Double(k)].merging(options) { $1 })
        var rng = RNG(seed: 23)
        try sae.setParameters(W_enc: rng.normalMatrix(dIn, dSAE, std: 0.7), b_enc: (0..<dSAE).map { _ in rng.normal() * 0.3 + 0.2 },
                              W_dec: rng.normalMatrix(dSAE, dIn, std: 0.5), b_dec: (0..<dIn).map { _ in rng.normal() * 0.2 })
        return sae
    }

    func testRadixSelectFindsTheKthLargestPositive() {
        var rng = RNG(seed: 1)
        for (B, m, k) in [(7, 33, 1), (7, 33, 50), (64, 100, 640), (5, 8, 39), (3, 4, 0)] {
            let pre = (0..<(B * m)).map { _ in rng.normal() * 2 }, bias = (0..<m).map { _ in rng.normal() }
            let v = (0..<(B * m)).map { pre[$0] + bias[$0 % m] }.filter { $0 > 0 }.sorted(by: >)
            let want: Float = k == 0 ? .infinity : (k <= v.count ? v[k - 1] : 0)
            let got = pre.withUnsafeBufferPointer { p in bias.withUnsafeBufferPointer { b in
                BatchSelection.kthLargestPositive(p.baseAddress!, b.baseAddress!, rows: B, cols: m, k: k) } }
            XCTAssertEqual(got, want, "B \(B) m \(m) k \(k)")
        }
    }

    func testTrainingKeepsTheTopKBOfTheBatchAndInferenceUsesTheThreshold() throws {
        let sae = try makeBatchTopK(k: 3)
        var rng = RNG(seed: 2)
        let x = rng.normalMatrix(10, 6, std: 1.5)
        let ws = StepWorkspace(dIn: 6, dSAE: 12)
        ws.forward(sae, x: x, noiseSeed: nil, step: 0, denseCodes: false, needGradients: false, training: true)
        XCTAssertEqual(ws.nnz, 30, "k·B entries over the batch")
        let perRow = (0..<10).map { ws.rowStart.base[$0 + 1] - ws.rowStart.base[$0] }
        XCTAssertNotEqual(Set(perRow).count, 1, "rows keep different numbers of features")
        // The kept entries are the 30 largest pre-activations of the batch.
        var all: [Float] = []
        for b in 0..<10 { for j in 0..<12 { all.append((0..<6).reduce(sae.b_enc[j]) { $0 + (x[b, $1] - sae.b_dec[$1]) * sae.W_enc[$1, j] }) } }
        let bar = all.sorted(by: >)[29]
        XCTAssertEqual(ws.entryValue.array(30).min()!, bar, accuracy: 1e-5)
        // Inference: c = v·H(v − θ) with the estimated θ.
        sae.config.options[BatchTopKKind.thresholdKey] = Double(bar)
        let codes = try sae.encode(x)
        XCTAssertEqual(codes.data.filter { $0 > 0 }.count, all.filter { $0 > bar }.count)
    }

    func testGradientsMatchFiniteDifferences() throws {
        let sae = try makeBatchTopK(k: 4)
        var rng = RNG(seed: 41)
        let x = rng.normalMatrix(6, 6, std: 1.5)
        try checkGradientsByFiniteDifferences(sae, x, signature: { trainingSelection(sae, x) }, label: "batchtopk", h: 5e-4)
        // With dead latents AuxK joins, as for TopK.
        sae.tokensSinceFired = (0..<12).map { [0, 3, 7, 9].contains($0) ? 10_000_000 : 0 }
        var r = RNG(seed: 0)
        XCTAssertGreaterThan(try sae.loss(x, noise: false, rng: &r).auxTerm, 0)
    }

    func testThresholdIsEstimatedAsSAELensDoesAndSavedAsAJumpReLUFolder() throws {
        let data = try SyntheticData(d: 16, features: 32, active: 2, norms: [1], seed: 3)
        let group = try SAEGroup(saes: [try makeBatchTopK(k: 4, dIn: 16, dSAE: 64, options: ["threshold_lr": 0.5])])
        let trainer = GroupTrainer(optimizer: AdamConfig(lr: 1e-3), batchSize: 64, logEvery: 1)
        // One step from θ = 0: θ = 0.5 · (smallest positive code of the batch).
        let before = group[0].copy()
        let batch = try SyntheticData(d: 16, features: 32, active: 2, norms: [1], seed: 3).nextBatch(rows: 64)[0]
        let ws = StepWorkspace(dIn: 16, dSAE: 64)
        ws.forward(before, x: batch, noiseSeed: nil, step: 0, denseCodes: false, needGradients: false, training: true)
        let smallest = ws.entryValue.array(ws.nnz).min()!
        let log = try trainer.train(group, source: data, steps: 1, context: .silent)
        XCTAssertEqual(log.rows[0].l0, 4, accuracy: 1e-9, "mean L0 over the batch is k")
        XCTAssertEqual(group[0].config.options[BatchTopKKind.thresholdKey]!, 0.5 * Double(smallest), accuracy: 1e-6)
        try trainer.train(group, source: data, steps: 30, context: .silent)
        let theta = group[0].config.options[BatchTopKKind.thresholdKey]!
        XCTAssertGreaterThan(theta, 0)

        let folder = TestPaths.temporaryFolder("btk")
        try SAELensIO.save(group, to: folder + "/g")
        let sub = folder + "/g/layer0"
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: sub + "/cfg.json"))) as! [String: Any]
        XCTAssertEqual(cfg["architecture"] as? String, "jumprelu", "SAELens saves a trained BatchTopK SAE as jumprelu")
        let weights = try SafeTensorsFile(path: sub + "/sae_weights.safetensors")
        XCTAssertEqual(try weights.floats("threshold"), [Float](repeating: Float(theta), count: 64))
        let back = try SAELensIO.load(folder + "/g")[0]
        XCTAssertEqual(back.config.architecture, .batchtopk)
        XCTAssertEqual(back.config.options[BatchTopKKind.thresholdKey]!, Double(Float(theta)), accuracy: 0)
        let x = try data.nextBatch(rows: 50)[0]
        XCTAssertEqual(try back.encode(x), try group[0].encode(x))
        // Read as SAELens would (no nsae hint), the same folder is a jumprelu SAE with the same codes.
        var plain = cfg
        plain.removeValue(forKey: "nsae_architecture")
        try JSONSerialization.data(withJSONObject: plain).write(to: URL(fileURLWithPath: sub + "/cfg.json"))
        let asJump = try SAELensIO.load(sub)[0]
        XCTAssertEqual(asJump.config.architecture, .jumprelu)
        XCTAssertEqual(try asJump.encode(x), try group[0].encode(x))
    }
}
