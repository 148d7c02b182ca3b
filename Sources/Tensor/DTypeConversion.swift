import Foundation

/// Conversions between stored element types and Float32 / Int64. All stored data is little-endian.
public enum DTypeConversion {
    /// Converts `count` elements at `src` (stored as `dtype`) to Float32 at `dst`.
    public static func toFloat(dtype: DType, src: UnsafeRawPointer, count: Int, dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            for k in 0..<count { dst[k] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self))) }
        case .f16:
            for k in 0..<count { dst[k] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self))) }
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

    /// Float32 values stored as `dtype` (f16 and bf16 round to nearest even; integer types round toward zero).
    public static func fromFloat(_ values: [Float], dtype: DType) -> Data {
        var out = Data(count: values.count * dtype.byteSize)
        out.withUnsafeMutableBytes { raw in
            switch dtype {
            case .f32: for (k, v) in values.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * k, as: UInt32.self) }
            case .f16: for (k, v) in values.enumerated() { raw.storeBytes(of: floatToHalf(v).littleEndian, toByteOffset: 2 * k, as: UInt16.self) }
            case .bf16: for (k, v) in values.enumerated() { raw.storeBytes(of: floatToBF16(v).littleEndian, toByteOffset: 2 * k, as: UInt16.self) }
            case .i32: for (k, v) in values.enumerated() { raw.storeBytes(of: Int32(v).littleEndian, toByteOffset: 4 * k, as: Int32.self) }
            case .i64: for (k, v) in values.enumerated() { raw.storeBytes(of: Int64(v).littleEndian, toByteOffset: 8 * k, as: Int64.self) }
            }
        }
        return out
    }

    public static func fromInt(_ values: [Int64], dtype: DType) -> Data {
        switch dtype {
        case .i32, .i64:
            var out = Data(count: values.count * dtype.byteSize)
            out.withUnsafeMutableBytes { raw in
                for (k, v) in values.enumerated() {
                    if dtype == .i32 { raw.storeBytes(of: Int32(truncatingIfNeeded: v).littleEndian, toByteOffset: 4 * k, as: Int32.self) }
                    else { raw.storeBytes(of: v.littleEndian, toByteOffset: 8 * k, as: Int64.self) }
                }
            }
            return out
        case .f32, .f16, .bf16:
            return fromFloat(values.map { Float($0) }, dtype: dtype)
        }
    }

    /// IEEE 754 half → single.
    @inlinable public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            // Subnormal half: value = mant · 2^-24.
            let v = Float(mant) * Float(bitPattern: 0x3380_0000) // 2^-24
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }

    /// Single → IEEE 754 half, round to nearest even, overflow to infinity.
    public static func floatToHalf(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exp = Int((bits >> 23) & 0xFF)
        var mant = bits & 0x7F_FFFF
        if exp == 0xFF { return sign | 0x7C00 | (mant != 0 ? 0x200 : 0) }
        var e = exp - 127 + 15
        if e >= 31 { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            mant |= 0x80_0000
            let shift = UInt32(14 - e)
            var h = mant >> shift
            let rem = mant & ((1 << shift) - 1)
            let half = UInt32(1) << (shift - 1)
            if rem > half || (rem == half && (h & 1) == 1) { h += 1 }
            return sign | UInt16(h)
        }
        var h = UInt32(mant >> 13)
        let rem = mant & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) {
            h += 1
            if h == 0x400 { h = 0; e += 1; if e >= 31 { return sign | 0x7C00 } }
        }
        return sign | UInt16(e << 10) | UInt16(h)
    }

    /// Single → bfloat16, round to nearest even (NaN kept quiet).
    public static func floatToBF16(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        if f.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}
