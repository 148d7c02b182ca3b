// The lexer of the command language (../shared/design/commands.md, "Lexical rules").
// It works on UTF-8 bytes (every character with meaning in the language is ASCII) and reports columns in Unicode
// scalars so they match what a terminal shows for ordinary text.
// Where a statement ends is decided here and only here: at a newline outside strings and lists. A string may span
// lines, and newlines inside `[…]` and `(…)` are blanks, so what the parser accepts and what is_complete/the REPL wait for
// are the same rule (input that stops inside a string, a list or after `\` is incomplete, not invalid).

/// A position in source code: 1-based line and column (Unicode scalars), plus the UTF-8 byte offset.
public struct SourcePosition: Sendable, Equatable {
    public var line: Int
    public var column: Int
    public var offset: Int
}

enum TokenKind: Equatable {
    case number(Double)
    case string(String)
    case name(String)
    case equals
    case dotDot
    case comma
    case leftBracket
    case rightBracket
    case leftParen
    case rightParen
    case newline
    case end
}

struct Token {
    var kind: TokenKind
    var start: SourcePosition
}

struct Lexer {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0
    /// The scalar column at `columnOffset` on the current line, so columns are counted incrementally.
    private var columnOffset = 0
    private var column = 1
    /// How many `[` and `(` are open: newlines inside a list or a call's arguments do not end the statement.
    private var openBrackets = 0

    init(_ source: String) { bytes = Array(source.utf8) }

    mutating func position() -> SourcePosition { position(at: index) }

    private mutating func position(at offset: Int) -> SourcePosition {
        if columnOffset < lineStart || columnOffset > offset { columnOffset = lineStart; column = 1 }
        while columnOffset < offset {
            if bytes[columnOffset] & 0xC0 != 0x80 { column += 1 }
            columnOffset += 1
        }
        return SourcePosition(line: line, column: column, offset: offset)
    }

    private func peek(_ ahead: Int = 0) -> UInt8? {
        index + ahead < bytes.count ? bytes[index + ahead] : nil
    }

    private mutating func newLine(at offset: Int) {
        line += 1
        lineStart = offset
    }

    /// The character starting at `offset`, for messages.
    private func character(at offset: Int) -> String {
        var end = offset + 1
        while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
        return String(decoding: bytes[offset..<end], as: UTF8.self)
    }

    private static let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
    private static let hash = UInt8(ascii: "#"), backslash = UInt8(ascii: "\\"), quote = UInt8(ascii: "\"")
    private static func isBlank(_ b: UInt8) -> Bool { b == space || b == tab || b == cr }

    private mutating func skipBlanksCommentsAndContinuations() throws {
        while let c = peek() {
            if Lexer.isBlank(c) {
                index += 1
            } else if c == Lexer.hash {
                while let d = peek(), d != Lexer.lf { index += 1 }
            } else if c == Lexer.lf && openBrackets > 0 {
                index += 1
                newLine(at: index)
            } else if c == Lexer.backslash {
                // A backslash ending a line (trailing blanks and a comment allowed) continues the statement.
                var look = index + 1
                while look < bytes.count, Lexer.isBlank(bytes[look]) { look += 1 }
                if look < bytes.count, bytes[look] == Lexer.hash {
                    while look < bytes.count, bytes[look] != Lexer.lf { look += 1 }
                }
                if look >= bytes.count {
                    throw LanguageError(position(), "expected another line after the continuation `\\`", kind: .incomplete)
                }
                guard bytes[look] == Lexer.lf else {
                    throw LanguageError(position(), "unexpected `\\` (a backslash continues a statement only at the end of a line)")
                }
                index = look + 1
                newLine(at: index)
            } else {
                return
            }
        }
    }

    mutating func next() throws -> Token {
        try skipBlanksCommentsAndContinuations()
        let start = position()
        guard let c = peek() else { return Token(kind: .end, start: start) }
        func single(_ kind: TokenKind) -> Token {
            index += 1
            return Token(kind: kind, start: start)
        }
        switch c {
        case Lexer.lf:
            let token = single(.newline)
            newLine(at: index)
            return token
        case UInt8(ascii: "="): return single(.equals)
        case UInt8(ascii: ","): return single(.comma)
        case UInt8(ascii: "["): openBrackets += 1; return single(.leftBracket)
        case UInt8(ascii: "]"): openBrackets = max(0, openBrackets - 1); return single(.rightBracket)
        case UInt8(ascii: "("): openBrackets += 1; return single(.leftParen)
        case UInt8(ascii: ")"): openBrackets = max(0, openBrackets - 1); return single(.rightParen)
        case Lexer.quote: return try lexString(start)
        case UInt8(ascii: "."):
            if peek(1) == UInt8(ascii: ".") { index += 2; return Token(kind: .dotDot, start: start) }
            if let d = peek(1), isDigit(d) { return try lexNumber(start) }
            throw LanguageError(start, "unexpected `.`; expected a value such as a number, a string or a name")
        case UInt8(ascii: "-"), UInt8(ascii: "+"):
            if let d = peek(1), isDigit(d) || (d == UInt8(ascii: ".") && peek(2).map(isDigit) == true) { return try lexNumber(start) }
            throw LanguageError(start, "unexpected `\(character(at: index))`; expected a number after the sign")
        default:
            if isDigit(c) { return try lexNumber(start) }
            if isNameStart(c) {
                // A dot joins name parts (`attn.hook_z`, `blocks.5.hook_mlp_out`, TransformerLens hook names);
                // `..` still ends the name (a range `a..b`).
                while let d = peek(), isNameContinue(d) || (d == UInt8(ascii: ".") && peek(1).map(isNameContinue) == true) {
                    index += 1
                }
                return Token(kind: .name(String(decoding: bytes[start.offset..<index], as: UTF8.self)), start: start)
            }
            throw LanguageError(start, "unexpected character `\(character(at: index))`; expected a value, a name or `=`")
        }
    }

    private mutating func lexNumber(_ start: SourcePosition) throws -> Token {
        var text: [UInt8] = []
        if let sign = peek(), sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") { text.append(sign); index += 1 }
        while let d = peek(), isDigit(d) || d == UInt8(ascii: "_") { if d != UInt8(ascii: "_") { text.append(d) }; index += 1 }
        // A fraction, unless the dot starts a range (`0..11`).
        if peek() == UInt8(ascii: "."), peek(1) != UInt8(ascii: ".") {
            text.append(UInt8(ascii: "."))
            index += 1
            while let d = peek(), isDigit(d) { text.append(d); index += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            var look = index + 1
            if look < bytes.count, bytes[look] == UInt8(ascii: "-") || bytes[look] == UInt8(ascii: "+") { look += 1 }
            if look < bytes.count, isDigit(bytes[look]) {
                text.append(contentsOf: bytes[index..<look])
                index = look
                while let d = peek(), isDigit(d) { text.append(d); index += 1 }
            }
        }
        var multiplier = 1.0
        switch peek() {
        case UInt8(ascii: "k"): multiplier = 1e3; index += 1
        case UInt8(ascii: "M"): multiplier = 1e6; index += 1
        case UInt8(ascii: "G"): multiplier = 1e9; index += 1
        default: break
        }
        if let after = peek(), isNameContinue(after) {
            let number = String(decoding: bytes[start.offset..<index], as: UTF8.self)
            throw LanguageError(position(), "unexpected `\(character(at: index))` after the number `\(number)`; the suffixes are k (10^3), M (10^6) and G (10^9)")
        }
        let literal = String(decoding: text, as: UTF8.self)
        guard let value = Double(literal) else { throw LanguageError(start, "malformed number `\(literal)`") }
        return Token(kind: .number(value * multiplier), start: start)
    }

    private mutating func lexString(_ start: SourcePosition) throws -> Token {
        index += 1
        var text: [UInt8] = []
        func unterminated() -> LanguageError {
            LanguageError(start, "unterminated string; expected a closing `\"`", kind: .incomplete)
        }
        while true {
            guard let c = peek() else { throw unterminated() }
            if c == Lexer.quote { index += 1; break }
            if c == Lexer.lf {
                // A string may span lines; it keeps the newline.
                text.append(c)
                index += 1
                newLine(at: index)
            } else if c == Lexer.backslash {
                let escapePosition = position()
                index += 1
                guard let e = peek() else { throw unterminated() }
                switch e {
                case Lexer.quote: text.append(Lexer.quote)
                case Lexer.backslash: text.append(Lexer.backslash)
                case UInt8(ascii: "n"): text.append(Lexer.lf)
                case UInt8(ascii: "t"): text.append(Lexer.tab)
                case Lexer.lf:
                    throw LanguageError(escapePosition, "unexpected `\\` at the end of a line inside a string; a string may span lines without it")
                default:
                    throw LanguageError(escapePosition, "unknown escape `\\\(character(at: index))` in a string; expected one of \\\" \\\\ \\n \\t")
                }
                index += 1
            } else {
                text.append(c)
                index += 1
            }
        }
        return Token(kind: .string(String(decoding: text, as: UTF8.self)), start: start)
    }
}

func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
func isNameStart(_ c: UInt8) -> Bool {
    (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || c == UInt8(ascii: "_")
}
func isNameContinue(_ c: UInt8) -> Bool { isNameStart(c) || isDigit(c) }

/// Scalar versions for the completer, which works on Unicode scalars.
func isNameContinue(_ c: Unicode.Scalar) -> Bool { c.isASCII && isNameContinue(UInt8(c.value)) }
