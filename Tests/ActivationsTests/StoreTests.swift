import Foundation
import XCTest
import Tensor
import SAE
@testable import Activations

final class StoreTests: XCTestCase {
    func testF32StoreReopensAndScansExactlyWhatWasWritten() throws {
        let folder = temporaryFolder(self)
        let store = try makeSyntheticStore(at: folder, rows: 200)
        XCTAssertEqual(store.tokenCount, 200)
        XCTAssertEqual(store.shardCount, 6)   // 37-row shards
        XCTAssertTrue(store.manifest.complete)
        var seen = 0
        try store.scan(chunkRows: 29) { chunk in
            let range = chunk.start..<(chunk.start + chunk.rowCount)
            XCTAssertEqual(chunk.activations[0], syntheticRows(hook: 0, rows: range, d: 8))
            XCTAssertEqual(chunk.activations[1], syntheticRows(hook: 1, rows: range, d: 5))
            XCTAssertEqual(chunk.tokenIds, range.map { $0 % 10 == 0 ? endOfTextToken : Int32($0 % 50) })
            XCTAssertEqual(chunk.isBOS, range.map { $0 % 10 == 0 })
            seen += chunk.rowCount
        }
        XCTAssertEqual(seen, 200)
        // Random access across a shard boundary, and the side columns.
        XCTAssertEqual(try store.matrix(hook: 1, rows: 30..<80), syntheticRows(hook: 1, rows: 30..<80, d: 5))
        XCTAssertEqual(try store.row(hook: 0, token: 111), syntheticRows(hook: 0, rows: 111..<112, d: 8).data)
        XCTAssertEqual(try store.documentIndex(95..<105), (95..<105).map { Int32($0 / 100) })
        XCTAssertEqual(try store.positions(95..<105), (95..<105).map { Int32($0 % 100) })
    }

    func testF16StoreRoundsEachValueToHalfPrecision() throws {
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: 120, dtype: .f16)
        XCTAssertEqual(store.dtype, .f16)
        let got = try store.matrix(hook: 0, rows: 0..<120)
        let want = syntheticRows(hook: 0, rows: 0..<120, d: 8)
        XCTAssertEqual(got.data.count, 120 * 8, "zip would hide missing rows")
        for (g, w) in zip(got.data, want.data) {
            XCTAssertEqual(g, Float(Float16(w)))                       // exactly the nearest half
            XCTAssertLessThanOrEqual(abs(g - w), abs(w) * 0x1p-11 + 1e-7) // i.e. within half an ulp of 11 bits
        }
    }

    func testManifestNormStatsMatchBruteForceOverNonBOSRows() throws {
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: 150)
        for h in 0..<2 {
            let m = syntheticRows(hook: h, rows: 0..<150, d: store.dims[h])
            let norms = (0..<150).filter { $0 % 10 != 0 }.map { r in Double((0..<m.cols).map { m[r, $0] * m[r, $0] }.reduce(0, +)).squareRoot() }
            let stats = store.normStats[h]
            XCTAssertEqual(stats.count, 135)
            let mean = norms.reduce(0, +) / Double(norms.count)
            XCTAssertEqual(stats.mean, mean, accuracy: 1e-4 * mean)
            let std = (norms.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(norms.count)).squareRoot()
            XCTAssertEqual(stats.std, std, accuracy: 1e-3 * mean)
            XCTAssertEqual(stats.min, norms.min()!, accuracy: 1e-4)
            XCTAssertEqual(stats.max, norms.max()!, accuracy: 1e-3)
            XCTAssertEqual(stats.histogram.reduce(0, +), 135)
            let recomputed = try store.computeNormStats()[h]
            XCTAssertEqual(recomputed.count, stats.count)
            XCTAssertEqual(recomputed.histogram, stats.histogram)
        }
    }

    func testTruncatedShardIsReportedByName() throws {
        let folder = temporaryFolder(self)
        try makeSyntheticStore(at: folder, rows: 100)
        let shard = folder + "/shard-00001.safetensors"
        let size = try FileManager.default.attributesOfItem(atPath: shard)[.size] as! Int
        let handle = FileHandle(forWritingAtPath: shard)!
        try handle.truncate(atOffset: UInt64(size - 100))
        try handle.close()
        XCTAssertThrowsMessage(try ActivationStore(path: folder), contains: ["shard-00001.safetensors", "truncated"])
    }

    func testManifestDisagreeingWithShardsIsReported() throws {
        let folder = temporaryFolder(self)
        try makeSyntheticStore(at: folder, rows: 100)
        let manifestPath = folder + "/manifest.json"
        let original = try String(contentsOfFile: manifestPath, encoding: .utf8)

        var manifest = try JSONSerialization.jsonObject(with: Data(original.utf8)) as! [String: Any]
        var shards = manifest["shards"] as! [[String: Any]]
        shards[0]["rows"] = 36
        manifest["shards"] = shards
        manifest["token_count"] = 99
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: manifestPath))
        XCTAssertThrowsMessage(try ActivationStore(path: folder),
                               contains: ["manifest says shard shard-00000.safetensors", "[36, 8]", "[37, 8]"])

        manifest = try JSONSerialization.jsonObject(with: Data(original.utf8)) as! [String: Any]
        manifest["token_count"] = 150
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: manifestPath))
        XCTAssertThrowsMessage(try ActivationStore(path: folder), contains: ["token_count 150", "sum 100"])

        try original.write(toFile: manifestPath, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: folder + "/shard-00002.safetensors")
        XCTAssertThrowsMessage(try ActivationStore(path: folder), contains: ["shard-00002.safetensors", "missing"])

        try "{\"format\": \"nsae-activation-store\"}".write(toFile: manifestPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsMessage(try ActivationStore(path: folder), contains: ["manifest.json", "missing field"])
        XCTAssertThrowsMessage(try ActivationStore(path: folder + "-nope"), contains: ["no such folder"])
    }

    func testWritingOverAnExistingStoreNeedsOverwrite() throws {
        let folder = temporaryFolder(self)
        try makeSyntheticStore(at: folder, rows: 20)
        XCTAssertThrowsMessage(try ActivationStoreWriter(folder: folder, model: "m", hooks: [StoreHook(name: "x", layer: 0, d: 2)],
                                                         dtype: .f32, contextLength: 4),
                               contains: ["already exists"])
        let other = temporaryFolder(self, "notes")
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try "x".write(toFile: other + "/notes.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsMessage(try ActivationStoreWriter(folder: other, model: "m", hooks: [StoreHook(name: "x", layer: 0, d: 2)],
                                                         dtype: .f32, contextLength: 4, overwrite: true),
                               contains: ["not an nsae activation store"])
        XCTAssertEqual(try String(contentsOfFile: other + "/notes.txt", encoding: .utf8), "x", "the user's file is untouched")
    }

    func testStoreFromSafetensorsOrdersLayersByNumberAndKeepsTokenIds() throws {
        let source = temporaryFolder(self, "acts.safetensors")
        let a = syntheticRows(hook: 0, rows: 0..<30, d: 4), b = syntheticRows(hook: 1, rows: 0..<30, d: 3)
        let c = syntheticRows(hook: 2, rows: 0..<30, d: 2)
        try SafeTensors.write([TensorToWrite(name: "blocks.10.hook_mlp_out", matrix: a),
                               TensorToWrite(name: "blocks.2.hook_mlp_out", matrix: b),
                               TensorToWrite(name: "blocks.9.hook_mlp_out", matrix: c),
                               TensorToWrite(name: "token_ids", shape: [30], ints: (0..<30).map { Int64($0 == 0 ? 50256 : $0) })],
                              to: source)
        let store = try ActivationStore.write(fromMatrices: source, to: temporaryFolder(self), shardRows: 7)
        XCTAssertEqual(store.hookNames, ["blocks.2.hook_mlp_out", "blocks.9.hook_mlp_out", "blocks.10.hook_mlp_out"])
        XCTAssertEqual(store.hooks.map(\.layer), [2, 9, 10])
        XCTAssertEqual(try store.matrix(hook: 0, rows: 0..<30), b)
        XCTAssertEqual(try store.matrix(hook: 2, rows: 0..<30), a)
        XCTAssertEqual(try store.tokenIds(0..<3), [50256, 1, 2])
        XCTAssertEqual(store.normStats[0].count, 29)
    }

    func testStoreFromNpyHasOneHook() throws {
        let source = temporaryFolder(self, "resid.npy")
        let m = syntheticRows(hook: 0, rows: 0..<12, d: 6)
        try Npy.write(m, to: source)
        let store = try ActivationStore.write(fromMatrices: source, to: temporaryFolder(self), hookName: "blocks.3.hook_resid_pre", dtype: .f16)
        XCTAssertEqual(store.hooks, [StoreHook(name: "blocks.3.hook_resid_pre", layer: 3, d: 6)])
        XCTAssertEqual(try store.matrix(hook: 0, rows: 0..<12).data, m.data.map { Float(Float16($0)) })

        let bad = temporaryFolder(self, "bad.safetensors")
        try SafeTensors.write([TensorToWrite(name: "a", matrix: Matrix(rows: 3, cols: 2)), TensorToWrite(name: "b", matrix: Matrix(rows: 4, cols: 2))], to: bad)
        XCTAssertThrowsMessage(try ActivationStore.write(fromMatrices: bad, to: temporaryFolder(self)),
                               contains: ["'b' has 4 rows", "'a' has 3"])
    }
}

final class SyntheticStoreTests: XCTestCase {
    func testSyntheticStoreHoldsTheGeneratorRowsAndItsGroundTruth() throws {
        let data = try SyntheticData(d: 6, features: 20, active: 3, norms: [1, 4], seed: 11)
        let store = try ActivationStore.writeSynthetic(data, tokens: 300, to: temporaryFolder(self), shardRows: 128)
        let twin = try SyntheticData(d: 6, features: 20, active: 3, norms: [1, 4], seed: 11)
        let want = try twin.nextBatch(rows: 300)
        XCTAssertEqual(store.hookNames, ["synthetic.layer0", "synthetic.layer1"])
        XCTAssertEqual(try store.matrix(hook: 0, rows: 0..<300), want[0])
        XCTAssertEqual(try store.matrix(hook: 1, rows: 0..<300), want[1])
        XCTAssertEqual(try store.groundTruthDictionary(), data.dictionary)
        XCTAssertEqual(store.normStats[1].mean, 4 * store.normStats[0].mean, accuracy: 1e-4 * store.normStats[1].mean)
        XCTAssertEqual(store.normStats[0].count, 300)
        XCTAssertNil(try makeSyntheticStore(at: temporaryFolder(self), rows: 10).groundTruthDictionary())
    }
}
