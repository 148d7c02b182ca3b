import Foundation
import Tensor
import XCTest
@testable import Activations

/// Manifests and files crafted (or damaged) to make a store reader misbehave: each is an error at open that names
/// the store and the field, never a crash or a read outside the store.
final class CraftedStoreTests: XCTestCase {
    func edit(_ folder: String, _ change: (inout [String: Any]) -> Void) throws {
        let path = folder + "/manifest.json"
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        change(&manifest)
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: path))
    }

    func testManifestFieldsThatWereCrashes() throws {
        let folder = temporaryFolder(self)
        try makeSyntheticStore(at: folder, rows: 100)
        let original = try String(contentsOfFile: folder + "/manifest.json", encoding: .utf8)
        let cases: [((inout [String: Any]) -> Void, [String])] = [
            ({ $0["hooks"] = []; $0["norm_stats"] = [] }, ["lists no hooks"]),
            ({ m in var s = m["shards"] as! [[String: Any]]; s[0]["rows"] = 4611686018427387904; s[1]["rows"] = 4611686018427387904; m["shards"] = s },
             ["overflow"]),
            ({ m in var s = m["shards"] as! [[String: Any]]; s[0]["file"] = "../../outside.safetensors"; m["shards"] = s },
             ["shards[0]", "plain file name"]),
            ({ m in var h = m["hooks"] as! [[String: Any]]; h[0]["d"] = 0; m["hooks"] = h }, ["hooks[0]", "d = 0"]),
            ({ m in var h = m["hooks"] as! [[String: Any]]; h[0]["d"] = 16.7; m["hooks"] = h }, ["manifest.json", "hooks"]),
            ({ $0["context_length"] = -4 }, ["context_length -4"]),
        ]
        for (change, fragments) in cases {
            try original.write(toFile: folder + "/manifest.json", atomically: true, encoding: .utf8)
            try edit(folder, change)
            XCTAssertThrowsMessage(try ActivationStore(path: folder), contains: [folder] + fragments)
        }
    }

    func testGroundTruthWhoseShapeWrapsIsRefused() throws {
        let folder = temporaryFolder(self)
        try makeSyntheticStore(at: folder, rows: 20, dims: [16])
        let json = #"{"dictionary": {"dtype": "F32", "shape": [4611686018427387905, 16], "data_offsets": [0, 64]}}"#
        var d = Data()
        var length = UInt64(json.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { d.append(contentsOf: $0) }
        d.append(Data(json.utf8)); d.append(Data(count: 64))
        try d.write(to: URL(fileURLWithPath: folder + "/" + ActivationStore.groundTruthFile))
        let store = try ActivationStore(path: folder)
        XCTAssertThrowsMessage(try store.groundTruthDictionary(), contains: ["ground_truth.safetensors", "too large"])
    }

    func testNonFiniteActivationsAreRefusedBeforeAnyShardIsWritten() throws {
        let folder = temporaryFolder(self)
        let writer = try ActivationStoreWriter(folder: folder, model: "m", hooks: [StoreHook(name: "h", layer: 0, d: 3)],
                                               dtype: .f32, contextLength: 0, shardRows: 4)
        var values = [Float](repeating: 1, count: 12)
        values[7] = .infinity
        XCTAssertThrowsMessage(try writer.append([Matrix(rows: 4, cols: 3, data: values)], tokenIds: [-1, -1, -1, -1]),
                               contains: ["hook 'h'", "row 2", "NaN or infinity"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder), "nothing at the destination until finish()")
    }

    func testInPlaceSafetensorsActivationsKeepTheirTokens() throws {
        let dir = temporaryFolder(self, "files")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/acts.safetensors"
        let rows = 30
        let a = (0..<(rows * 4)).map { Float($0) / 7 }
        let b = (0..<(rows * 2)).map { -Float($0) }
        try SafeTensors.write([TensorToWrite(name: "blocks.3.hook_mlp_out", dtype: .bf16, shape: [rows, 2], floats: b),
                               TensorToWrite(name: "blocks.1.hook_mlp_out", dtype: .bf16, shape: [rows, 4], floats: a),
                               TensorToWrite(name: "token_ids", dtype: .i64, shape: [rows], ints: (0..<rows).map { $0 % 10 == 0 ? 50256 : Int64($0) })],
                              to: path)
        let store = try ActivationStore.openInPlace(path)
        XCTAssertEqual(store.hooks.map(\.layer), [1, 3])
        XCTAssertEqual(store.dtype, .bf16)
        XCTAssertEqual(try store.tokenIds(9..<12), [9, 50256, 11])
        XCTAssertEqual(try store.bosMask(9..<12), [false, true, false])
        let expected = a.map { Float(bitPattern: UInt32(DTypeConversion.floatToBF16($0)) << 16) }
        XCTAssertEqual(try store.matrix(hook: 0, rows: 5..<8).data, Array(expected[20..<32]))
        XCTAssertEqual(store.normStats[0].count, 27, "BOS rows are left out of the statistics")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["acts.safetensors"])
    }
}
