import Foundation
import Tensor

/// Storage precision of a store's activations.
public enum StoreDType: String, Codable, Sendable, CaseIterable {
    case f32, f16
    var tensorDType: DType { self == .f32 ? .f32 : .f16 }
    var byteSize: Int { self == .f32 ? 4 : 2 }
}

/// One safetensors shard of a store, read with `pread` into caller buffers.
///
/// Why not mmap: pages of a mapping count towards the process's resident set for as long as the mapping lives, so a
/// reader walking a large shard would hold all of it in RSS. Reading rows into a bounded buffer keeps the memory
/// budget a property of the reader, not of the shard size; the kernel's page cache still makes rereads cheap.
final class ShardFile {
    struct Tensor { let dtype: DType; let shape: [Int]; let offset: Int; let byteCount: Int }
    let path: String
    let tensors: [String: Tensor]
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ActivationsError("shard \(path): cannot open: \(String(cString: strerror(errno)))")
        }
        do { tensors = try Self.readHeader(fd: fd, path: path) } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    private static func readHeader(fd: Int32, path: String) throws -> [String: Tensor] {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ActivationsError("shard \(path): cannot stat") }
        let fileSize = Int(st.st_size)
        guard fileSize >= 8 else {
            throw ActivationsError("shard \(path) is truncated: \(fileSize) bytes, too short for a safetensors header")
        }
        var lengthBytes = [UInt8](repeating: 0, count: 8)
        try preadAll(fd: fd, into: &lengthBytes, offset: 0, path: path)
        let headerLength = Int(lengthBytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        guard headerLength <= fileSize - 8 else {
            throw ActivationsError("shard \(path) is truncated: header of \(headerLength) bytes but file has \(fileSize) bytes")
        }
        var headerBytes = [UInt8](repeating: 0, count: headerLength)
        try preadAll(fd: fd, into: &headerBytes, offset: 8, path: path)
        guard let header = (try? JSONSerialization.jsonObject(with: Data(headerBytes))) as? [String: Any] else {
            throw ActivationsError("shard \(path): header is not a JSON object (damaged file?)")
        }
        let dataStart = 8 + headerLength
        var out: [String: Tensor] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dt = entry["dtype"] as? String, let dtype = DType(rawValue: dt),
                  let shape = (entry["shape"] as? [NSNumber])?.map(\.intValue),
                  let offsets = (entry["data_offsets"] as? [NSNumber])?.map(\.intValue), offsets.count == 2 else {
                throw ActivationsError("shard \(path): tensor '\(name)' has a malformed header entry")
            }
            let byteCount = shape.reduce(1, *) * dtype.byteSize
            guard offsets[1] - offsets[0] == byteCount else {
                throw ActivationsError("shard \(path): tensor '\(name)' shape \(shape) needs \(byteCount) bytes, offsets span \(offsets[1] - offsets[0])")
            }
            guard dataStart + offsets[1] <= fileSize else {
                throw ActivationsError("shard \(path) is truncated: tensor '\(name)' ends at byte \(dataStart + offsets[1]) but the file has \(fileSize) bytes")
            }
            out[name] = Tensor(dtype: dtype, shape: shape, offset: dataStart + offsets[0], byteCount: byteCount)
        }
        return out
    }

    private static func preadAll(fd: Int32, into buffer: inout [UInt8], offset: Int, path: String) throws {
        let count = buffer.count
        try buffer.withUnsafeMutableBytes { try preadAll(fd: fd, $0.baseAddress!, count: count, offset: offset, path: path) }
    }

    static func preadAll(fd: Int32, _ dst: UnsafeMutableRawPointer, count: Int, offset: Int, path: String) throws {
        var done = 0
        while done < count {
            let n = pread(fd, dst + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw ActivationsError("shard \(path): read failed at byte \(offset + done) (file truncated?)")
            }
            done += n
        }
    }

    func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else {
            throw ActivationsError("shard \(path): no tensor '\(name)' (has \(tensors.keys.sorted().joined(separator: ", ")))")
        }
        return t
    }

    /// Rows `rows` of the 2-D float tensor `name` ([R, d], f32 or f16) as Float32 into `out` (rows.count × d).
    func readRows(_ name: String, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let t = try tensor(name)
        let d = t.shape.count == 2 ? t.shape[1] : 1
        let n = rows.count * d
        guard n > 0 else { return }
        let start = t.offset + rows.lowerBound * d * t.dtype.byteSize
        switch t.dtype {
        case .f32:
            try Self.preadAll(fd: fd, out, count: n * 4, offset: start, path: path)
        case .f16:
            let scratch = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
            defer { scratch.deallocate() }
            try Self.preadAll(fd: fd, scratch, count: n * 2, offset: start, path: path)
            HalfConversion.toFloat(scratch, out, count: n)
        default:
            throw ActivationsError("shard \(path): tensor '\(name)' is \(t.dtype.rawValue); activations must be F32 or F16")
        }
    }

    /// Elements `rows` of the 1-D I32 tensor `name`.
    func readInts(_ name: String, rows: Range<Int>) throws -> [Int32] {
        let t = try tensor(name)
        guard t.dtype == .i32 else { throw ActivationsError("shard \(path): tensor '\(name)' is \(t.dtype.rawValue), expected I32") }
        var out = [Int32](repeating: 0, count: rows.count)
        if !rows.isEmpty {
            try out.withUnsafeMutableBytes {
                try Self.preadAll(fd: fd, $0.baseAddress!, count: rows.count * 4, offset: t.offset + rows.lowerBound * 4, path: path)
            }
        }
        return out
    }
}

/// Float32 ⇄ IEEE half through Swift's Float16 (hardware conversion on x86-64 with F16C, round to nearest even).
enum HalfConversion {
    static func toFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = Float(Float16(bitPattern: src[i])) }
    }
    static func toHalf(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        for i in 0..<count { dst[i] = Float16(src[i]).bitPattern }
    }
}

/// Encodes one shard in safetensors layout straight from the writer's buffers (no per-tensor array copies).
enum ShardEncoder {
    struct FloatTensor { let name: String; let rows: Int; let cols: Int; let values: UnsafeBufferPointer<Float> }
    struct IntTensor { let name: String; let values: [Int32] }

    static func encode(floats: [FloatTensor], dtype: StoreDType, ints: [IntTensor]) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for t in floats {
            let bytes = t.rows * t.cols * dtype.byteSize
            header[t.name] = ["dtype": dtype.tensorDType.rawValue, "shape": [t.rows, t.cols], "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        for t in ints {
            header[t.name] = ["dtype": "I32", "shape": [t.values.count], "data_offsets": [offset, offset + 4 * t.values.count]]
            offset += 4 * t.values.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = Data(count: 8 + json.count + offset)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt64(json.count).littleEndian, toByteOffset: 0, as: UInt64.self)
            json.withUnsafeBytes { raw.baseAddress!.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: json.count) }
            var at = raw.baseAddress!.advanced(by: 8 + json.count)
            for t in floats {
                let n = t.rows * t.cols
                guard n > 0 else { continue }
                if dtype == .f32 {
                    at.copyMemory(from: t.values.baseAddress!, byteCount: 4 * n)
                } else {
                    HalfConversion.toHalf(t.values.baseAddress!, at.assumingMemoryBound(to: UInt16.self), count: n)
                }
                at += n * dtype.byteSize
            }
            for t in ints where !t.values.isEmpty {
                t.values.withUnsafeBytes { at.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                at += 4 * t.values.count
            }
        }
        return out
    }
}
