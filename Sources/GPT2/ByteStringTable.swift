/// An open-addressing hash table from byte strings to a 64-bit payload, looked up through a raw buffer so the hot
/// path of the tokenizer never allocates a key. Keys live in one arena; the table doubles when 1/2 full.
struct ByteStringTable: Sendable {
    private var arena: [UInt8] = []
    // Each slot: key offset (Int32, -1 = empty), key length, payload, and the stored hash to skip most compares.
    private var offsets: [Int32]
    private var lengths: [Int32]
    private var hashes: [UInt32]
    private var payloads: [UInt64]
    private(set) var count = 0
    private var mask: Int

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        offsets = [Int32](repeating: -1, count: size)
        lengths = [Int32](repeating: 0, count: size)
        hashes = [UInt32](repeating: 0, count: size)
        payloads = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    /// FNV-1a over the bytes, folded to 32 bits.
    @inline(__always) static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return UInt32(truncatingIfNeeded: h ^ (h >> 29))
    }

    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> UInt64? {
        let h = Self.hash(key)
        var i = Int(h) & mask
        return arena.withUnsafeBufferPointer { a in
            while true {
                let off = offsets[i]
                if off < 0 { return nil }
                if hashes[i] == h && Int(lengths[i]) == key.count {
                    if key.count == 0 || memcmp(a.baseAddress! + Int(off), key.baseAddress!, key.count) == 0 {
                        return payloads[i]
                    }
                }
                i = (i + 1) & mask
            }
        }
    }

    func lookup(_ key: [UInt8]) -> UInt64? { key.withUnsafeBufferPointer { lookup($0) } }

    /// Inserts or overwrites.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, _ payload: UInt64) {
        if (count + 1) * 2 > offsets.count { grow() }
        let h = Self.hash(key)
        var i = Int(h) & mask
        while offsets[i] >= 0 {
            if hashes[i] == h && Int(lengths[i]) == key.count && keyEquals(slot: i, key) { payloads[i] = payload; return }
            i = (i + 1) & mask
        }
        offsets[i] = Int32(arena.count)
        lengths[i] = Int32(key.count)
        hashes[i] = h
        payloads[i] = payload
        arena.append(contentsOf: key)
        count += 1
    }

    mutating func insert(_ key: [UInt8], _ payload: UInt64) { key.withUnsafeBufferPointer { insert($0, payload) } }

    private func keyEquals(slot i: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        if key.isEmpty { return true }
        return arena.withUnsafeBufferPointer { memcmp($0.baseAddress! + Int(offsets[i]), key.baseAddress!, key.count) == 0 }
    }

    private mutating func grow() {
        let oldOffsets = offsets, oldLengths = lengths, oldHashes = hashes, oldPayloads = payloads
        let size = oldOffsets.count * 2
        offsets = [Int32](repeating: -1, count: size)
        lengths = [Int32](repeating: 0, count: size)
        hashes = [UInt32](repeating: 0, count: size)
        payloads = [UInt64](repeating: 0, count: size)
        mask = size - 1
        for j in 0..<oldOffsets.count where oldOffsets[j] >= 0 {
            var i = Int(oldHashes[j]) & mask
            while offsets[i] >= 0 { i = (i + 1) & mask }
            offsets[i] = oldOffsets[j]; lengths[i] = oldLengths[j]; hashes[i] = oldHashes[j]; payloads[i] = oldPayloads[j]
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
