import Foundation

/// NumPy `.npy` files (format 1.0/2.0/3.0), little-endian f4, f2, i4, i8, C order.
public enum Npy {
    public struct Array: Sendable {
        public var dtype: DType
        public var shape: [Int]
        /// Values converted to Float32 (integers included).
        public var floats: [Float]

        public var matrix: Matrix {
            let cols = shape.last ?? 1
            let rows = shape.isEmpty ? 1 : (cols == 0 ? 0 : floats.count / cols)
            return Matrix(rows: rows, cols: cols, data: floats)
        }
    }

    static func dtype(fromDescr d: String, path: String) throws -> DType {
        switch d {
        case "<f4", "float32": return .f32
        case "<f2", "float16": return .f16
        case "<i4", "int32": return .i32
        case "<i8", "int64": return .i64
        default: throw TensorFileError(path: path, "unsupported .npy dtype '\(d)' (supported: <f4, <f2, <i4, <i8, little-endian)")
        }
    }

    static func descr(_ t: DType) -> String {
        switch t {
        case .f32: return "<f4"
        case .f16: return "<f2"
        case .i32: return "<i4"
        case .i64: return "<i8"
        case .bf16: return "<f4" // numpy has no bfloat16; stored widened
        }
    }

    /// What a .npy header says, with every size checked against the file: where the data starts, its dtype and
    /// shape (non-negative integers whose product and byte count fit, and whose bytes the file holds).
    public struct Header: Sendable {
        public var dtype: DType
        public var shape: [Int]
        public var elementCount: Int
        public var dataStart: Int

        /// Reads and checks the header of `path` (only the first bytes are read).
        public init(path: String) throws {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
                throw TensorFileError(path: path, isDir.boolValue ? "is a folder, not a .npy file" : "no such file")
            }
            guard let handle = FileHandle(forReadingAtPath: path) else { throw TensorFileError(path: path, "cannot open") }
            defer { try? handle.close() }
            let fileSize = Int((try? handle.seekToEnd()) ?? 0)
            try? handle.seek(toOffset: 0)
            let prefix = (try? handle.read(upToCount: 12)) ?? Data()
            let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
            guard prefix.count >= 10, Swift.Array(prefix.prefix(6)) == magic else { throw TensorFileError(path: path, "not a .npy file (bad magic)") }
            let bytes = Swift.Array(prefix)
            let headerLen: Int, headerStart: Int
            switch bytes[6] {
            case 1:
                headerLen = Int(bytes[8]) | Int(bytes[9]) << 8
                headerStart = 10
            case 2, 3:
                guard bytes.count >= 12 else { throw TensorFileError(path: path, "truncated .npy header") }
                headerLen = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
                headerStart = 12
            default: throw TensorFileError(path: path, "unsupported .npy version \(bytes[6])")
            }
            guard headerLen <= fileSize - headerStart else {
                throw TensorFileError(path: path, "header length \(headerLen) runs past the end of the file (\(fileSize) bytes)")
            }
            try handle.seek(toOffset: UInt64(headerStart))
            guard let headerData = try handle.read(upToCount: headerLen), headerData.count == headerLen,
                  let header = String(data: headerData, encoding: .utf8) else {
                throw TensorFileError(path: path, "header is not text")
            }
            guard let descr = Npy.field(header, "descr") else { throw TensorFileError(path: path, "header has no 'descr'") }
            let descrText = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
            dtype = try Npy.dtype(fromDescr: descrText, path: path)
            if let fo = Npy.field(header, "fortran_order"), fo.contains("True") {
                throw TensorFileError(path: path, "Fortran-order arrays are not supported; save with C order")
            }
            guard let shapeText = Npy.field(header, "shape") else { throw TensorFileError(path: path, "header has no 'shape'") }
            let inner = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            let entries = inner.isEmpty ? [] : inner.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            var shape: [Int] = []
            for (axis, entry) in entries.enumerated() {
                if entry.isEmpty && axis == entries.count - 1 && axis > 0 { continue }   // the trailing comma of (n,)
                guard let n = Int(entry), n >= 0 else {
                    throw TensorFileError(path: path, "shape entry \(axis) is '\(entry)', not a non-negative integer that fits 64 bits")
                }
                shape.append(n)
            }
            guard let count = CheckedSize.product(shape), let needed = CheckedSize.product(count, dtype.byteSize) else {
                throw TensorFileError(path: path, "shape \(shape) of \(descrText) is too large: its byte count overflows 64 bits")
            }
            dataStart = headerStart + headerLen
            guard fileSize - dataStart >= needed else {
                throw TensorFileError(path: path, "data is \(fileSize - dataStart) bytes, shape \(shape) of \(descrText) needs \(needed) (file truncated?)")
            }
            self.shape = shape
            elementCount = count
        }
    }

    /// A .npy file opened for reading ranges of elements with `pread`, so a file larger than RAM is read piecewise
    /// and memory stays bounded by the caller's buffer.
    public final class Reader: @unchecked Sendable {
        // @unchecked: immutable after init; pread needs no lock.
        public let path: String
        public let header: Header
        private let fd: Int32

        public init(path: String) throws {
            header = try Header(path: path)
            self.path = path
            fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw TensorFileError(path: path, "cannot open: \(String(cString: strerror(errno)))") }
        }

        deinit { close(fd) }

        /// Elements `elements` (flat, C order) converted to Float32 into `out`.
        public func readFloats(elements: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
            guard elements.lowerBound >= 0, elements.upperBound <= header.elementCount else {
                throw TensorFileError(path: path, "element range \(elements) outside 0..<\(header.elementCount)")
            }
            guard !elements.isEmpty else { return }
            let size = header.dtype.byteSize
            let offset = header.dataStart + elements.lowerBound * size
            if header.dtype == .f32 {
                try PositionalRead.readAll(fd: fd, out, count: elements.count * 4, offset: offset, path: path)
                return
            }
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: elements.count * size, alignment: 16)
            defer { buffer.deallocate() }
            try PositionalRead.readAll(fd: fd, buffer, count: elements.count * size, offset: offset, path: path)
            DTypeConversion.toFloat(dtype: header.dtype, src: buffer, count: elements.count, dst: out)
        }
    }

    public static func read(path: String) throws -> Array {
        let header = try Header(path: path)
        let d: Data
        do { d = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw TensorFileError(path: path, "cannot read: \(error.localizedDescription)")
        }
        guard d.count >= header.dataStart + header.elementCount * header.dtype.byteSize else {
            throw TensorFileError(path: path, "file changed while it was read")
        }
        var floats = [Float](repeating: 0, count: header.elementCount)
        d.withUnsafeBytes { raw in
            floats.withUnsafeMutableBufferPointer { out in
                if let dst = out.baseAddress {
                    DTypeConversion.toFloat(dtype: header.dtype, src: raw.baseAddress! + header.dataStart, count: header.elementCount, dst: dst)
                }
            }
        }
        return Array(dtype: header.dtype, shape: header.shape, floats: floats)
    }

    /// The text after `'key':` up to the next top-level comma (or the closing parenthesis of a shape tuple).
    static func field(_ header: String, _ key: String) -> String? {
        guard let r = header.range(of: "'\(key)':") else { return nil }
        let rest = header[r.upperBound...].drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[rest.startIndex...close])
        }
        let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
        return String(rest[..<end])
    }

    public static func encode(floats: [Float], shape: [Int], dtype: DType = .f32) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr(dtype))', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so that magic(6)+version(2)+len(2)+header is a multiple of 64, ending with a newline.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let len = UInt16(header.utf8.count)
        out.append(UInt8(len & 0xFF)); out.append(UInt8(len >> 8))
        out.append(header.data(using: .utf8)!)
        out.append(DTypeConversion.fromFloat(floats, dtype: dtype == .bf16 ? .f32 : dtype))
        return out
    }

    public static func write(_ matrix: Matrix, to path: String, dtype: DType = .f32) throws {
        try AtomicFile.write(encode(floats: matrix.data, shape: [matrix.rows, matrix.cols], dtype: dtype), to: path)
    }

    public static func write(floats: [Float], shape: [Int], to path: String, dtype: DType = .f32) throws {
        try AtomicFile.write(encode(floats: floats, shape: shape, dtype: dtype), to: path)
    }
}
