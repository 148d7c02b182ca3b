import Foundation
import XCTest
import Tensor
import SAE
@testable import Activations

/// The scans' fast paths (issue 19) against independent references: the subset encoder against the full one, the
/// table-driven histogram bins against log10, the SAE top-k scan against brute force over naive float64 codes, and the
/// evaluation's dense and sparse decodes against each other.
final class ScanPathTests: XCTestCase {
    private func randomSAE(_ arch: String, d: Int, m: Int, seed: UInt64, options: [String: Double] = [:]) throws -> SAE {
        var rng = RNG(seed: seed)
        let sae = try SAERegistry.make(arch, dIn: d, dSAE: m, alpha: 0.01, seed: seed, options: options)
        try sae.setParameters(b_enc: (0..<m).map { _ in rng.normal() * 0.5 - 0.3 }, b_dec: (0..<d).map { _ in rng.normal() * 0.2 })
        return sae
    }

    /// Codes of a subset of features (one small GEMM) equal the same columns of the all-features encoding, for every
    /// kind whose code is per feature; TopK's codes depend on the whole row, so it encodes every feature.
    func testSubsetEncoderMatchesTheFullEncoder() throws {
        var rng = RNG(seed: 3)
        let x = rng.normalMatrix(50, 16)
        let subset = [3, 17, 0, 63]
        for arch in ["relu", "nsae", "jumprelu"] {
            let sae = try randomSAE(arch, d: 16, m: 64, seed: 7)
            let full = try XCTUnwrap(try ScanEncoder(sae: sae)).encode(x)
            let part = try XCTUnwrap(try ScanEncoder(sae: sae, features: subset))
            XCTAssertEqual(part.columns, subset, arch)
            let some = try part.encode(x)
            for r in 0..<x.rows {
                for (i, f) in subset.enumerated() {
                    XCTAssertEqual(some.codes[r, i], full.codes[r, f], accuracy: 1e-5 * max(1, abs(full.codes[r, f])), "\(arch) row \(r) feature \(f)")
                    if let keys = some.keys { XCTAssertEqual(keys[r, i], full.keys![r, f], accuracy: 1e-5 * max(1, abs(keys[r, i]))) }
                }
            }
            XCTAssertEqual(some.keys != nil, arch == "nsae", "only a saturating code carries ranking keys")
            // The SAE's own encoder (the training workspace) agrees with the scan encoder.
            let reference = try sae.encode(x)
            XCTAssertLessThan(zip(full.codes.data, reference.data).map { abs($0 - $1) }.max()!, 1e-5, arch)
            XCTAssertGreaterThan(full.codes.data.filter { $0 > 0 }.count, 50, "\(arch): some codes must be active")
        }
        let topk = try randomSAE("topk", d: 16, m: 64, seed: 7, options: ["k": 4])
        let encoder = try XCTUnwrap(try ScanEncoder(sae: topk, features: [5]))
        XCTAssertEqual(encoder.columns, Array(0..<64), "TopK's codes depend on the whole row")
        XCTAssertEqual(try encoder.encode(x).codes.data, try topk.encode(x).data)
        XCTAssertThrowsMessage(try ScanEncoder(sae: topk, features: [64]), contains: ["scan: feature 64 outside 0..<64"])
    }

    /// The bin table gives `FeatureActivationSummary.bin` (log10 in Double) for every value tried: both sides of
    /// every edge, random magnitudes over 1e-12…1e12, and the extremes.
    func testHistogramBinTableEqualsLog10Bins() {
        var values: [Float] = [.leastNonzeroMagnitude, .leastNormalMagnitude, 1e-4, 1, 1e4, .greatestFiniteMagnitude, .infinity]
        for edge in HistogramBins.lowerEdges { values += [edge, edge.nextDown, edge.nextUp] }
        var rng = RNG(seed: 1)
        for _ in 0..<20000 { values.append(Float(pow(10, Double(rng.uniform()) * 24 - 12))) }
        for v in values { XCTAssertEqual(HistogramBins.bin(v), FeatureActivationSummary.bin(v), "v = \(v)") }
        XCTAssertEqual(HistogramBins.lowerEdges.count, FeatureActivationSummary.histogramBins - 1)
        XCTAssertEqual(Set((0..<4000).map { HistogramBins.bin(Float(pow(10, -4 + Double($0) / 500))) }).count,
                       FeatureActivationSummary.histogramBins, "every bin is reached")
    }

    /// The SAE scan (scan encoder, all features and a subset) against brute force: codes computed naively in float64
    /// for every row, then sorted per feature.
    func testSAEScanEqualsBruteForceReference() throws {
        let rows = 300, d = 8, m = 24
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: rows)
        for arch in ["relu", "nsae"] {
            let sae = try randomSAE(arch, d: d, m: m, seed: 11)
            let x = try store.matrix(hook: 0, rows: 0..<rows)
            // Column 0 of the store is the row index: scale its weights down so it does not rank every feature.
            var w = sae.W_enc
            for j in 0..<m { w[0, j] *= 0.01 }
            let model = try SAE(config: sae.config, W_enc: w, b_enc: sae.b_enc, W_dec: sae.W_dec, b_dec: sae.b_dec)
            var reference = [[Double]](repeating: [Double](repeating: 0, count: m), count: rows)
            var keys = reference
            for r in 0..<rows {
                for j in 0..<m {
                    var s = Double(model.b_enc[j])
                    for i in 0..<d { s += (Double(x[r, i]) - Double(model.b_dec[i])) * Double(w[i, j]) }
                    keys[r][j] = max(0, s)
                    reference[r][j] = arch == "nsae" ? (s > 0 ? tanh(s) : 0) : max(0, s)
                }
            }
            var options = TopActivations.Options()
            options.k = 6; options.bottomK = 3; options.chunkRows = 64
            let scanned = rows - rows / 10          // every 10th row is a BOS row, skipped
            XCTAssertThrowsMessage(try TopActivations.scan(store: store, hook: 0, sae: model, features: [4, 30, -1], options: options),
                                   contains: ["features [30, -1] outside 0..<24"])
            for selection in [nil, [4, 19, 2]] as [[Int]?] {
                let summaries = try TopActivations.scan(store: store, hook: 0, sae: model, features: selection, options: options)
                XCTAssertEqual(summaries.map(\.feature), selection ?? Array(0..<m))
                for s in summaries {
                    let j = s.feature
                    let active = (0..<rows).filter { $0 % 10 != 0 && reference[$0][j] > 0 }
                    let byKey = active.sorted { keys[$0][j] > keys[$1][j] || (keys[$0][j] == keys[$1][j] && $0 < $1) }
                    XCTAssertEqual(s.top.map(\.token), Array(byKey.prefix(6)), "\(arch) feature \(j) top")
                    for hit in s.top {
                        XCTAssertEqual(Double(hit.activation), reference[hit.token][j], accuracy: 1e-5 * max(1, reference[hit.token][j]))
                        if arch == "nsae" { XCTAssertEqual(Double(hit.preActivation!), keys[hit.token][j], accuracy: 1e-4 * max(1, keys[hit.token][j])) }
                    }
                    let weakest = active.sorted { reference[$0][j] < reference[$1][j] || (reference[$0][j] == reference[$1][j] && $0 < $1) }
                    XCTAssertEqual(s.bottom.map(\.token), Array(weakest.prefix(3)), "\(arch) feature \(j) bottom")
                    XCTAssertEqual(s.activeCount, active.count, "\(arch) feature \(j)")
                    XCTAssertEqual(s.tokensScanned, scanned)
                    var histogram = [Int](repeating: 0, count: FeatureActivationSummary.histogramBins)
                    for r in active { histogram[FeatureActivationSummary.bin(Float(reference[r][j]))] += 1 }
                    XCTAssertEqual(s.histogram.reduce(0, +), active.count)
                    XCTAssertLessThanOrEqual(zip(s.histogram, histogram).map { abs($0 - $1) }.reduce(0, +), 2,
                                             "\(arch) feature \(j): a value on a bin edge may round across it")
                    if !active.isEmpty {
                        XCTAssertEqual(s.meanActive, active.map { reference[$0][j] }.reduce(0, +) / Double(active.count), accuracy: 1e-5)
                    }
                }
                if selection == nil {
                    XCTAssertTrue(summaries.contains { $0.activeCount > 6 }, "the test needs features that fire more than k times")
                    XCTAssertTrue(summaries.contains { $0.activeCount < scanned }, "the test needs features that do not always fire")
                }
            }
        }
    }

    /// `features`' density and mean activation (FeatureStatistics, chunk by chunk through the scan encoder) against
    /// float64 codes over every non-BOS row of the store; with noise=always, the SAE's own seeded encoder on the same
    /// rows; the token limit and the refusal of a store of another width.
    func testFeatureStatisticsEqualBruteForce() throws {
        let rows = 300, d = 8, m = 24
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: rows)
        let x = try store.matrix(hook: 0, rows: 0..<rows)
        for arch in ["relu", "nsae"] {
            let sae = try randomSAE(arch, d: d, m: m, seed: 13)
            var w = sae.W_enc
            for j in 0..<m { w[0, j] *= 0.01 }   // column 0 is the row index
            let model = try SAE(config: sae.config, W_enc: w, b_enc: sae.b_enc, W_dec: sae.W_dec, b_dec: sae.b_dec)
            var active = [Double](repeating: 0, count: m), sum = [Double](repeating: 0, count: m)
            var counted = 0
            for r in 0..<rows where r % 10 != 0 {
                counted += 1
                for j in 0..<m {
                    var s = Double(model.b_enc[j])
                    for i in 0..<d { s += (Double(x[r, i]) - Double(model.b_dec[i])) * Double(w[i, j]) }
                    let c = arch == "nsae" ? (s > 0 ? tanh(s) : 0) : max(0, s)
                    if c > 0 { active[j] += 1; sum[j] += c }
                }
            }
            let measured = try FeatureStatistics.measure(store: store, hook: 0, sae: model, tokens: 10_000, chunkRows: 64)
            XCTAssertEqual(measured.tokens, counted, arch)
            XCTAssertEqual(measured.density, active.map { $0 / Double(counted) }, arch)
            for j in 0..<m {
                XCTAssertEqual(measured.meanActivation[j], active[j] > 0 ? sum[j] / active[j] : 0, accuracy: 1e-5, "\(arch) feature \(j)")
            }
            XCTAssertTrue(active.contains { $0 > 0 && $0 < Double(counted) }, "\(arch): densities strictly between 0 and 1")
            XCTAssertEqual(try FeatureStatistics.measure(store: store, hook: 0, sae: model, tokens: 50).tokens, 50)
        }
        // noise=always: the codes of the SAE's own encoder (one chunk, so one draw of its seeded stream).
        let quiet = try randomSAE("nsae", d: d, m: m, seed: 14)
        var noisyConfig = quiet.config
        noisyConfig.noise = .always
        let noisy = try SAE(config: noisyConfig, W_enc: quiet.W_enc, b_enc: quiet.b_enc, W_dec: quiet.W_dec, b_dec: quiet.b_dec)
        XCTAssertTrue(noisy.config.noiseInEvaluation)
        let reader = try ShuffledBatchReader(store: store, hooks: [0], seed: 0)
        let tokens = reader.rowsPerEpoch
        var rng = RNG(seed: noisy.config.seed &+ 0x5EED)
        let codes = try noisy.encode(try reader.nextBatch(rows: tokens)[0], noise: true, rng: &rng)
        let measured = try FeatureStatistics.measure(store: store, hook: 0, sae: noisy, tokens: tokens, chunkRows: tokens)
        for j in 0..<m {
            let fired = (0..<tokens).filter { codes[$0, j] > 0 }
            XCTAssertEqual(measured.density[j], Double(fired.count) / Double(tokens), "noisy feature \(j)")
            let mean = fired.isEmpty ? 0 : fired.map { Double(codes[$0, j]) }.reduce(0, +) / Double(fired.count)
            XCTAssertEqual(measured.meanActivation[j], mean, accuracy: 1e-9, "noisy feature \(j)")
        }
        let wide = try randomSAE("relu", d: d + 1, m: m, seed: 15)
        XCTAssertThrowsMessage(try FeatureStatistics.measure(store: store, hook: 0, sae: wide, tokens: 10),
                               contains: ["takes 9 inputs", "has d = 8"])
        let hooks = store.hooks.count
        XCTAssertThrowsMessage(try FeatureStatistics.measure(store: store, hook: hooks, sae: noisy, tokens: 10),
                               contains: ["no hook index \(hooks)", "it has \(hooks)"])
        XCTAssertThrowsMessage(try FeatureStatistics.measure(store: store, hook: -1, sae: noisy, tokens: 10),
                               contains: ["no hook index -1"])
    }

    /// The evaluation's dense decode (c · W_dec as one GEMM) and sparse decode (row axpys over the active entries)
    /// give the same metrics, at several densities.
    func testEvaluationDenseAndSparseDecodesAgree() throws {
        var rng = RNG(seed: 8)
        let x = rng.normalMatrix(700, 16)
        for bias: Float in [-2.3, -1.0, 0, 1.5] {
            let sparse = try SAERegistry.make("relu", dIn: 16, dSAE: 96, alpha: 0.01, seed: 4)
            try sparse.setParameters(b_enc: [Float](repeating: bias, count: 96), b_dec: (0..<16).map { _ in rng.normal() * 0.1 })
            let dense = sparse.copy()
            sparse.stepPath = .sparse; dense.stepPath = .dense
            let a = try Evaluator.evaluate(sparse, on: x, batchSize: 256), b = try Evaluator.evaluate(dense, on: x, batchSize: 256)
            func close(_ u: Double, _ v: Double, _ what: String) {
                XCTAssertLessThanOrEqual(abs(u - v), 1e-5 * max(abs(u), abs(v), 1e-12), "bias \(bias): \(what) \(u) vs \(v)")
            }
            close(a.mse, b.mse, "mse"); close(a.explainedVariance, b.explainedVariance, "explained variance")
            close(a.l1, b.l1, "l1"); close(a.suppression, b.suppression, "suppression")
            XCTAssertEqual(a.l0, b.l0, "bias \(bias): l0"); XCTAssertEqual(a.density, b.density, "bias \(bias): density")
            XCTAssertEqual(a.aliveCount, b.aliveCount)
            XCTAssertGreaterThan(a.l0, 0.5, "bias \(bias): some features must fire")
            XCTAssertLessThan(a.l0, 95.5, "bias \(bias): some features must stay off")
        }
    }
}
