import Foundation

/// Element types of safetensors and .npy files.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", i32 = "I32", i64 = "I64"

    public var byteSize: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .i64: return 8
        }
    }
}

/// An error reading or writing a tensor file. The message names the file and, where one is involved, the tensor.
public struct TensorFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let tensor: String?
    public let reason: String

    public init(path: String, tensor: String? = nil, _ reason: String) {
        self.path = path
        self.tensor = tensor
        self.reason = reason
    }

    public var description: String {
        if let tensor { return "\(path): tensor '\(tensor)': \(reason)" }
        return "\(path): \(reason)"
    }
}

/// Metadata of one tensor inside a safetensors file.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let byteRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file opened read-only and memory-mapped: opening reads only the header; tensor bytes are paged in
/// on access, so files larger than RAM can be read piecewise (`readFloats(_:elements:into:)`).
public final class SafeTensorsFile: @unchecked Sendable {
    // @unchecked: immutable after init; the mapped Data is never written.
    public let path: String
    public let tensors: [String: TensorInfo]
    /// Tensor names in file order.
    public let names: [String]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: path) else {
            throw TensorFileError(path: path, "no such file")
        }
        let d: Data
        do { d = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw TensorFileError(path: path, "cannot read: \(error.localizedDescription)")
        }
        data = d
        guard d.count >= 8 else { throw TensorFileError(path: path, "file is \(d.count) bytes, too short for the 8-byte header length") }
        let headerLen = d.withUnsafeBytes { raw -> UInt64 in UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self)) }
        guard headerLen <= UInt64(d.count - 8) else {
            throw TensorFileError(path: path, "header length \(headerLen) runs past the end of the file (\(d.count) bytes)")
        }
        dataStart = 8 + Int(headerLen)
        let headerBytes = d.subdata(in: 8..<dataStart)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerBytes) } catch {
            throw TensorFileError(path: path, "header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw TensorFileError(path: path, "header is not a JSON object") }
        var infos: [String: TensorInfo] = [:]
        var meta: [String: String] = [:]
        let dataSize = d.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                if let m = value as? [String: Any] { for (k, v) in m { meta[k] = "\(v)" } }
                continue
            }
            guard let entry = value as? [String: Any] else { throw TensorFileError(path: path, tensor: name, "entry is not an object") }
            guard let dt = entry["dtype"] as? String else { throw TensorFileError(path: path, tensor: name, "missing dtype") }
            guard let dtype = DType(rawValue: dt) else {
                throw TensorFileError(path: path, tensor: name, "unknown dtype '\(dt)' (supported: F32, F16, BF16, I32, I64)")
            }
            guard let shapeAny = entry["shape"] as? [Any], let shape = Self.ints(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw TensorFileError(path: path, tensor: name, "shape is not a list of non-negative integers")
            }
            guard let offAny = entry["data_offsets"] as? [Any], let offs = Self.ints(offAny), offs.count == 2 else {
                throw TensorFileError(path: path, tensor: name, "data_offsets is not a pair of integers")
            }
            guard offs[0] >= 0, offs[0] <= offs[1], offs[1] <= dataSize else {
                throw TensorFileError(path: path, tensor: name,
                    "data_offsets [\(offs[0]), \(offs[1])] out of range (data section is \(dataSize) bytes; file truncated?)")
            }
            let expected = shape.reduce(1, *) * dtype.byteSize
            guard offs[1] - offs[0] == expected else {
                throw TensorFileError(path: path, tensor: name,
                    "shape \(shape) of \(dtype.rawValue) needs \(expected) bytes but data_offsets span \(offs[1] - offs[0])")
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, byteRange: offs[0]..<offs[1])
        }
        let ordered = infos.values.sorted { ($0.byteRange.lowerBound, $0.name) < ($1.byteRange.lowerBound, $1.name) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.byteRange.lowerBound < a.byteRange.upperBound && !b.byteRange.isEmpty {
            throw TensorFileError(path: path, tensor: b.name, "bytes overlap tensor '\(a.name)'")
        }
        tensors = infos
        names = ordered.map(\.name)
        metadata = meta
    }

    private static func ints(_ a: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in a {
            if let n = v as? Int { out.append(n) }
            else if let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded() { out.append(n.intValue) }
            else { return nil }
        }
        return out
    }

    public func info(_ name: String) throws -> TensorInfo {
        guard let i = tensors[name] else {
            throw TensorFileError(path: path, tensor: name, "no such tensor (file has \(names.count): \(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", …" : ""))")
        }
        return i
    }

    /// Raw bytes of a tensor, valid while `body` runs.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let i = try info(name)
        return try data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[(dataStart + i.byteRange.lowerBound)..<(dataStart + i.byteRange.upperBound)]))
        }
    }

    /// All elements of a tensor converted to Float32.
    public func floats(_ name: String) throws -> [Float] {
        let i = try info(name)
        var out = [Float](repeating: 0, count: i.elementCount)
        try out.withUnsafeMutableBufferPointer { try readFloats(name, elements: 0..<i.elementCount, into: $0.baseAddress!) }
        return out
    }

    /// Elements `elements` (flat, row-major) of a tensor converted to Float32 into `out`.
    public func readFloats(_ name: String, elements: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let i = try info(name)
        guard elements.lowerBound >= 0, elements.upperBound <= i.elementCount else {
            throw TensorFileError(path: path, tensor: name, "element range \(elements) outside 0..<\(i.elementCount)")
        }
        try withRawBytes(name) { raw in
            let base = raw.baseAddress!
            DTypeConversion.toFloat(dtype: i.dtype, src: base + elements.lowerBound * i.dtype.byteSize,
                                    count: elements.count, dst: out)
        }
    }

    /// A 2-D tensor as a Matrix; a 1-D tensor becomes a single row. Higher ranks fold leading axes into rows.
    public func matrix(_ name: String) throws -> Matrix {
        let i = try info(name)
        let cols = i.shape.last ?? 1
        let rows = i.shape.isEmpty ? 1 : i.shape.dropLast().reduce(1, *)
        return Matrix(rows: rows, cols: cols, data: try floats(name))
    }

    /// A tensor checked against an expected shape; the error names the tensor, the expected and the found shape.
    public func matrix(_ name: String, shape: [Int]) throws -> Matrix {
        let i = try info(name)
        guard i.shape == shape else {
            throw TensorFileError(path: path, tensor: name, "expected shape \(shape), found \(i.shape)")
        }
        return try matrix(name)
    }

    /// All elements of an integer (or float) tensor converted to Int32.
    public func int32s(_ name: String) throws -> [Int32] {
        let i = try info(name)
        return try withRawBytes(name) { raw in
            var out = [Int32](repeating: 0, count: i.elementCount)
            switch i.dtype {
            case .i32: for k in 0..<i.elementCount { out[k] = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self)) }
            case .i64:
                for k in 0..<i.elementCount {
                    let v = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self))
                    guard let n = Int32(exactly: v) else { throw TensorFileError(path: path, tensor: name, "value \(v) does not fit Int32") }
                    out[k] = n
                }
            case .f32, .f16, .bf16:
                var f = [Float](repeating: 0, count: i.elementCount)
                f.withUnsafeMutableBufferPointer { DTypeConversion.toFloat(dtype: i.dtype, src: raw.baseAddress!, count: i.elementCount, dst: $0.baseAddress!) }
                for k in 0..<i.elementCount { out[k] = Int32(f[k]) }
            }
            return out
        }
    }
}

/// One tensor to write: a name, a dtype to store as, a shape, and its values (floats or integers).
public struct TensorToWrite: Sendable {
    public enum Values: Sendable { case floats([Float]), ints([Int64]) }
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let values: Values

    public init(name: String, dtype: DType = .f32, shape: [Int], floats: [Float]) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.values = .floats(floats)
    }
    public init(name: String, dtype: DType = .i32, shape: [Int], ints: [Int64]) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.values = .ints(ints)
    }
    public init(name: String, matrix: Matrix, dtype: DType = .f32) {
        self.init(name: name, dtype: dtype, shape: [matrix.rows, matrix.cols], floats: matrix.data)
    }
    public init(name: String, vector: [Float], dtype: DType = .f32) {
        self.init(name: name, dtype: dtype, shape: [vector.count], floats: vector)
    }
}

public enum SafeTensors {
    /// Encodes tensors in safetensors layout (8-byte header length, JSON header, aligned data).
    public static func encode(_ tensors: [TensorToWrite], metadata: [String: String] = [:]) throws -> Data {
        var body = Data()
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        for t in tensors {
            let n = t.shape.reduce(1, *)
            let start = body.count
            switch t.values {
            case .floats(let f):
                guard f.count == n else { throw TensorFileError(path: "<write>", tensor: t.name, "shape \(t.shape) needs \(n) values, got \(f.count)") }
                body.append(DTypeConversion.fromFloat(f, dtype: t.dtype))
            case .ints(let v):
                guard v.count == n else { throw TensorFileError(path: "<write>", tensor: t.name, "shape \(t.shape) needs \(n) values, got \(v.count)") }
                body.append(DTypeConversion.fromInt(v, dtype: t.dtype))
            }
            header[t.name] = ["dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [start, body.count]] as [String: Any]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data section starts 8-byte aligned, as the reference writer does.
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = Data()
        var len = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(body)
        return out
    }

    /// Writes tensors atomically: a temporary file beside the target, then rename.
    public static func write(_ tensors: [TensorToWrite], to path: String, metadata: [String: String] = [:]) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: path)
    }
}

/// Atomic file writes: the bytes go to a temporary file in the same folder, which is then renamed over the target,
/// so a reader never sees a half-written file and an interrupted write leaves the old file intact.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw TensorFileError(path: path, "cannot create folder \(dir.path): \(error.localizedDescription)")
        }
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard FileManager.default.createFile(atPath: tmp.path, contents: data) else {
            throw TensorFileError(path: path, "cannot write temporary file \(tmp.path)")
        }
        if rename(tmp.path, url.path) != 0 {
            let err = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw TensorFileError(path: path, "cannot rename temporary file into place: \(err)")
        }
    }
}
