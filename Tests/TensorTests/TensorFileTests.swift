import Foundation
import XCTest
@testable import Tensor

/// safetensors and .npy: the real fixture, round trips of every dtype, and every bad-file case with its message.
final class TensorFileTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tiny = repoRoot.appendingPathComponent("../shared/data/gpt2-tiny").standardized.path

    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-tensor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    // MARK: the real fixture

    func testReadsEveryTensorOfTheTinyGPT2() throws {
        let file = try SafeTensorsFile(path: Self.tiny + "/model.safetensors")
        XCTAssertEqual(file.tensors.count, 28)
        XCTAssertEqual(try file.info("transformer.wte.weight").shape, [50257, 32])
        XCTAssertEqual(try file.info("transformer.wpe.weight").shape, [64, 32])
        XCTAssertEqual(try file.info("transformer.h.0.attn.c_attn.weight").shape, [32, 96])
        XCTAssertEqual(try file.info("transformer.h.1.mlp.c_fc.weight").shape, [32, 128])
        XCTAssertEqual(try file.info("transformer.h.1.mlp.c_proj.weight").shape, [128, 32])
        XCTAssertEqual(file.names.count, 28, "the loop below checks every tensor")
        for name in file.names {
            let info = try file.info(name)
            XCTAssertEqual(info.dtype, .f32)
            let values = try file.floats(name)
            XCTAssertEqual(values.count, info.elementCount, name)
            XCTAssert(values.allSatisfy(\.isFinite), "\(name) has non-finite values")
        }
        // Random embeddings: values are spread, not a constant fill (a wrong offset would read padding or zeros).
        let wpe = try file.floats("transformer.wpe.weight")
        XCTAssertGreaterThan(Set(wpe).count, 1000)
        let wte = try file.matrix("transformer.wte.weight", shape: [50257, 32])
        XCTAssertEqual(wte.rows, 50257)
        XCTAssertThrowsError(try file.matrix("transformer.wte.weight", shape: [32, 50257])) { error in
            XCTAssert("\(error)".contains("transformer.wte.weight") && "\(error)".contains("expected shape [32, 50257], found [50257, 32]"), "\(error)")
        }
        let ref = try SafeTensorsFile(path: Self.tiny + "/reference.safetensors")
        let ids = try ref.int32s("text0.ids")
        XCTAssertEqual(Array(ids.prefix(3)), [464, 2068, 7586])
    }

    // MARK: round trips

    func testRoundTripOfEveryDType() throws {
        let floats: [Float] = [0, 1, -2.5, 3.140625, 65504, -1e-3, 1e-6, 0.1]
        let ints: [Int64] = [0, 1, -7, 123_456, Int64(Int32.max), Int64(Int32.min), 42, -1]
        try SafeTensors.write([
            TensorToWrite(name: "f32", dtype: .f32, shape: [2, 4], floats: floats),
            TensorToWrite(name: "f16", dtype: .f16, shape: [8], floats: floats),
            TensorToWrite(name: "bf16", dtype: .bf16, shape: [4, 2], floats: floats),
            TensorToWrite(name: "i32", dtype: .i32, shape: [8], ints: ints),
            TensorToWrite(name: "i64", dtype: .i64, shape: [2, 2, 2], ints: ints),
            TensorToWrite(name: "empty", dtype: .f32, shape: [0, 3], floats: []),
        ], to: path("all.safetensors"), metadata: ["format": "pt"])
        let f = try SafeTensorsFile(path: path("all.safetensors"))
        XCTAssertEqual(f.metadata["format"], "pt")
        XCTAssertEqual(try f.floats("f32"), floats)
        XCTAssertEqual(try f.matrix("f32").shape, [2, 4])
        let h = try f.floats("f16")
        XCTAssertEqual(h.count, floats.count, "zip would hide missing values")
        for (a, b) in zip(h, floats) { XCTAssertEqual(a, b, accuracy: max(abs(b) * 1e-3, 1e-7)) }
        XCTAssertEqual(h[4], 65504, "largest finite half survives")
        let bf = try f.floats("bf16")
        XCTAssertEqual(bf.count, floats.count)
        for (a, b) in zip(bf, floats) { XCTAssertEqual(a, b, accuracy: max(abs(b) * 8e-3, 1e-8)) }
        XCTAssertEqual(try f.int32s("i32"), ints.map { Int32($0) })
        XCTAssertEqual(try f.int32s("i64"), ints.map { Int32($0) })
        XCTAssertEqual(try f.info("i64").shape, [2, 2, 2])
        XCTAssertEqual(try f.floats("empty"), [])
        // Partial reads convert only the requested elements.
        var part = [Float](repeating: 0, count: 3)
        try part.withUnsafeMutableBufferPointer { try f.readFloats("f16", elements: 2..<5, into: $0.baseAddress!) }
        XCTAssertEqual(part, Array(h[2..<5]))
        XCTAssertThrowsError(try part.withUnsafeMutableBufferPointer { try f.readFloats("f16", elements: 6..<9, into: $0.baseAddress!) })
    }

    /// F16 through the file format (stored bytes, then read back): IEEE half rounding at the edges.
    func testHalfConversionEdgeCases() throws {
        func roundTrip(_ v: Float) throws -> Float {
            let data = try SafeTensors.encode([TensorToWrite(name: "h", dtype: .f16, shape: [1], floats: [v])])
            let path = NSTemporaryDirectory() + "half-\(UUID().uuidString).safetensors"
            try data.write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            return try SafeTensorsFile(path: path).floats("h")[0]
        }
        for v: Float in [0, -0, 1, -1, 0.5, 2048, 65504, 6.1035156e-05, 5.9604645e-08] {
            XCTAssertEqual(try roundTrip(v), v, "\(v)")
        }
        XCTAssertEqual(try roundTrip(1e6), .infinity)
        XCTAssert(try roundTrip(.nan).isNaN)
        XCTAssertEqual(try roundTrip(1e-9), 0)
        // Above 2048 halves step by 2: the ties 2049 and 2051 round to the even neighbours 2048 and 2052.
        XCTAssertEqual(try roundTrip(2049), 2048)
        XCTAssertEqual(try roundTrip(2051), 2052)
    }

    func testWriteIsAtomicAndLeavesNoTemporaryFiles() throws {
        let target = path("w.safetensors")
        try SafeTensors.write([TensorToWrite(name: "a", vector: [1, 2])], to: target)
        try SafeTensors.write([TensorToWrite(name: "a", vector: [3, 4, 5])], to: target)
        XCTAssertEqual(try SafeTensorsFile(path: target).floats("a"), [3, 4, 5])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    // MARK: bad files

    /// Writes a safetensors file by hand: a JSON header text and a data section of `dataBytes` bytes.
    func handMade(_ name: String, header: String, dataBytes: Int, declaredHeaderLength: UInt64? = nil) -> String {
        var d = Data()
        let h = header.data(using: .utf8)!
        var len = (declaredHeaderLength ?? UInt64(h.count)).littleEndian
        withUnsafeBytes(of: &len) { d.append(contentsOf: $0) }
        d.append(h)
        d.append(Data(count: dataBytes))
        FileManager.default.createFile(atPath: path(name), contents: d)
        return path(name)
    }

    func assertOpenFails(_ p: String, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(path: p), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssert(text.contains(p), "error does not name the file: \(text)", file: file, line: line)
            for part in parts { XCTAssert(text.contains(part), "expected '\(part)' in: \(text)", file: file, line: line) }
        }
    }

    func testTruncatedData() throws {
        try SafeTensors.write([TensorToWrite(name: "weights", matrix: Matrix(rows: 4, cols: 4, repeating: 1))], to: path("t.safetensors"))
        let full = try Data(contentsOf: URL(fileURLWithPath: path("t.safetensors")))
        FileManager.default.createFile(atPath: path("cut.safetensors"), contents: full.prefix(full.count - 10))
        assertOpenFails(path("cut.safetensors"), contains: ["'weights'", "out of range", "truncated"])
    }

    func testHeaderLengthPastTheEnd() {
        let p = handMade("len.safetensors", header: "{}", dataBytes: 0, declaredHeaderLength: 1_000_000)
        assertOpenFails(p, contains: ["header length 1000000"])
        FileManager.default.createFile(atPath: path("tiny.safetensors"), contents: Data([1, 2, 3]))
        assertOpenFails(path("tiny.safetensors"), contains: ["too short"])
    }

    func testOffsetsOverlapping() {
        let p = handMade("ov.safetensors", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, dataBytes: 12)
        assertOpenFails(p, contains: ["'b'", "overlap", "'a'"])
    }

    func testOffsetsOutOfRange() {
        let p = handMade("oor.safetensors", header: #"{"big":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, dataBytes: 8)
        assertOpenFails(p, contains: ["'big'", "out of range"])
        let q = handMade("neg.safetensors", header: #"{"neg":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, dataBytes: 8)
        assertOpenFails(q, contains: ["'neg'", "out of range"])
    }

    func testUnknownDType() {
        let p = handMade("dt.safetensors", header: #"{"q":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, dataBytes: 2)
        assertOpenFails(p, contains: ["'q'", "unknown dtype 'F8_E4M3'"])
    }

    func testShapeByteCountMismatch() {
        let p = handMade("sh.safetensors", header: #"{"m":{"dtype":"F32","shape":[3,3],"data_offsets":[0,32]}}"#, dataBytes: 32)
        assertOpenFails(p, contains: ["'m'", "needs 36 bytes", "span 32"])
    }

    func testInvalidJSONHeader() {
        let p = handMade("js.safetensors", header: #"{"a": [1, 2"#, dataBytes: 0)
        assertOpenFails(p, contains: ["not valid JSON"])
        let q = handMade("arr.safetensors", header: "[1,2]", dataBytes: 0)
        assertOpenFails(q, contains: ["not a JSON object"])
    }

    func testMissingFileAndMissingTensor() throws {
        assertOpenFails(path("nope.safetensors"), contains: ["no such file"])
        try SafeTensors.write([TensorToWrite(name: "x", vector: [1])], to: path("x.safetensors"))
        XCTAssertThrowsError(try SafeTensorsFile(path: path("x.safetensors")).floats("y")) { error in
            XCTAssert("\(error)".contains("'y'") && "\(error)".contains("no such tensor"), "\(error)")
        }
    }

    // MARK: .npy

    func testNpyRoundTripOfEveryDType() throws {
        let m = Matrix(rows: 2, cols: 3, data: [1, -2, 3.5, 0, 100, -7])
        for dtype in [DType.f32, .f16, .i32, .i64] {
            try Npy.write(m, to: path("m.npy"), dtype: dtype)
            let a = try Npy.read(path: path("m.npy"))
            XCTAssertEqual(a.dtype, dtype)
            XCTAssertEqual(a.shape, [2, 3])
            let expected = (dtype == .i32 || dtype == .i64) ? m.data.map { Float(Int($0)) } : m.data
            XCTAssertEqual(a.floats, expected, "\(dtype)")
        }
        try Npy.write(floats: [1, 2, 3], shape: [3], to: path("v.npy"))
        XCTAssertEqual(try Npy.read(path: path("v.npy")).shape, [3])
    }

    func testNpyReadsAFileWrittenByNumpyIfAvailable() throws {
        let script = "import numpy as np; np.save('\(path("np.npy"))', np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5)"
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        proc.arguments = ["python3", "-c", script]
        // Skipped only when numpy is missing; numpy failing on this script is a failure, not a reason to skip.
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import numpy"]
        probe.standardError = FileHandle.nullDevice
        try probe.run(); probe.waitUntilExit()
        try XCTSkipIf(probe.terminationStatus != 0, "numpy is not installed: cannot cross-check .npy against numpy")
        try proc.run(); proc.waitUntilExit()
        XCTAssertEqual(proc.terminationStatus, 0, "numpy could not write the .npy file")
        let a = try Npy.read(path: path("np.npy"))
        XCTAssertEqual(a.shape, [3, 4])
        XCTAssertEqual(a.floats, (0..<12).map { Float($0) * 0.5 })
    }

    func testNpyBadFiles() throws {
        FileManager.default.createFile(atPath: path("bad.npy"), contents: Data("hello world".utf8))
        XCTAssertThrowsError(try Npy.read(path: path("bad.npy"))) { XCTAssert("\($0)".contains("bad magic")) }
        try Npy.write(Matrix(rows: 10, cols: 10), to: path("full.npy"))
        let full = try Data(contentsOf: URL(fileURLWithPath: path("full.npy")))
        FileManager.default.createFile(atPath: path("cut.npy"), contents: full.prefix(full.count - 4))
        XCTAssertThrowsError(try Npy.read(path: path("cut.npy"))) { XCTAssert("\($0)".contains("truncated"), "\($0)") }
        let header = "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }\n"
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count), 0])
        d.append(header.data(using: .utf8)!); d.append(Data(count: 8))
        FileManager.default.createFile(atPath: path("be.npy"), contents: d)
        XCTAssertThrowsError(try Npy.read(path: path("be.npy"))) { XCTAssert("\($0)".contains("unsupported .npy dtype '>f8'"), "\($0)") }
    }
}
