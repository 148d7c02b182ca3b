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
            let rows = shape.isEmpty ? 1 : shape.dropLast().reduce(1, *)
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

    public static func read(path: String) throws -> Array {
        guard FileManager.default.fileExists(atPath: path) else { throw TensorFileError(path: path, "no such file") }
        let d: Data
        do { d = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw TensorFileError(path: path, "cannot read: \(error.localizedDescription)")
        }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard d.count >= 10, Swift.Array(d.prefix(6)) == magic else { throw TensorFileError(path: path, "not a .npy file (bad magic)") }
        let major = d[d.startIndex + 6]
        let headerLen: Int
        let headerStart: Int
        if major == 1 {
            headerLen = Int(d[d.startIndex + 8]) | Int(d[d.startIndex + 9]) << 8
            headerStart = 10
        } else if major == 2 || major == 3 {
            guard d.count >= 12 else { throw TensorFileError(path: path, "truncated .npy header") }
            headerLen = (0..<4).reduce(0) { $0 | Int(d[d.startIndex + 8 + $1]) << (8 * $1) }
            headerStart = 12
        } else { throw TensorFileError(path: path, "unsupported .npy version \(major)") }
        guard headerStart + headerLen <= d.count else { throw TensorFileError(path: path, "header length \(headerLen) runs past the end of the file") }
        guard let header = String(data: d.subdata(in: headerStart..<(headerStart + headerLen)), encoding: .utf8) else {
            throw TensorFileError(path: path, "header is not text")
        }
        guard let descr = field(header, "descr") else { throw TensorFileError(path: path, "header has no 'descr'") }
        let dtype = try self.dtype(fromDescr: descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")), path: path)
        if let fo = field(header, "fortran_order"), fo.contains("True") {
            throw TensorFileError(path: path, "Fortran-order arrays are not supported; save with C order")
        }
        guard let shapeText = field(header, "shape") else { throw TensorFileError(path: path, "header has no 'shape'") }
        let shape = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.compactMap { Int($0) }
        let n = shape.reduce(1, *)
        let dataStart = headerStart + headerLen
        guard d.count - dataStart >= n * dtype.byteSize else {
            throw TensorFileError(path: path, "data is \(d.count - dataStart) bytes, shape \(shape) of \(descr) needs \(n * dtype.byteSize) (file truncated?)")
        }
        var floats = [Float](repeating: 0, count: n)
        d.withUnsafeBytes { raw in
            floats.withUnsafeMutableBufferPointer { out in
                DTypeConversion.toFloat(dtype: dtype, src: raw.baseAddress! + dataStart, count: n, dst: out.baseAddress!)
            }
        }
        return Array(dtype: dtype, shape: shape, floats: floats)
    }

    /// The text after `'key':` up to the next top-level comma (or the closing parenthesis of a shape tuple).
    private static func field(_ header: String, _ key: String) -> String? {
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
