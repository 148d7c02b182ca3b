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
    /// The product of `shape`, checked against overflow when the header was read.
    public let elementCount: Int
}

/// Checked size arithmetic for sizes read from files and commands: a product or sum that does not fit an `Int`
/// is an error naming what was being sized, never a wrapped number.
public enum CheckedSize {
    /// The product of `factors`, or nil if it overflows or a factor is negative.
    public static func product(_ factors: [Int]) -> Int? {
        var n = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            n = p
        }
        return n
    }

    /// `a · b`, or nil on overflow or a negative operand.
    public static func product(_ a: Int, _ b: Int) -> Int? { product([a, b]) }

    /// An integer from a JSON number, only if it is exactly an integer that fits `Int` (2^70, 16.7 or 1e30 are not).
    /// Foundation's JSON numbers print their exact decimal digits, so the text decides, not a lossy Double.
    public static func exactInt(_ value: Any) -> Int? {
        if let i = value as? Int, !(value is NSNumber) { return i }
        guard let n = value as? NSNumber else { return nil }
        if let i = Int(n.stringValue) { return i }
        let d = n.doubleValue
        guard d.isFinite, d == d.rounded(), abs(d) < 9.0e15 else { return nil }
        return Int(exactly: d)
    }
}

/// The header of a safetensors file (8-byte little-endian length, JSON object, data section), parsed once with every
/// size checked: shapes are non-negative integers whose product and byte count fit, offsets lie in the data section,
/// byte counts match shapes, tensors do not overlap. Both readers below use it; nothing else parses safetensors.
public struct SafeTensorsHeader: Sendable {
    /// The safetensors format's own limit on the JSON header (100 MB).
    public static let maximumHeaderBytes = 100_000_000

    public let tensors: [String: TensorInfo]
    /// Tensor names in file order.
    public let names: [String]
    public let metadata: [String: String]
    /// Offset of the data section from the start of the file.
    public let dataStart: Int

    /// Parses a header given its 8 length bytes, a way to read the JSON bytes, and the file size.
    init(path: String, fileSize: Int, lengthBytes: UInt64, readJSON: (Int, Int) throws -> Data) throws {
        guard fileSize >= 8 else {
            throw TensorFileError(path: path, "file is \(fileSize) bytes, too short for the 8-byte header length (truncated?)")
        }
        guard lengthBytes <= UInt64(Self.maximumHeaderBytes) else {
            throw TensorFileError(path: path, "header length \(lengthBytes) is over the safetensors limit of \(Self.maximumHeaderBytes) bytes (not a safetensors file?)")
        }
        let headerLength = Int(lengthBytes)
        guard headerLength <= fileSize - 8 else {
            throw TensorFileError(path: path, "header length \(headerLength) runs past the end of the file (\(fileSize) bytes; truncated?)")
        }
        dataStart = 8 + headerLength
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: try readJSON(8, headerLength)) } catch let e as TensorFileError {
            throw e
        } catch {
            throw TensorFileError(path: path, "header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw TensorFileError(path: path, "header is not a JSON object") }
        var infos: [String: TensorInfo] = [:]
        var meta: [String: String] = [:]
        let dataSize = fileSize - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw TensorFileError(path: path, "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let text = v as? String else { throw TensorFileError(path: path, "__metadata__ field '\(k)' is not a string") }
                    meta[k] = text
                }
                continue
            }
            infos[name] = try Self.entry(name: name, value: value, dataSize: dataSize, path: path)
        }
        let ordered = infos.values.sorted { ($0.byteRange.lowerBound, $0.name) < ($1.byteRange.lowerBound, $1.name) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.byteRange.lowerBound < a.byteRange.upperBound && !b.byteRange.isEmpty {
            throw TensorFileError(path: path, tensor: b.name, "bytes overlap tensor '\(a.name)'")
        }
        tensors = infos
        names = ordered.map(\.name)
        metadata = meta
    }

    private static func entry(name: String, value: Any, dataSize: Int, path: String) throws -> TensorInfo {
        guard let entry = value as? [String: Any] else { throw TensorFileError(path: path, tensor: name, "entry is not an object") }
        guard let dt = entry["dtype"] as? String else { throw TensorFileError(path: path, tensor: name, "missing dtype") }
        guard let dtype = DType(rawValue: dt) else {
            throw TensorFileError(path: path, tensor: name, "unknown dtype '\(dt)' (supported: F32, F16, BF16, I32, I64)")
        }
        guard let shapeAny = entry["shape"] as? [Any] else { throw TensorFileError(path: path, tensor: name, "shape is not a list") }
        var shape: [Int] = []
        for (axis, v) in shapeAny.enumerated() {
            guard let n = CheckedSize.exactInt(v), n >= 0 else {
                throw TensorFileError(path: path, tensor: name, "shape entry \(axis) is \(v), not a non-negative integer that fits 64 bits")
            }
            shape.append(n)
        }
        guard let count = CheckedSize.product(shape), let bytes = CheckedSize.product(count, dtype.byteSize) else {
            throw TensorFileError(path: path, tensor: name, "shape \(shape) of \(dtype.rawValue) is too large: its byte count overflows 64 bits")
        }
        guard let offAny = entry["data_offsets"] as? [Any], offAny.count == 2,
              let lo = CheckedSize.exactInt(offAny[0]), let hi = CheckedSize.exactInt(offAny[1]) else {
            throw TensorFileError(path: path, tensor: name, "data_offsets is not a pair of integers")
        }
        guard lo >= 0, lo <= hi, hi <= dataSize else {
            throw TensorFileError(path: path, tensor: name,
                "data_offsets [\(lo), \(hi)] out of range (data section is \(dataSize) bytes; file truncated?)")
        }
        guard hi - lo == bytes else {
            throw TensorFileError(path: path, tensor: name,
                "shape \(shape) of \(dtype.rawValue) needs \(bytes) bytes but data_offsets span \(hi - lo)")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, byteRange: lo..<hi, elementCount: count)
    }
}

/// A safetensors file opened read-only. Opening reads only the header; tensor bytes are read on access, so files
/// larger than RAM can be read piecewise (`readFloats(_:elements:into:)`).
///
/// Two ways to reach the bytes. `.mapped` (the default) maps the file: the cheapest for weights read once. `.pread`
/// reads the asked-for range into the caller's buffer: pages of a mapping count towards the process's resident set
/// for as long as the mapping lives, so a reader walking a large activation shard would hold all of it in RSS;
/// reading rows into a bounded buffer keeps the memory budget a property of the reader, not of the file size (the
/// kernel's page cache still makes rereads cheap).
public final class SafeTensorsFile: @unchecked Sendable {
    // @unchecked: immutable after init; the mapped Data is never written and pread needs no lock.
    public enum Access: Sendable { case mapped, pread }

    public let path: String
    public let header: SafeTensorsHeader
    public var tensors: [String: TensorInfo] { header.tensors }
    /// Tensor names in file order.
    public var names: [String] { header.names }
    public var metadata: [String: String] { header.metadata }
    private let mapped: Data?
    private let fd: Int32

    public init(path: String, access: Access = .mapped) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw TensorFileError(path: path, "no such file") }
        guard !isDir.boolValue else { throw TensorFileError(path: path, "is a folder, not a safetensors file") }
        switch access {
        case .mapped:
            let d: Data
            do { d = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
                throw TensorFileError(path: path, "cannot read: \(error.localizedDescription)")
            }
            mapped = d
            fd = -1
            let length = d.count >= 8 ? d.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) } : 0
            header = try SafeTensorsHeader(path: path, fileSize: d.count, lengthBytes: length) { d.subdata(in: $0..<($0 + $1)) }
        case .pread:
            let descriptor = open(path, O_RDONLY)
            guard descriptor >= 0 else { throw TensorFileError(path: path, "cannot open: \(String(cString: strerror(errno)))") }
            mapped = nil
            fd = descriptor
            do {
                var st = stat()
                guard fstat(descriptor, &st) == 0 else { throw TensorFileError(path: path, "cannot stat") }
                let size = Int(st.st_size)
                var length: UInt64 = 0
                if size >= 8 { try Self.preadAll(fd: descriptor, &length, count: 8, offset: 0, path: path) }
                header = try SafeTensorsHeader(path: path, fileSize: size, lengthBytes: UInt64(littleEndian: length)) { offset, count in
                    var bytes = Data(count: count)
                    try bytes.withUnsafeMutableBytes { try Self.preadAll(fd: descriptor, $0.baseAddress!, count: count, offset: offset, path: path) }
                    return bytes
                }
            } catch {
                close(descriptor)
                throw error
            }
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    static func preadAll(fd: Int32, _ dst: UnsafeMutableRawPointer, count: Int, offset: Int, path: String) throws {
        try PositionalRead.readAll(fd: fd, dst, count: count, offset: offset, path: path)
    }

    public func info(_ name: String) throws -> TensorInfo {
        guard let i = tensors[name] else {
            throw TensorFileError(path: path, tensor: name, "no such tensor (file has \(names.count): \(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", …" : ""))")
        }
        return i
    }

    /// Raw bytes of elements `elements` of a tensor, valid while `body` runs (a view of the mapping, or a buffer read
    /// for the call).
    public func withRawBytes<R>(_ name: String, elements: Range<Int>? = nil, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let i = try info(name)
        let range = elements ?? 0..<i.elementCount
        guard range.lowerBound >= 0, range.upperBound <= i.elementCount else {
            throw TensorFileError(path: path, tensor: name, "element range \(range) outside 0..<\(i.elementCount)")
        }
        // In bounds of a checked tensor, so neither product can overflow.
        let start = header.dataStart + i.byteRange.lowerBound + range.lowerBound * i.dtype.byteSize
        let count = range.count * i.dtype.byteSize
        if let mapped {
            return try mapped.withUnsafeBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw[start..<(start + count)])) }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        defer { buffer.deallocate() }
        if count > 0 { try Self.preadAll(fd: fd, buffer.baseAddress!, count: count, offset: start, path: path) }
        return try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
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
        let dtype = try info(name).dtype
        if dtype == .f32, mapped == nil, !elements.isEmpty, elements.lowerBound >= 0, elements.upperBound <= tensors[name]!.elementCount {
            // Straight into the caller's buffer: the bytes are little-endian floats already.
            let i = tensors[name]!
            try Self.preadAll(fd: fd, out, count: elements.count * 4,
                              offset: header.dataStart + i.byteRange.lowerBound + elements.lowerBound * 4, path: path)
            return
        }
        try withRawBytes(name, elements: elements) { raw in
            guard let base = raw.baseAddress else { return }
            DTypeConversion.toFloat(dtype: dtype, src: base, count: elements.count, dst: out)
        }
    }

    /// A 2-D tensor as a Matrix; a 1-D tensor becomes a single row. Higher ranks fold leading axes into rows.
    public func matrix(_ name: String) throws -> Matrix {
        let i = try info(name)
        let cols = i.shape.last ?? 1
        let rows = cols == 0 ? 0 : i.elementCount / cols
        return Matrix(rows: i.shape.isEmpty ? 1 : rows, cols: cols, data: try floats(name))
    }

    /// A tensor checked against an expected shape; the error names the tensor, the expected and the found shape.
    public func matrix(_ name: String, shape: [Int]) throws -> Matrix {
        let i = try info(name)
        guard i.shape == shape else {
            throw TensorFileError(path: path, tensor: name, "expected shape \(shape), found \(i.shape)")
        }
        return try matrix(name)
    }

    /// Elements `elements` (all by default) of an integer tensor as Int32; a value that does not fit, or a float
    /// tensor, is an error naming the tensor.
    public func int32s(_ name: String, elements: Range<Int>? = nil) throws -> [Int32] {
        let i = try info(name)
        return try withRawBytes(name, elements: elements) { raw in
            switch i.dtype {
            case .i32:
                return (0..<(raw.count / 4)).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case .i64:
                return try (0..<(raw.count / 8)).map { k in
                    let v = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self))
                    guard let n = Int32(exactly: v) else { throw TensorFileError(path: path, tensor: name, "value \(v) does not fit Int32") }
                    return n
                }
            case .f32, .f16, .bf16:
                throw TensorFileError(path: path, tensor: name, "is \(i.dtype.rawValue); expected an integer tensor (I32 or I64)")
            }
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
    /// One tensor of a file being encoded: its name, stored dtype and shape, and a closure that writes exactly its
    /// bytes (elementCount · dtype.byteSize, little-endian) at the pointer it is given.
    public struct Entry {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let fill: (UnsafeMutableRawPointer) throws -> Void
        public init(name: String, dtype: DType, shape: [Int], fill: @escaping (UnsafeMutableRawPointer) throws -> Void) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.fill = fill
        }
    }

    /// Encodes tensors in safetensors layout (8-byte header length, JSON header padded so the data section starts
    /// 8-byte aligned as the reference writer does, then the tensors' bytes in order). The one encoder: shard
    /// writers pass closures that write from their own buffers, so nothing is copied into per-tensor arrays first.
    public static func encode(entries: [Entry], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offsets: [Int] = []
        var offset = 0
        for e in entries {
            guard header[e.name] == nil, e.name != "__metadata__" else {
                throw TensorFileError(path: "<write>", tensor: e.name, "tensor name used twice (or reserved)")
            }
            guard let n = CheckedSize.product(e.shape), let bytes = CheckedSize.product(n, e.dtype.byteSize),
                  case let (end, overflow) = offset.addingReportingOverflow(bytes), !overflow else {
                throw TensorFileError(path: "<write>", tensor: e.name, "shape \(e.shape) is too large to write")
            }
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, end]] as [String: Any]
            offsets.append(offset)
            offset = end
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        let dataStart = 8 + json.count
        var out = Data(count: dataStart + offset)
        try out.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            base.storeBytes(of: UInt64(json.count).littleEndian, as: UInt64.self)
            json.withUnsafeBytes { base.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: json.count) }
            for (e, at) in zip(entries, offsets) { try e.fill(base.advanced(by: dataStart + at)) }
        }
        return out
    }

    /// Encodes tensors given as values.
    public static func encode(_ tensors: [TensorToWrite], metadata: [String: String] = [:]) throws -> Data {
        let entries = try tensors.map { t -> Entry in
            let n = CheckedSize.product(t.shape) ?? -1
            switch t.values {
            case .floats(let f):
                guard f.count == n else { throw TensorFileError(path: "<write>", tensor: t.name, "shape \(t.shape) needs \(n) values, got \(f.count)") }
                return Entry(name: t.name, dtype: t.dtype, shape: t.shape) { dst in f.withUnsafeBufferPointer { DTypeConversion.store($0, as: t.dtype, into: dst) } }
            case .ints(let v):
                guard v.count == n else { throw TensorFileError(path: "<write>", tensor: t.name, "shape \(t.shape) needs \(n) values, got \(v.count)") }
                return Entry(name: t.name, dtype: t.dtype, shape: t.shape) { dst in v.withUnsafeBufferPointer { DTypeConversion.store($0, as: t.dtype, into: dst) } }
            }
        }
        return try encode(entries: entries, metadata: metadata)
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
