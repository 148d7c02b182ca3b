import Foundation

/// Conversions between stored element types and Float32 / Int64. All stored data is little-endian. Halves go through
/// the standard library's `Float16` (IEEE conversion: round to nearest even, overflow to infinity, NaN kept).
public enum DTypeConversion {
    /// Converts `count` elements at `src` (stored as `dtype`) to Float32 at `dst`.
    public static func toFloat(dtype: DType, src: UnsafeRawPointer, count: Int, dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            for k in 0..<count { dst[k] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self))) }
        case .f16:
            for k in 0..<count { dst[k] = Float(Float16(bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self)))) }
        case .bf16:
            for k in 0..<count {
                let b = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self))
                dst[k] = Float(bitPattern: UInt32(b) << 16)
            }
        case .i32:
            for k in 0..<count { dst[k] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self))) }
        case .i64:
            for k in 0..<count { dst[k] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self))) }
        }
    }

    /// Stores `src` as `dtype` at `dst` (count · dtype.byteSize bytes): f16 and bf16 round to nearest even; integer
    /// types round toward zero (values out of range saturate, NaN stores 0: integers are never the target of a
    /// computed float in nsae, only of ids that were integers to begin with).
    public static func store(_ src: UnsafeBufferPointer<Float>, as dtype: DType, into dst: UnsafeMutableRawPointer) {
        switch dtype {
        case .f32: for (k, v) in src.enumerated() { dst.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * k, as: UInt32.self) }
        case .f16: for (k, v) in src.enumerated() { dst.storeBytes(of: Float16(v).bitPattern.littleEndian, toByteOffset: 2 * k, as: UInt16.self) }
        case .bf16: for (k, v) in src.enumerated() { dst.storeBytes(of: floatToBF16(v).littleEndian, toByteOffset: 2 * k, as: UInt16.self) }
        case .i32: for (k, v) in src.enumerated() { dst.storeBytes(of: Int32(saturating: v).littleEndian, toByteOffset: 4 * k, as: Int32.self) }
        case .i64: for (k, v) in src.enumerated() { dst.storeBytes(of: Int64(saturating: v).littleEndian, toByteOffset: 8 * k, as: Int64.self) }
        }
    }

    /// Stores integers as `dtype` at `dst` (I32 truncates; float types convert).
    public static func store(_ src: UnsafeBufferPointer<Int64>, as dtype: DType, into dst: UnsafeMutableRawPointer) {
        switch dtype {
        case .i32: for (k, v) in src.enumerated() { dst.storeBytes(of: Int32(truncatingIfNeeded: v).littleEndian, toByteOffset: 4 * k, as: Int32.self) }
        case .i64: for (k, v) in src.enumerated() { dst.storeBytes(of: v.littleEndian, toByteOffset: 8 * k, as: Int64.self) }
        case .f32, .f16, .bf16:
            let floats = src.map { Float($0) }
            floats.withUnsafeBufferPointer { store($0, as: dtype, into: dst) }
        }
    }

    /// Float32 values stored as `dtype`.
    public static func fromFloat(_ values: [Float], dtype: DType) -> Data {
        var out = Data(count: values.count * dtype.byteSize)
        out.withUnsafeMutableBytes { raw in values.withUnsafeBufferPointer { if let base = raw.baseAddress { store($0, as: dtype, into: base) } } }
        return out
    }

    public static func fromInt(_ values: [Int64], dtype: DType) -> Data {
        var out = Data(count: values.count * dtype.byteSize)
        out.withUnsafeMutableBytes { raw in values.withUnsafeBufferPointer { if let base = raw.baseAddress { store($0, as: dtype, into: base) } } }
        return out
    }

    /// Single → bfloat16, round to nearest even (NaN kept quiet). The standard library has no bfloat16.
    public static func floatToBF16(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        if f.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}

extension BinaryInteger where Self: FixedWidthInteger {
    /// `v` rounded toward zero and clamped to the type's range (NaN gives 0), never a trap.
    init(saturating v: Float) {
        if v.isNaN { self = 0 }
        else if v >= Float(Self.max) { self = Self.max }
        else if v <= Float(Self.min) { self = Self.min }
        else { self = Self(v) }
    }
}
