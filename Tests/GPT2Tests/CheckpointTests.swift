import Foundation
import XCTest
@testable import GPT2
import Tensor

/// Loading both checkpoint formats, and the errors for broken ones.
final class CheckpointTests: XCTestCase {
    func testTinyFolderLoads() throws {
        let model = try Fixtures.tinyModel()
        XCTAssertEqual(model.config, GPT2Config(nLayer: 2, nHead: 4, nEmbd: 32, nPositions: 64))
        XCTAssertEqual(model.name, "gpt2-tiny")
        XCTAssertEqual(model.tokenizer?.vocabSize, 50257)
    }

    /// The tiny model written in llm.c's version-3 layout (grouped by kind, [out, in], padded vocabulary) loads
    /// back to the same logits as the reference.
    func testLLMCCheckpointGivesSameLogits() throws {
        let model = try Fixtures.tinyModel()
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/gpt2_tiny.bin"
        try model.writeLLMC(to: path)
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        // 1024 header + 4·(Vp·C + maxT·C + L·12C² + L·13C + 2C) with Vp = 50304.
        let (C, L, Vp, maxT) = (32, 2, 50304, 64)
        XCTAssertEqual(attrs[.size] as? Int, 1024 + 4 * (Vp * C + maxT * C + L * (12 * C * C + 13 * C) + 2 * C))
        let loaded = try GPT2Model.load(path: path, tokenizerPath: Fixtures.tokenizerFolder)
        XCTAssertEqual(loaded.config, model.config)
        XCTAssertEqual(loaded.name, "gpt2_tiny")
        XCTAssertNotNil(loaded.tokenizer)
        let ref = try Fixtures.referenceFile()
        let ids = Fixtures.reference[2].ids
        let logits = try XCTUnwrap(try loaded.forward(tokens: ids, batch: 1, seqLen: ids.count).logits)
        XCTAssertLessThan(Fixtures.maxAbsDiff(logits.data, try ref.floats("text2.logits")), 1e-4)
        // Spot-check the layout itself: the first qkv weight row in [out, in] is column 0 of HF's [in, out].
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let qkvStart = 1024 + 4 * (Vp * C + maxT * C + 2 * L * C)
        let first = data.withUnsafeBytes { raw in (0..<C).map { raw.loadUnaligned(fromByteOffset: qkvStart + 4 * $0, as: Float.self) } }
        XCTAssertEqual(first, (0..<C).map { model.weights.blocks[0].attnQKV[$0, 0] })
    }

    /// Hub-style keys (no `transformer.` prefix) with the `attn.bias` mask buffers, stored as F16 and BF16.
    func testUnprefixedHalfPrecisionFolderLoads() throws {
        let src = try SafeTensorsFile(path: Fixtures.tiny + "/model.safetensors")
        for dtype in [DType.f16, .bf16] {
            let dir = try makeFolder { tensors in
                var out = tensors.map { t in
                    RawTensor(name: String(t.name.dropFirst("transformer.".count)), dtype: dtype.rawValue, shape: t.shape,
                              bytes: DTypeConversion.fromFloat(try! src.floats(t.name), dtype: dtype))
                }
                out.append(RawTensor(name: "h.0.attn.bias", dtype: "F32", shape: [1, 1, 64, 64], bytes: Data(count: 4 * 64 * 64)))
                return out
            }
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let model = try GPT2Model.load(path: dir)
            let ids = Fixtures.reference[0].ids
            let logits = try XCTUnwrap(try model.forward(tokens: ids, batch: 1, seqLen: ids.count).logits)
            // Rounding the weights to 16 bits moves logits a little, not a lot.
            XCTAssertLessThan(Fixtures.maxAbsDiff(logits.data, try Fixtures.referenceFile().floats("text0.logits")), dtype == .f16 ? 2e-3 : 2e-2)
        }
    }

    func testBrokenCheckpointsGiveClearErrors() throws {
        func expect(_ fragment: String, config: ((inout [String: Any]) -> Void)? = nil,
                    _ edit: @escaping ([RawTensor]) -> [RawTensor]) throws {
            let dir = try makeFolder(config: config, edit)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            XCTAssertThrowsError(try GPT2Model.load(path: dir)) { XCTAssertTrue("\($0)".contains(fragment), "'\($0)' lacks '\(fragment)'") }
        }
        try expect("missing key 'transformer.h.1.mlp.c_fc.bias' (expected shape [128])") { $0.filter { $0.name != "transformer.h.1.mlp.c_fc.bias" } }
        try expect("'transformer.h.0.attn.c_proj.weight' has shape [32, 31], expected [32, 32]") { tensors in
            tensors.map { $0.name == "transformer.h.0.attn.c_proj.weight" ? RawTensor(name: $0.name, dtype: "F32", shape: [32, 31], bytes: Data(count: 4 * 32 * 31)) : $0 }
        }
        try expect("weights have layer h.1 but config n_layer is 1", config: { $0["n_layer"] = 1 }) { $0 }
        try expect("missing key 'transformer.h.2.ln_1.weight'", config: { $0["n_layer"] = 3 }) { $0 }
        try expect("'transformer.wte.weight' has shape [50257, 32], expected [50257, 64]", config: { $0["n_embd"] = 64 }) { $0 }
        try expect("n_embd 32 is not a multiple of n_head 5", config: { $0["n_head"] = 5 }) { $0 }
    }

    func testTruncatedCheckpointsGiveClearErrors() throws {
        let dir = try makeFolder { $0 }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors"))
        try full.prefix(full.count - 1000).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        XCTAssertThrowsError(try GPT2Model.load(path: dir)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        let bin = dir + "/tiny.bin"
        try Fixtures.tinyModel().writeLLMC(to: bin)
        let binData = try Data(contentsOf: URL(fileURLWithPath: bin))
        try binData.prefix(binData.count - 4).write(to: URL(fileURLWithPath: bin))
        XCTAssertThrowsError(try GPT2Model.load(path: bin)) { XCTAssertTrue("\($0)".contains("expected \(binData.count) for L=2 C=32 maxT=64 Vp=50304 (truncated)"), "\($0)") }
        var bf16 = binData
        bf16[4] = 5  // version 5 = llm.c's bf16 layout
        try bf16.write(to: URL(fileURLWithPath: bin))
        XCTAssertThrowsError(try GPT2Model.load(path: bin)) { XCTAssertTrue("\($0)".contains("llm.c version 5 is not supported"), "\($0)") }
        XCTAssertThrowsError(try GPT2Model.load(path: dir + "/nothing")) { XCTAssertTrue("\($0)".contains("no such file or folder"), "\($0)") }
    }

    func testRandomModelHasRequestedShapes() throws {
        let cfg = GPT2Config(nLayer: 3, nHead: 2, nEmbd: 16, nPositions: 8, vocabSize: 100)
        let model = try GPT2Model.random(config: cfg, seed: 1)
        let out = try model.forward(tokens: [1, 2, 3, 99], batch: 2, seqLen: 2, captures: ["blocks.2.hook_resid_post"])
        XCTAssertEqual(out.logits?.shape, [4, 100])
        XCTAssertEqual(out.captures["blocks.2.hook_resid_post"]?.shape, [4, 16])
        XCTAssertTrue(out.logits!.data.allSatisfy(\.isFinite))
    }

    /// One tensor as stored: its bytes are copied, not converted, so building test folders stays quick.
    struct RawTensor { var name: String; var dtype: String; var shape: [Int]; var bytes: Data }

    /// A copy of the tiny folder with its tensors (and optionally config) edited.
    private func makeFolder(config: ((inout [String: Any]) -> Void)? = nil, _ edit: ([RawTensor]) -> [RawTensor]) throws -> String {
        let dir = try Fixtures.tempDir()
        let src = try SafeTensorsFile(path: Fixtures.tiny + "/model.safetensors")
        let tensors = try src.names.map { name in
            RawTensor(name: name, dtype: src.tensors[name]!.dtype.rawValue, shape: src.tensors[name]!.shape,
                      bytes: try src.withRawBytes(name) { Data($0) })
        }
        var header: [String: Any] = [:]
        var body = Data()
        for t in edit(tensors) {
            header[t.name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [body.count, body.count + t.bytes.count]] as [String: Any]
            body.append(t.bytes)
        }
        let json = try JSONSerialization.data(withJSONObject: header)
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json); file.append(body)
        try file.write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.tiny + "/config.json"))) as! [String: Any]
        config?(&cfg)
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: dir + "/config.json"))
        return dir
    }
}
