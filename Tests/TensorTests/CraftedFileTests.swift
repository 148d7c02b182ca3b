import Foundation
import XCTest
@testable import Tensor

/// Files crafted to make a reader compute a wrong size: every one must be an error naming the file, tensor and
/// field, before anything is allocated or read (each was a crash or an out-of-bounds write once).
final class CraftedFileTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-crafted-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    /// A safetensors file whose header text is `json`, followed by `dataBytes` zero bytes.
    func safetensors(_ name: String, header json: String, dataBytes: Int) -> String {
        var d = Data()
        var length = UInt64(json.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { d.append(contentsOf: $0) }
        d.append(Data(json.utf8))
        d.append(Data(count: dataBytes))
        FileManager.default.createFile(atPath: path(name), contents: d)
        return path(name)
    }

    func assertRefused(_ file: String, _ fragments: [String], access: SafeTensorsFile.Access = .mapped,
                       line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(path: file, access: access), line: line) { error in
            let text = "\(error)"
            for f in fragments + [file] { XCTAssertTrue(text.contains(f), "'\(text)' lacks '\(f)'", line: line) }
        }
    }

    func testShapeWhoseProductWrapsIsRefused() {
        // [2^62 + 1, 16] of F32: the product wraps to 64 bytes when computed unchecked.
        let wraps = safetensors("wrap.safetensors", header: #"{"dictionary": {"dtype": "F32", "shape": [4611686018427387905, 16], "data_offsets": [0, 64]}}"#, dataBytes: 64)
        for access in [SafeTensorsFile.Access.mapped, .pread] { assertRefused(wraps, ["dictionary", "too large", "overflows"], access: access) }
        // [2^32, 2^32] wraps to 0 bytes.
        let zero = safetensors("zero.safetensors", header: #"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}}"#, dataBytes: 0)
        assertRefused(zero, ["'w'", "too large"])
    }

    func testShapeEntriesMustBeExactIntegers() {
        let huge = safetensors("huge.safetensors", header: #"{"w": {"dtype": "F32", "shape": [1180591620717411303424, 8], "data_offsets": [0, 0]}}"#, dataBytes: 0)
        assertRefused(huge, ["'w'", "shape entry 0", "not a non-negative integer"])
        let fraction = safetensors("fraction.safetensors", header: #"{"w": {"dtype": "F32", "shape": [2.5, 8], "data_offsets": [0, 80]}}"#, dataBytes: 80)
        assertRefused(fraction, ["shape entry 0", "2.5"])
        let negative = safetensors("negative.safetensors", header: #"{"w": {"dtype": "F32", "shape": [-1, 8], "data_offsets": [0, 0]}}"#, dataBytes: 0)
        assertRefused(negative, ["shape entry 0", "-1"])
        let offsets = safetensors("offsets.safetensors", header: #"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8.5]}}"#, dataBytes: 16)
        assertRefused(offsets, ["data_offsets is not a pair of integers"])
    }

    func testHeaderLengthBeyondTheFormatLimitIsRefused() {
        var d = Data()
        var length = UInt64(1 << 40).littleEndian
        withUnsafeBytes(of: &length) { d.append(contentsOf: $0) }
        d.append(Data(count: 64))
        FileManager.default.createFile(atPath: path("long.safetensors"), contents: d)
        assertRefused(path("long.safetensors"), ["header length", "limit"])
        assertRefused(path("long.safetensors"), ["header length", "limit"], access: .pread)
    }

    func testPreadAccessReadsTheSameValuesAsTheMapping() throws {
        let values = (0..<60).map { Float($0) * 0.25 - 3 }
        try SafeTensors.write([TensorToWrite(name: "a", dtype: .f16, shape: [6, 10], floats: values),
                               TensorToWrite(name: "b", dtype: .f32, shape: [60], floats: values),
                               TensorToWrite(name: "ids", dtype: .i64, shape: [3], ints: [1, 50256, -7])], to: path("p.safetensors"))
        let mapped = try SafeTensorsFile(path: path("p.safetensors"))
        let pread = try SafeTensorsFile(path: path("p.safetensors"), access: .pread)
        for name in ["a", "b"] {
            XCTAssertEqual(try pread.floats(name), try mapped.floats(name))
            var part = [Float](repeating: 0, count: 7)
            try part.withUnsafeMutableBufferPointer { try pread.readFloats(name, elements: 13..<20, into: $0.baseAddress!) }
            XCTAssertEqual(part, Array(values[13..<20]))
        }
        XCTAssertEqual(try pread.int32s("ids"), [1, 50256, -7])
        XCTAssertEqual(try pread.int32s("ids", elements: 1..<3), [50256, -7])
        XCTAssertThrowsError(try pread.int32s("a")) { XCTAssertTrue("\($0)".contains("expected an integer tensor"), "\($0)") }
    }

    /// A .npy file with the given header dictionary text and `dataBytes` zero bytes.
    func npy(_ name: String, header: String, dataBytes: Int) -> String {
        var text = header
        while (10 + text.utf8.count + 1) % 64 != 0 { text += " " }
        text += "\n"
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)])
        d.append(Data(text.utf8))
        d.append(Data(count: dataBytes))
        FileManager.default.createFile(atPath: path(name), contents: d)
        return path(name)
    }

    func testNpyShapesThatWereCrashesAreErrors() {
        let cases: [(String, [String])] = [
            ("(-1, 8)", ["shape entry 0", "'-1'"]),
            ("(4611686018427387904, 8)", ["too large"]),
            ("(1180591620717411303424, 8)", ["shape entry 0", "not a non-negative integer"]),
            ("(2, x)", ["shape entry 1", "'x'"]),
            ("(1000, 8)", ["truncated"]),
        ]
        for (i, (shape, fragments)) in cases.enumerated() {
            let file = npy("c\(i).npy", header: "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }", dataBytes: 64)
            for read in [{ _ = try Npy.read(path: file) }, { _ = try Npy.Reader(path: file) }] {
                XCTAssertThrowsError(try read()) { error in
                    for f in fragments + [file] { XCTAssertTrue("\(error)".contains(f), "\(shape): '\(error)' lacks '\(f)'") }
                }
            }
        }
    }

    func testNpyReaderReadsRangesInPlace() throws {
        let m = Matrix(rows: 5, cols: 4, data: (0..<20).map { Float($0) })
        try Npy.write(m, to: path("m.npy"), dtype: .f16)
        let reader = try Npy.Reader(path: path("m.npy"))
        XCTAssertEqual(reader.header.shape, [5, 4])
        var out = [Float](repeating: 0, count: 8)
        try out.withUnsafeMutableBufferPointer { try reader.readFloats(elements: 4..<12, into: $0.baseAddress!) }
        XCTAssertEqual(out, (4..<12).map { Float($0) })
        XCTAssertThrowsError(try out.withUnsafeMutableBufferPointer { try reader.readFloats(elements: 16..<24, into: $0.baseAddress!) })
    }

    func testExactIntegersFromJSON() throws {
        let parsed = try JSONSerialization.jsonObject(with: Data("[16, 16.7, 1e30, 1180591620717411303424, 9007199254740993, -3, 16.0]".utf8)) as! [Any]
        XCTAssertEqual(parsed.map { CheckedSize.exactInt($0) }, [16, nil, nil, nil, 9007199254740993, -3, 16])
        XCTAssertNil(CheckedSize.product([1 << 40, 1 << 40]))
        XCTAssertEqual(CheckedSize.product([3, 0, 1 << 62]), 0)
    }

    func testBudgetsNameTheRequestAndBothFigures() {
        XCTAssertThrowsError(try ResourceBudget.checkMemory(1 << 62, for: "a test matrix")) { error in
            XCTAssertTrue("\(error)".contains("a test matrix needs 4.6 EB of memory"), "\(error)")
            XCTAssertTrue("\(error)".contains("available"), "\(error)")
        }
        XCTAssertNoThrow(try ResourceBudget.checkMemory(1 << 20, for: "a small matrix"))
        XCTAssertThrowsError(try ResourceBudget.checkDisk(1 << 62, at: tmp.path + "/new/store", for: "a store")) { error in
            XCTAssertTrue("\(error)".contains("free"), "\(error)")
        }
        XCTAssertThrowsError(try ResourceBudget.bytes([1 << 40, 1 << 40], bytesEach: 4, what: "tokens=1e24")) { error in
            XCTAssertTrue("\(error)".contains("tokens=1e24"), "\(error)")
        }
    }

    func testPathComponentsFromDataStayInTheirFolder() {
        for bad in ["..", ".", "", "a/b", "../../etc", "x\0y"] { XCTAssertFalse(PathComponent.isSafe(bad), bad) }
        XCTAssertTrue(PathComponent.isSafe("blocks.5.hook_mlp_out"))
        for name in ["..", ".", "", "a/b", "../../etc/cfg.json", ".hidden"] {
            let safe = PathComponent.sanitized(name)
            XCTAssertTrue(PathComponent.isSafe(safe) && !safe.hasPrefix("."), "\(name) → \(safe)")
        }
        XCTAssertEqual(PathComponent.sanitized("blocks.5.hook_mlp_out"), "blocks.5.hook_mlp_out")
    }

    func testFolderSwapLeavesOldOrNewNeverAMix() throws {
        let target = path("group")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try "old".write(toFile: target + "/a.txt", atomically: true, encoding: .utf8)
        try "old".write(toFile: target + "/only-old.txt", atomically: true, encoding: .utf8)
        let staging = try AtomicDirectory.makeStagingSibling(of: target)
        XCTAssertTrue(URL(fileURLWithPath: staging).lastPathComponent.hasPrefix(".group.partial-"))
        try "new".write(toFile: staging + "/a.txt", atomically: true, encoding: .utf8)
        // Until the swap the old folder is untouched.
        XCTAssertEqual(try String(contentsOfFile: target + "/a.txt", encoding: .utf8), "old")
        try AtomicDirectory.swapIn(staging, at: target)
        XCTAssertEqual(try String(contentsOfFile: target + "/a.txt", encoding: .utf8), "new")
        XCTAssertFalse(FileManager.default.fileExists(atPath: target + "/only-old.txt"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: staging))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), ["group"])
        // Into a place that does not exist yet.
        let fresh = try AtomicDirectory.makeStagingSibling(of: path("fresh"))
        try AtomicDirectory.swapIn(fresh, at: path("fresh"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("fresh")))
    }
}
