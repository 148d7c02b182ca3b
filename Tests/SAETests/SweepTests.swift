import XCTest
import Foundation
import Tensor
@testable import SAE

/// Cancels the flag after a given number of progress reports (one per completed step).
private final class CancelAfterSteps: ProgressSink, @unchecked Sendable {
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

/// Sweeps on synthetic activations with known features (Synthetic.swift): what a sweep trains equals what its
/// SAEs would be trained alone, its sparsity follows the grid, and it survives interruption, checkpoints and a
/// save/load round trip.
final class SweepTests: XCTestCase {
    /// Two "layers" of the same sparse generative model at norms 1 and 4.
    private func data(seed: UInt64 = 11) throws -> SyntheticData {
        try SyntheticData(d: 16, features: 48, active: 3, norms: [1, 4], seed: seed)
    }

    private func template(_ architecture: SAEArchitecture, seed: UInt64 = 7) -> SAEConfig {
        var config = SAEConfig(architecture: architecture, dIn: 1, dSAE: 1, alpha: .nan, sigma: 0.5, seed: seed)
        config.architecture.applyDefaults(&config)
        return config
    }

    private func sweep(_ architecture: SAEArchitecture, _ values: [Double], expansion: Int = 4,
                       seeds: SAESweep.SeedPolicy = .same) throws -> SAESweep {
        try SAESweep.make(template: template(architecture), values: values, seeds: seeds, dims: [16, 16], expansion: expansion,
                          layers: [0, 1], hookNames: ["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"])
    }

    /// One group trained alone, made through the group API (not the sweep's), at one grid value.
    private func alone(_ architecture: SAEArchitecture, option: String, value: Double, expansion: Int = 4) throws -> SAEGroup {
        var config = template(architecture)
        try architecture.set(option, .number(value), in: &config)
        return try SAEGroup.make(template: config, dims: [16, 16], expansion: expansion, layers: [0, 1],
                                 hookNames: ["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"])
    }

    private func parameters(_ group: SAEGroup) -> [[Float]] {
        group.saes.flatMap { [$0.W_enc.data, $0.b_enc, $0.W_dec.data, $0.b_dec] + $0.extraParameters }
    }

    func testFourSAEsInOneSweepAreBitIdenticalToEachTrainedAlone() throws {
        // relu with resampling (an extra batch drawn mid-run), nsae (a noise stream per SAE), topk (AuxK state).
        let cases: [(SAEArchitecture, [Double], Int?)] = [
            (.relu, [1e-3, 1e-2, 1e-1, 1], 4),
            (.nsae, [1e-4, 1e-3, 1e-2, 1e-1], nil),
            (.topk, [2, 4, 8, 16], nil),
        ]
        for (architecture, values, resample) in cases {
            let trainer = GroupTrainer(optimizer: AdamConfig(lr: 3e-3), batchSize: 64, logEvery: 5, resampleEvery: resample)
            let s = try sweep(architecture, values)
            let logs = try trainer.train(s, source: try data(), steps: 12, context: .silent)
            XCTAssertEqual(logs.count, 4)
            XCTAssertEqual(s.stepsTrained, 12)
            for (g, value) in values.enumerated() {
                let group = try alone(architecture, option: architecture.sparsityControl.name, value: value)
                let log = try trainer.train(group, source: try data(), steps: 12, context: .silent)
                XCTAssertEqual(parameters(s.groups[g]), parameters(group),
                               "\(architecture) \(architecture.sparsityControl.name) = \(value): the sweep's SAEs must equal the same SAEs trained alone, bit for bit")
                XCTAssertEqual(logs[g], log, "\(architecture) \(value): the same log")
            }
            // The grid point matters: the groups are not all the same (a sweep that trained one SAE four times would pass above).
            XCTAssertNotEqual(parameters(s.groups[0]), parameters(s.groups[3]), "\(architecture)")
        }
    }

    func testSameSeedsByDefaultDistinctOnRequest() throws {
        let same = try sweep(.relu, [1e-3, 1e-2])
        XCTAssertEqual(same.groups[0].saes.map(\.W_dec.data), same.groups[1].saes.map(\.W_dec.data),
                       "seeds=same: every grid point starts from the same weights")
        let distinct = try sweep(.relu, [1e-3, 1e-2], seeds: .distinct)
        XCTAssertEqual(distinct.groups[1].saes.map(\.config.seed), [9, 10], "seed 7 + 1·2 layers + layer index")
        XCTAssertNotEqual(distinct.groups[0].saes[0].W_dec.data, distinct.groups[1].saes[0].W_dec.data)
    }

    func testReLUSweepL0DecreasesMonotonicallyWithAlpha() throws {
        let values = [1e-3, 1e-2, 1e-1, 1]
        let s = try sweep(.relu, values)
        let trainer = GroupTrainer(optimizer: AdamConfig(lr: 3e-3), batchSize: 256, logEvery: 1000)
        try trainer.train(s, source: try data(), steps: 300, context: .silent)
        let l0 = try s.groups.map { group in
            try Evaluator.evaluate(group, source: try data(seed: 99), tokens: 4096).map(\.l0)
        }
        for layer in 0..<2 {
            let column = l0.map { $0[layer] }
            for g in 1..<column.count {
                XCTAssertLessThan(column[g], column[g - 1], "layer \(layer): L0 over alpha \(values) is \(column)")
            }
        }
    }

    func testInterruptedSweepResumesToTheWeightsOfAnUninterruptedOne() throws {
        let trainer = GroupTrainer(optimizer: AdamConfig(lr: 3e-3), batchSize: 32, logEvery: 2)
        let straight = try sweep(.nsae, [1e-3, 1e-2, 1e-1])
        try trainer.train(straight, source: try data(), steps: 6, context: .silent)

        let resumed = try sweep(.nsae, [1e-3, 1e-2, 1e-1])
        let source = try data()
        let flag = CancellationFlag()
        XCTAssertThrowsError(try trainer.train(resumed, source: source, steps: 6,
                                               context: WorkContext(progress: CancelAfterSteps(after: 3, flag: flag), cancellation: flag))) {
            XCTAssertTrue($0 is Cancelled, "\($0)")
        }
        XCTAssertEqual(resumed.stepsTrained, 3)
        XCTAssertEqual(resumed.allSAEs.map(\.optimizerSteps), [Int](repeating: 3, count: 6), "every SAE stops after the same step")
        try trainer.train(resumed, source: source, steps: 3, context: .silent)
        for g in 0..<3 {
            XCTAssertEqual(parameters(resumed.groups[g]), parameters(straight.groups[g]), "group \(g)")
            // The interrupted run also flushed a row at the cancel (step 3); from there on the rows agree.
            XCTAssertEqual(resumed.groups[g].log.rows.map(\.step), [2, 2, 3, 3, 4, 4, 6, 6], "group \(g)")
            XCTAssertEqual(resumed.groups[g].log.rows.suffix(2), straight.groups[g].log.rows.suffix(2), "group \(g)")
        }
    }

    func testAGroupWhoseStepIsNotFiniteSkipsItAndTheSweepStaysInStep() throws {
        let trainer = GroupTrainer(optimizer: AdamConfig(lr: 3e-3), batchSize: 32, logEvery: 2)
        let s = try sweep(.relu, [1e-3, 1e-2, 1e-1])
        let source = try data()
        try trainer.train(s, source: source, steps: 2, context: .silent)
        let before = s.groups.map(parameters)
        let good = s.groups[1].saes[0].W_dec[0, 0]
        s.groups[1].saes[0].W_dec[0, 0] = .nan   // group 2, layer 0 diverged
        XCTAssertThrowsError(try trainer.train(s, source: source, steps: 3, context: .silent)) {
            let message = "\($0)"
            XCTAssertTrue(message.contains("step 3, sweep group 2, layer 0: non-finite"), message)
            XCTAssertTrue(message.contains("the other 5 SAEs took the step"), message)
        }
        XCTAssertEqual(s.groups.map(\.stepsTrained), [3, 3, 3], "every group counts the step")
        XCTAssertEqual(s.groups[1].saes[0].optimizerSteps, 2, "the failed SAE skipped it")
        let kept = parameters(s.groups[1]), was = before[1]
        XCTAssertTrue(kept[0] == was[0] && kept[1] == was[1] && kept[3] == was[3] && kept[2].dropFirst() == was[2].dropFirst(),
                      "the failed SAE keeps its last good parameters (W_dec[0, 0] aside, the NaN put there)")
        XCTAssertEqual(s.groups[1].saes[1].optimizerSteps, 3, "its group's other layer took it")
        XCTAssertTrue(parameters(s.groups[0]) != before[0], "group 1 took the step")
        // Repaired, the sweep trains on (before, a mismatch of step counts between the groups refused it).
        s.groups[1].saes[0].W_dec[0, 0] = good
        try trainer.train(s, source: source, steps: 1, context: .silent)
        XCTAssertEqual(s.groups.map(\.stepsTrained), [4, 4, 4])
    }

    func testSweepCheckpointResumesExactly() throws {
        let folder = TestPaths.temporaryFolder("sweep-ckpt")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/sweep.ckpt"
        let trainer = GroupTrainer(optimizer: AdamConfig(lr: 3e-3), batchSize: 32, logEvery: 2)
        var rng = RNG(seed: 1)
        let x = rng.normalMatrix(32, 16)
        let fixed = { try InMemoryBatchSource(layers: [x, x], shuffle: false) }
        let straight = try sweep(.jumprelu, [0.1, 1])
        try trainer.train(straight, source: try fixed(), steps: 5, context: .silent)

        var saving = trainer
        saving.checkpointPath = path
        try saving.train(try sweep(.jumprelu, [0.1, 1]), source: try fixed(), steps: 2, context: .silent)
        let (loaded, optimizer) = try Checkpoint.loadSweep(path)
        XCTAssertEqual(optimizer, trainer.optimizer)
        XCTAssertEqual(loaded.values, [0.1, 1])
        XCTAssertEqual(loaded.gridOption, "l0_coefficient")
        XCTAssertEqual(loaded.stepsTrained, 2)
        try trainer.train(loaded, source: try fixed(), steps: 3, context: .silent)
        for g in 0..<2 { XCTAssertEqual(parameters(loaded.groups[g]), parameters(straight.groups[g]), "group \(g)") }
        XCTAssertThrowsMessage(try Checkpoint.load(path), contains: ["holds a sweep"])
    }

    func testSaveLoadRoundTripAndAPlainGroupStillLoadsAsAGroup() throws {
        let folder = TestPaths.temporaryFolder("sweep-save")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let s = try sweep(.topk, [4, 8, 16])
        try GroupTrainer(optimizer: AdamConfig(lr: 3e-3), batchSize: 32, logEvery: 2).train(s, source: try data(), steps: 3, context: .silent)
        let path = folder + "/sweep"
        try SAELensIO.save(s, to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path).sorted(),
                       ["sweep.json", "topk-k-16", "topk-k-4", "topk-k-8"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path + "/topk-k-8").sorted(),
                       ["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"])
        let back = try SAELensIO.loadSweep(path)
        XCTAssertEqual(back.architecture, .topk)
        XCTAssertEqual(back.gridOption, "k")
        XCTAssertEqual(back.values, [4, 8, 16])
        for g in 0..<3 {
            XCTAssertEqual(parameters(back.groups[g]), parameters(s.groups[g]), "group \(g)")
            XCTAssertEqual(back.groups[g].saes.map { $0.config.options["k"] }, [Double(s.values[g]), Double(s.values[g])])
        }
        // Saving again replaces the sweep (the folder is a sweep folder); a group folder still loads as a group.
        try SAELensIO.save(s, to: path)
        XCTAssertFalse(SAELensIO.isSweepFolder(path + "/topk-k-8"))
        XCTAssertEqual(try SAELensIO.load(path + "/topk-k-8").count, 2)
        // A folder of other files is not overwritten.
        let other = folder + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: other + "/notes.txt"))
        XCTAssertThrowsMessage(try SAELensIO.save(s, to: other), contains: ["holds files that are not an SAE folder"])
    }

    /// Rewrites one field of a saved sweep's manifest.
    private func craft(_ path: String, _ edit: (inout [String: Any]) -> Void) throws {
        let file = path + "/sweep.json"
        var manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
        edit(&manifest)
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: file))
    }

    func testCraftedManifestsAreRefusedNamingTheFileAndField() throws {
        let folder = TestPaths.temporaryFolder("sweep-crafted")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let s = try sweep(.relu, [1e-3, 1e-2])
        let cases: [(String, (inout [String: Any]) -> Void, String)] = [
            ("value", { $0["values"] = [0.001, 0.02] }, "groups[1] = 'relu-alpha-0.01' is not the folder of values[1] = 0.02, which is 'relu-alpha-0.02'"),
            ("size", { $0["values"] = [0.001] }, "groups = [\"relu-alpha-0.001\",\"relu-alpha-0.01\"] lists 2 folders for 1 values"),
            ("dup", { $0["values"] = [0.001, 0.001]; $0["groups"] = ["relu-alpha-0.001", "relu-alpha-0.001"] }, "values: the alpha grid holds 0.001 twice"),
            ("option", { $0["grid_option"] = "k" }, "grid_option = 'k' is not relu's sparsity control, alpha"),
            ("kind", { $0["architecture"] = "gated" }, "architecture = 'gated' is not an nsae architecture"),
            ("type", { $0["values"] = ["0.001", 0.01] }, "values[0] = '0.001' is not a finite number"),
            ("empty", { $0["values"] = []; $0["groups"] = [] }, "values = [] must list 1 to 10000 grid values, found 0"),
            ("version", { $0["version"] = 2 }, "version = 2 is not 1"),
        ]
        for (name, edit, message) in cases {
            let path = folder + "/" + name
            try SAELensIO.save(s, to: path)
            try craft(path, edit)
            XCTAssertThrowsMessage(try SAELensIO.loadSweep(path), contains: [path + "/sweep.json"])
            XCTAssertThrowsMessage(try SAELensIO.loadSweep(path), contains: [message])
        }
        // The values and folder names agree, but the SAEs inside hold another alpha.
        let moved = folder + "/moved"
        try SAELensIO.save(s, to: moved)
        try FileManager.default.moveItem(atPath: moved + "/relu-alpha-0.01", toPath: moved + "/relu-alpha-0.5")
        try craft(moved) { $0["values"] = [0.001, 0.5]; $0["groups"] = ["relu-alpha-0.001", "relu-alpha-0.5"] }
        XCTAssertThrowsMessage(try SAELensIO.loadSweep(moved), contains: ["values[1] = 0.5, but the SAE of \(moved)/relu-alpha-0.5 (blocks.0.hook_mlp_out) has alpha = 0.01"])
        // A listed folder that is missing.
        let missing = folder + "/missing"
        try SAELensIO.save(s, to: missing)
        try FileManager.default.removeItem(atPath: missing + "/relu-alpha-0.01")
        XCTAssertThrowsMessage(try SAELensIO.loadSweep(missing), contains: ["groups[1] = 'relu-alpha-0.01' is not a folder"])
    }

    func testGridRefusals() throws {
        XCTAssertThrowsMessage(try sweep(.relu, []), contains: ["the alpha grid is empty"])
        XCTAssertThrowsMessage(try sweep(.relu, [1e-3, 2e-3, 1e-3]), contains: ["the alpha grid holds 0.001 twice (values 1 and 3)"])
        XCTAssertThrowsMessage(try sweep(.relu, [1e-3, -1]), contains: ["alpha = -1 (grid value 2): alpha must be ≥ 0"])
        XCTAssertThrowsMessage(try sweep(.topk, [4, 0]), contains: ["k = 0 (grid value 2): SAE config: k must be a whole number in 1...d_sae (64)"])
        XCTAssertThrowsMessage(try sweep(.topk, [4, 65]), contains: ["k = 65 (grid value 2): SAE config: k must be a whole number in 1...d_sae (64)"])
        XCTAssertThrowsMessage(try sweep(.jumprelu, [-0.5]), contains: ["l0_coefficient = -0.5 (grid value 1): SAE config: l0_coefficient must be ≥ 0"])
        let group = try alone(.relu, option: "alpha", value: 1e-3)
        XCTAssertThrowsMessage(try SAESweep(architecture: .relu, gridOption: "sigma", values: [1e-3], groups: [group]), contains: ["a relu sweep varies alpha, not sigma"])
        XCTAssertThrowsMessage(try SAESweep(architecture: .relu, gridOption: "alpha", values: [1e-2], groups: [group]), contains: ["sweep group 0 has alpha = 0.001, but the grid says 0.01"])
        XCTAssertEqual(SAERegistry.architectures.map(\.sparsityControl.name), ["alpha", "alpha", "k", "l0_coefficient", "k"])
    }
}
