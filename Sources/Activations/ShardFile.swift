import Foundation
import Tensor

/// Storage precision of a store's activations.
public enum StoreDType: String, Codable, Sendable, CaseIterable {
    case f32, f16, bf16
    var tensorDType: DType {
        switch self { case .f32: return .f32; case .f16: return .f16; case .bf16: return .bf16 }
    }
    var byteSize: Int { tensorDType.byteSize }
}

/// Where a store's rows come from: its own safetensors shards, or (for activations computed elsewhere) a user's
/// .npy or .safetensors file read in place.
protocol StoreShard: AnyObject {
    /// Rows `rows` of the [R, d] float tensor `name` as Float32 into `out` (rows.count × d).
    func readRows(_ name: String, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws
    /// Elements `rows` of the 1-D I32 tensor `name`.
    func readInts(_ name: String, rows: Range<Int>) throws -> [Int32]
}

/// One safetensors shard of a store, read through Tensor's one safetensors reader in its `pread` mode, so memory
/// stays bounded by the rows asked for, whatever the shard's size.
final class ShardFile: StoreShard {
    let file: SafeTensorsFile
    var path: String { file.path }
    var tensors: [String: TensorInfo] { file.tensors }

    init(path: String) throws {
        do { file = try SafeTensorsFile(path: path, access: .pread) } catch {
            throw ActivationsError("shard \(error)")
        }
    }

    func tensor(_ name: String) throws -> TensorInfo {
        guard let t = file.tensors[name] else {
            throw ActivationsError("shard \(path): no tensor '\(name)' (has \(file.names.sorted().joined(separator: ", ")))")
        }
        return t
    }

    func readRows(_ name: String, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let t = try tensor(name)
        guard t.dtype == .f32 || t.dtype == .f16 || t.dtype == .bf16 else {
            throw ActivationsError("shard \(path): tensor '\(name)' is \(t.dtype.rawValue); activations must be F32, F16 or BF16")
        }
        let d = t.shape.count == 2 ? t.shape[1] : 1
        do { try file.readFloats(name, elements: (rows.lowerBound * d)..<(rows.upperBound * d), into: out) } catch {
            throw ActivationsError("shard \(error)")
        }
    }

    func readInts(_ name: String, rows: Range<Int>) throws -> [Int32] {
        let t = try tensor(name)
        guard t.dtype == .i32 else { throw ActivationsError("shard \(path): tensor '\(name)' is \(t.dtype.rawValue), expected I32") }
        do { return try file.int32s(name, elements: rows) } catch { throw ActivationsError("shard \(error)") }
    }
}

/// Encodes one shard in safetensors layout straight from the writer's buffers, through Tensor's one encoder.
enum ShardEncoder {
    struct FloatTensor { let name: String; let rows: Int; let cols: Int; let values: UnsafeBufferPointer<Float> }
    struct IntTensor { let name: String; let values: [Int32] }

    static func encode(floats: [FloatTensor], dtype: StoreDType, ints: [IntTensor]) throws -> Data {
        let stored = dtype.tensorDType
        let entries = floats.map { t in
            SafeTensors.Entry(name: t.name, dtype: stored, shape: [t.rows, t.cols]) { DTypeConversion.store(t.values, as: stored, into: $0) }
        } + ints.map { t in
            SafeTensors.Entry(name: t.name, dtype: .i32, shape: [t.values.count]) { dst in
                t.values.withUnsafeBytes { if let base = $0.baseAddress { dst.copyMemory(from: base, byteCount: $0.count) } }
            }
        }
        return try SafeTensors.encode(entries: entries)
    }
}
