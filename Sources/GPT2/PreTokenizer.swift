/// GPT-2's pre-tokenization, hand-written over the UTF-8 bytes of the text, decoding Unicode scalars (not grapheme
/// clusters) as it goes. It reproduces the regex
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// with `\s` = Unicode White_Space (which ICU's `\s` is not: it misses U+000B and U+0085).
enum PreTokenizer {
    enum CharClass: UInt8 { case letter, number, space, other }

    /// Class of every ASCII byte; non-ASCII scalars go through Unicode properties.
    static let asciiClass: [CharClass] = (0..<128).map { b -> CharClass in
        let u = Unicode.Scalar(UInt8(b))
        return classify(u)
    }

    static func classify(_ u: Unicode.Scalar) -> CharClass {
        let p = u.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    /// Decodes the scalar starting at `i` and returns its class and byte length. Invalid UTF-8 bytes count as
    /// single "other" characters (a Swift String never contains them; raw buffers might).
    @inline(__always)
    static func scalar(_ s: UnsafeBufferPointer<UInt8>, _ i: Int) -> (CharClass, Int) {
        let b0 = s[i]
        if b0 < 0x80 { return (asciiClass[Int(b0)], 1) }
        var len = 0, v: UInt32 = 0
        if b0 & 0xE0 == 0xC0 { len = 2; v = UInt32(b0 & 0x1F) }
        else if b0 & 0xF0 == 0xE0 { len = 3; v = UInt32(b0 & 0x0F) }
        else if b0 & 0xF8 == 0xF0 { len = 4; v = UInt32(b0 & 0x07) }
        else { return (.other, 1) }
        if i + len > s.count { return (.other, 1) }
        for k in 1..<len {
            let b = s[i + k]
            if b & 0xC0 != 0x80 { return (.other, 1) }
            v = (v << 6) | UInt32(b & 0x3F)
        }
        guard let u = Unicode.Scalar(v) else { return (.other, 1) }
        return (classify(u), len)
    }

    /// Calls `body` with the byte range of each piece, in order.
    static func split(_ s: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Void) {
        let n = s.count
        var i = 0
        while i < n {
            let start = i
            // Contractions: lowercase, ASCII apostrophe only.
            if s[i] == 0x27, i + 1 < n {
                let c = s[i + 1]
                if c == 0x73 || c == 0x74 || c == 0x6D || c == 0x64 { body(i..<(i + 2)); i += 2; continue } // s t m d
                if i + 2 < n {
                    let d = s[i + 2]
                    if (c == 0x72 && d == 0x65) || (c == 0x76 && d == 0x65) || (c == 0x6C && d == 0x6C) { // re ve ll
                        body(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            var (cls, len) = scalar(s, i)
            var j = i
            if cls == .space {
                // ` ?X+` may start with one U+0020 when a non-space follows it.
                if s[i] == 0x20, i + 1 < n {
                    let (next, nextLen) = scalar(s, i + 1)
                    if next != .space { cls = next; len = nextLen; j = i + 1 }
                }
            }
            if cls != .space {
                // Run of the same class: letters, numbers, or "other" (neither space, letter nor number).
                j += len
                while j < n {
                    let (c, l) = scalar(s, j)
                    if c != cls { break }
                    j += l
                }
                body(start..<j); i = j; continue
            }
            // Whitespace run [i, j) holding `count` scalars; remember where its last scalar starts.
            var lastStart = i, count = 0
            while j < n {
                let (c, l) = scalar(s, j)
                if c != .space { break }
                lastStart = j; count += 1; j += l
            }
            if j == n || count == 1 {
                body(i..<j); i = j               // \s+(?!\S) at the end, or the \s+ fallback for one scalar
            } else {
                body(i..<lastStart); i = lastStart // leave the last one to prefix (or stand before) the next word
            }
        }
    }
}
