import XCTest
import Foundation
import Tensor
@testable import SAE

/// Records every progress update (one per completed step).
private final class Recorder: ProgressSink, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [ProgressUpdate] = []
    var updates: [ProgressUpdate] { lock.lock(); defer { lock.unlock() }; return stored }
    func report(_ update: ProgressUpdate) { lock.lock(); stored.append(update); lock.unlock() }
}

/// The training bar's figure describes the whole group, labelled: each layer's mean loss and L0 since the last log
/// row, as a range over layers. It was layer 0's last batch, unlabelled, while the log spanned 10–28,870.
final class ProgressMessageTests: XCTestCase {
    func testTheBarShowsTheRangeOverLayersOfWhatTheLogRowWillSay() throws {
        var rng = RNG(seed: 3)
        let x = rng.normalMatrix(64, 8, std: 1)
        var far = x
        for i in 0..<far.count { far.data[i] *= 30 }   // loss ∝ ‖x‖²: ~900× layer 0's
        let source = try InMemoryBatchSource(layers: [x, far], shuffle: true, seed: 1)
        let group = try SAEGroup.make("relu", dims: [8, 8], expansion: 2, alpha: 1e-3, sigma: 0, seed: 2)
        let recorder = Recorder()
        let trainer = GroupTrainer(optimizer: AdamConfig(lr: 0.01), batchSize: 16, logEvery: 5)
        let log = try trainer.train(group, source: source, steps: 5, context: WorkContext(progress: recorder))
        XCTAssertEqual(recorder.updates.count, 5)
        let rows = log.rows.filter { $0.step == 5 }
        XCTAssertEqual(rows.count, 2)
        let lo = rows.map(\.loss).min()!, hi = rows.map(\.loss).max()!
        XCTAssertGreaterThan(hi / lo, 100, "the layers' losses differ in scale")
        let l0 = rows.map(\.l0).sorted(), share = l0.map { 100 * $0 / 16 }
        func range(_ v: [Double]) -> String {
            let a = String(format: "%.1f", v[0]), b = String(format: "%.1f", v[1])
            return a == b ? a : "\(a)–\(b)"
        }
        let expected = "loss \(WindowStats.figure(lo))–\(WindowStats.figure(hi)), L0 \(range(l0)) (\(range(share))% of features)"
            + " over 2 layers, mean of the last 5 steps"
        XCTAssertEqual(recorder.updates.last?.message, expected)
        XCTAssertTrue(recorder.updates.first!.message.hasSuffix("over 2 layers, mean of the last 1 step"), recorder.updates.first!.message)
    }

    func testOneLayerNamesItsLayerAndNumbersKeepTheirDigits() {
        var w = WindowStats(features: 4)
        w.steps = 2; w.loss = 20.5; w.l0 = 7
        XCTAssertEqual(WindowStats.progressMessage([w], layers: [3]), "layer 3: loss 10.25, L0 3.5 (87.5% of features), mean of the last 2 steps")
        XCTAssertEqual(WindowStats.figure(28_870.4), "28870")
        XCTAssertEqual(WindowStats.figure(7.0412), "7.041")
        XCTAssertEqual(WindowStats.progressMessage([WindowStats(features: 1)], layers: [0]), "")
    }
}
