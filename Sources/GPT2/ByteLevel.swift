/// GPT-2's `bytes_to_unicode()`: the vocabulary files spell every byte as a printable character. The printable
/// ranges `!`…`~`, `¡`…`¬`, `®`…`ÿ` stand for themselves; the other 68 bytes map in order to U+0100, U+0101, ….
enum ByteLevel {
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var printable = Set<Int>()
        for r in [0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF] { for b in r { printable.insert(b); table[b] = UInt32(b) } }
        var next: UInt32 = 256
        for b in 0..<256 where !printable.contains(b) { table[b] = next; next += 1 }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { m[s] = UInt8(b) }
        return m
    }()

    /// The bytes a vocabulary-file token string stands for; nil if it uses a character outside the table.
    static func bytes(ofTokenString s: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.unicodeScalars.count)
        for u in s.unicodeScalars {
            guard let b = scalarToByte[u.value] else { return nil }
            out.append(b)
        }
        return out
    }
}
