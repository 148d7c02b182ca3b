import Foundation
import XCTest
import Tensor
import SAE
@testable import Activations

/// A store four times larger than a memory budget is written, trained on through the shuffled reader, scanned and
/// top-k'd, and the process's peak RSS must grow by less than the budget. Peak RSS only ever rises, so the work runs
/// in a fresh child process (this test binary, asked to run only `testChildWorkload`), where nothing else has
/// raised it before.
final class MemoryBudgetTests: XCTestCase {
    static let childVariable = "NSAE_ACTIVATIONS_MEMORY_CHILD"
    static let budgetMB = 64
    static let storeMB = 256

    func testLargeStoreTrainsAndScansUnderAMemoryBudget() throws {
        let folder = temporaryFolder(self, "big-store")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["ActivationsTests.MemoryBudgetTests/testChildWorkload"]
        process.environment = ProcessInfo.processInfo.environment.merging([Self.childVariable: folder]) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "child failed:\n\(output.suffix(3000))")
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("MEMORY-BUDGET ") }) else {
            return XCTFail("child printed no result:\n\(output.suffix(3000))")
        }
        let fields = Dictionary(uniqueKeysWithValues: line.dropFirst(14).split(separator: " ").map {
            let kv = $0.split(separator: "="); return (String(kv[0]), Double(kv[1])!)
        })
        XCTAssertGreaterThanOrEqual(fields["store_mb"]!, 4 * Double(Self.budgetMB))
        XCTAssertLessThan(fields["peak_growth_mb"]!, Double(Self.budgetMB), "\(line)")
    }

    func testChildWorkload() throws {
        guard let folder = ProcessInfo.processInfo.environment[Self.childVariable] else {
            throw XCTSkip("runs only as the child process of testLargeStoreTrainsAndScansUnderAMemoryBudget")
        }
        let baseline = ProcessStats.peakRSSBytes()
        let clock = Date()
        func mark(_ what: String) { print("MEMORY-BUDGET-STEP \(what) t=\(Date().timeIntervalSince(clock)) peak_mb=\((ProcessStats.peakRSSBytes() - baseline) >> 20)") }
        let d = 256, rowBytes = 2 * d * 4
        let rows = Self.storeMB << 20 / rowBytes
        let hooks = [StoreHook(name: "blocks.0.hook_resid_pre", layer: 0, d: d), StoreHook(name: "blocks.1.hook_resid_pre", layer: 1, d: d)]
        let writer = try ActivationStoreWriter(folder: folder, model: "synthetic", hooks: hooks, dtype: .f32,
                                               contextLength: 128, shardRows: 2048)
        // One random piece, reused with its first column set to the row index: the content does not matter here,
        // and generating 256 MB of random numbers in a debug build would dominate the test's time.
        var rng = RNG(seed: 7)
        var piece = [rng.normalMatrix(1024, d), rng.normalMatrix(1024, d)]
        for start in stride(from: 0, to: rows, by: 1024) {
            for r in 0..<1024 { piece[0][r, 0] = Float(start + r) }
            let ids = (start..<(start + 1024)).map { $0 % 128 == 0 ? endOfTextToken : Int32($0 % 1000) }
            try writer.append(piece, tokenIds: ids)
        }
        try writer.finish()
        mark("written")
        let store = try ActivationStore(path: folder)
        let storeBytes = store.tokenCount * rowBytes
        let budget = Self.budgetMB << 20

        // Train: the reader's shuffle buffer gets an eighth of the budget; the SAEs and their workspaces take more.
        let reader = try ShuffledBatchReader(store: store, memoryBudgetBytes: budget / 8, chunkRows: 512, seed: 1)
        let group = try SAEGroup.make("relu", dims: [d, d], expansion: 2, alpha: 0.001)
        try GroupTrainer(batchSize: 256, logEvery: 10).train(group, source: reader, steps: 3, context: .silent)
        mark("trained")
        // Then the rest of the epoch, so every chunk of the store has passed through the buffer.
        while try reader.nextBatchInEpoch(rows: 1024) != nil {}
        mark("epoch")
        // Scan and top-k.
        let stats = try store.computeNormStats()
        XCTAssertEqual(stats[0].count, store.normStats[0].count)
        mark("scanned")
        var options = TopActivations.Options()
        options.k = 10
        options.maxTokens = 2048
        let sae = group[0]
        let top = try TopActivations.scan(store: store, hook: 0, sae: sae, options: options)
        XCTAssertEqual(top.count, 2 * d)

        mark("top-k")
        let growth = Double(ProcessStats.peakRSSBytes() - baseline) / Double(1 << 20)
        print("MEMORY-BUDGET store_mb=\(Double(storeBytes) / Double(1 << 20)) budget_mb=\(Self.budgetMB) peak_growth_mb=\(growth)")
    }
}
