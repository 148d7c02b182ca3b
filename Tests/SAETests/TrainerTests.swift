import XCTest
import Foundation
import Tensor
@testable import SAE

/// Cancels the flag after a given number of progress reports (one per completed step).
private final class CancelAfter: ProgressSink, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    let after: Int
    let flag: CancellationFlag
    init(after: Int, flag: CancellationFlag) { self.after = after; self.flag = flag }
    func report(_ update: ProgressUpdate) {
        lock.lock(); defer { lock.unlock() }
        count += 1
        if count == after { flag.cancel() }
    }
}

final class TrainerTests: XCTestCase {
    private func parameters(_ g: SAEGroup) -> [[Float]] { g.saes.flatMap { [$0.W_enc.data, $0.b_enc, $0.W_dec.data, $0.b_dec] } }

    private func twoLayerGroup() throws -> SAEGroup {
        try SAEGroup.make("nsae", dims: [8, 8], expansion: 2, alpha: 0.05, sigma: 0.5, seed: 5,
                          hookNames: ["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"])
    }
    private func source() throws -> InMemoryBatchSource {
        var rng = RNG(seed: 8)
        let x = rng.normalMatrix(64, 8, std: 2)
        var y = x
        for i in 0..<y.count { y.data[i] *= 3 }
        return try InMemoryBatchSource(layers: [x, y], shuffle: true, seed: 2)
    }
    private let trainer = GroupTrainer(optimizer: AdamConfig(lr: 0.01), batchSize: 16, logEvery: 2)

    func testCancelKeepsStateAndTrainingAgainResumesExactly() throws {
        let straight = try twoLayerGroup()
        try trainer.train(straight, source: try source(), steps: 6, context: .silent)

        let resumed = try twoLayerGroup()
        let data = try source()
        let flag = CancellationFlag()
        XCTAssertThrowsError(try trainer.train(resumed, source: data, steps: 6,
                                               context: WorkContext(progress: CancelAfter(after: 3, flag: flag), cancellation: flag))) {
            XCTAssertTrue($0 is Cancelled, "\($0)")
        }
        XCTAssertEqual(resumed.stepsTrained, 3)
        XCTAssertEqual(resumed.saes.map(\.optimizerSteps), [3, 3])
        let log = try trainer.train(resumed, source: data, steps: 3, context: .silent)
        XCTAssertEqual(resumed.stepsTrained, 6)
        XCTAssertEqual(parameters(resumed), parameters(straight), "cancel + resume must equal an uninterrupted run")
        XCTAssertEqual(log.rows.map(\.step), [4, 4, 6, 6])
        XCTAssertEqual(log.rows.map(\.layer), [0, 1, 0, 1])
        XCTAssertEqual(resumed.log.rows.map(\.step), [2, 2, 3, 3, 4, 4, 6, 6], "the group keeps every row across calls")
        XCTAssertEqual(straight.log.rows.last!.loss, resumed.log.rows.last!.loss)
    }

    func testCheckpointRoundTripResumesExactly() throws {
        let folder = TestPaths.temporaryFolder("ckpt")
        let path = folder + "/group.ckpt"
        var rng = RNG(seed: 1)
        let x = rng.normalMatrix(16, 8)
        let fixed = { try InMemoryBatchSource(layers: [x, x], shuffle: false) }
        let straight = try twoLayerGroup()
        try trainer.train(straight, source: try fixed(), steps: 5, context: .silent)

        let first = try twoLayerGroup()
        var saving = trainer
        saving.checkpointPath = path
        try saving.train(first, source: try fixed(), steps: 2, context: .silent)
        let (loaded, optimizer) = try Checkpoint.load(path)
        XCTAssertEqual(optimizer, trainer.optimizer)
        XCTAssertEqual(loaded.stepsTrained, 2)
        XCTAssertEqual(loaded.hookNames, ["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"])
        XCTAssertEqual(loaded.log, first.log)
        try trainer.train(loaded, source: try fixed(), steps: 3, context: .silent)
        XCTAssertEqual(parameters(loaded), parameters(straight), "checkpoint + resume must equal an uninterrupted run")
    }

    func testCorruptOrIncompleteCheckpointsGiveClearErrors() throws {
        let folder = TestPaths.temporaryFolder("badckpt")
        let garbage = folder + "/garbage.ckpt"
        FileManager.default.createFile(atPath: garbage, contents: Data("this is not a checkpoint".utf8))
        XCTAssertThrowsError(try Checkpoint.load(garbage)) { XCTAssertTrue("\($0)".contains(garbage), "\($0)") }
        XCTAssertThrowsError(try Checkpoint.load(folder + "/missing.ckpt")) { XCTAssertTrue("\($0)".contains("missing.ckpt"), "\($0)") }

        let good = folder + "/good.ckpt"
        let group = try twoLayerGroup()
        try Checkpoint.save(group, optimizer: AdamConfig(), to: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let truncated = folder + "/truncated.ckpt"
        FileManager.default.createFile(atPath: truncated, contents: bytes.prefix(bytes.count / 2))
        XCTAssertThrowsError(try Checkpoint.load(truncated)) { XCTAssertTrue("\($0)".contains("truncated.ckpt"), "\($0)") }

        // A safetensors file without nsae's header, and one with a tensor removed.
        let file = try SafeTensorsFile(path: good)
        let all = try file.names.map { TensorToWrite(name: $0, dtype: .f32, shape: try file.info($0).shape, floats: try file.floats($0)) }
        try SafeTensors.write(all, to: folder + "/plain.ckpt")
        XCTAssertThrowsError(try Checkpoint.load(folder + "/plain.ckpt")) { XCTAssertTrue("\($0)".contains("not a checkpoint written by nsae"), "\($0)") }
        try SafeTensors.write(all.filter { $0.name != "layer1.W_dec" }, to: folder + "/partial.ckpt", metadata: file.metadata)
        XCTAssertThrowsError(try Checkpoint.load(folder + "/partial.ckpt")) { XCTAssertTrue("\($0)".contains("layer1.W_dec is missing"), "\($0)") }
        try SafeTensors.write(all.map { $0.name == "layer0.b_enc" ? TensorToWrite(name: $0.name, vector: [1, 2, 3]) : $0 },
                              to: folder + "/shape.ckpt", metadata: file.metadata)
        XCTAssertThrowsError(try Checkpoint.load(folder + "/shape.ckpt")) { XCTAssertTrue("\($0)".contains("layer0.b_enc") && "\($0)".contains("[16]"), "\($0)") }
    }

    func testNonFiniteLossStopsWithTheLastGoodParameters() throws {
        let group = try twoLayerGroup()
        var rng = RNG(seed: 3)
        let good = rng.normalMatrix(16, 8)
        try trainer.train(group, source: try InMemoryBatchSource(layers: [good, good], shuffle: false), steps: 2, context: .silent)
        let before = parameters(group)
        var bad = good
        bad[5, 3] = .infinity
        XCTAssertThrowsError(try trainer.train(group, source: try InMemoryBatchSource(layers: [good, bad], shuffle: false),
                                               steps: 1, context: .silent)) {
            XCTAssertTrue("\($0)".contains("non-finite") && "\($0)".contains("step 3") && "\($0)".contains("layer 1"), "\($0)")
        }
        XCTAssertEqual(parameters(group)[4...], before[4...], "layer 1 keeps its last good parameters")
        XCTAssertNotEqual(parameters(group)[..<4], before[..<4], "layer 0 takes the step")
        XCTAssertEqual(group.saes[0].optimizerSteps, 3)
        XCTAssertEqual(group.saes[1].optimizerSteps, 2)
        XCTAssertEqual(group.stepsTrained, 3, "the step counts for the group: its batch was consumed")
        // Training goes on from there on good data.
        try trainer.train(group, source: try InMemoryBatchSource(layers: [good, good], shuffle: false), steps: 1, context: .silent)
        XCTAssertEqual(group.stepsTrained, 4)
        XCTAssertEqual(group.saes[1].optimizerSteps, 3)
    }

    func testShapeMismatchesAreNamed() throws {
        let group = try twoLayerGroup()
        var rng = RNG(seed: 3)
        let wide = try InMemoryBatchSource(layers: [rng.normalMatrix(4, 8), rng.normalMatrix(4, 9)])
        XCTAssertThrowsError(try trainer.train(group, source: wide, steps: 1, context: .silent)) {
            XCTAssertTrue("\($0)".contains("layer 1 activations have d = 9 but its SAE has d_in = 8"), "\($0)")
        }
        let one = try InMemoryBatchSource(layers: [rng.normalMatrix(4, 8)])
        XCTAssertThrowsError(try trainer.train(group, source: one, steps: 1, context: .silent)) {
            XCTAssertTrue("\($0)".contains("1 layers but the SAE group has 2"), "\($0)")
        }
        XCTAssertThrowsError(try group[0].encode(rng.normalMatrix(2, 5))) { XCTAssertTrue("\($0)".contains("d_in = 8"), "\($0)") }
        XCTAssertThrowsError(try group[0].decode(rng.normalMatrix(2, 5))) { XCTAssertTrue("\($0)".contains("d_sae = 16"), "\($0)") }
        XCTAssertThrowsError(try InMemoryBatchSource(layers: [rng.normalMatrix(4, 8), rng.normalMatrix(3, 8)])) {
            XCTAssertTrue("\($0)".contains("layer 1 has 3 rows"), "\($0)")
        }
        XCTAssertThrowsError(try SAERegistry.make("gated", dIn: 4, dSAE: 8, alpha: 1)) {
            XCTAssertTrue("\($0)".contains("unknown SAE architecture 'gated'") && "\($0)".contains("relu, nsae, topk"), "\($0)")
        }
    }

    func testLogRowsCarryTheTermsAndDeadFraction() throws {
        let group = try twoLayerGroup()
        let log = try GroupTrainer(optimizer: AdamConfig(lr: 0.01, warmupSteps: 4), batchSize: 16, logEvery: 2)
            .train(group, source: try source(), steps: 4, context: .silent)
        XCTAssertEqual(log.rows.count, 4)
        for row in log.rows {
            XCTAssertEqual(row.loss, row.mseTerm + row.l1Term, accuracy: 1e-9 * row.loss)
            XCTAssertTrue((0...1).contains(row.deadFraction))
            XCTAssertGreaterThan(row.l0, 0)
        }
        XCTAssertEqual(log.rows.map(\.lr), [0.005, 0.005, 0.01, 0.01].map { Double(Float($0)) })
        XCTAssertEqual(TrainingLog.columns.count, log.table[0].count)
    }

    /// A checkpoint written before the log had an AuxK column still loads (its rows read aux_term 0).
    func testLogRowsFromOlderCheckpointsDecode() throws {
        let old = #"{"rows":[{"step":1,"layer":0,"loss":2.5,"mseTerm":2,"l1Term":0.5,"l0":3,"l1":1,"deadFraction":0.25,"lr":0.001}]}"#
        let log = try JSONDecoder().decode(TrainingLog.self, from: Data(old.utf8))
        XCTAssertEqual(log.rows, [TrainingLogRow(step: 1, layer: 0, loss: 2.5, mseTerm: 2, l1Term: 0.5, auxTerm: 0, l0: 3, l1: 1,
                                                 deadFraction: 0.25, lr: 0.001)])
        let again = try JSONDecoder().decode(TrainingLog.self, from: try JSONEncoder().encode(
            TrainingLog(rows: [TrainingLogRow(step: 2, layer: 1, loss: 1, mseTerm: 0.5, l1Term: 0, auxTerm: 0.5, l0: 4, l1: 2, deadFraction: 0, lr: 0.01)])))
        XCTAssertEqual(again.rows.first?.auxTerm, 0.5)
        XCTAssertThrowsError(try JSONDecoder().decode(TrainingLog.self, from: Data(#"{"rows":[{"step":1}]}"#.utf8)))
    }
}
