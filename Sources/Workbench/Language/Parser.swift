// The parser: `[NAME =] VERB ARG… [KEY=VALUE…]`, or `[NAME =] VALUE`. Expressions stay unevaluated: whether a
// name is a bound value or a literal word (`load gpt2 …`, `noise=train`) depends on the verb's declared parameter.

public indirect enum Expr: Sendable, Equatable {
    case number(Double)
    case string(String)
    case bool(Bool)
    case name(String)
    case range(Int, Int)
    case list([Located<Expr>])
    /// `name(argument, …)`: a built-in function (Session's `builtins`, e.g. `geom(1e-4, 1e-2, 5)`).
    case call(Located<String>, [Located<Expr>])
}

public struct Located<T: Sendable & Equatable>: Sendable, Equatable {
    public var value: T
    public var position: SourcePosition
}

public struct OptionArgument: Sendable, Equatable {
    public var key: Located<String>
    public var value: Located<Expr>
}

public struct Statement: Sendable, Equatable {
    public enum Body: Sendable, Equatable {
        case command(verb: Located<String>, arguments: [Located<Expr>], options: [OptionArgument])
        case value(Located<Expr>)
    }
    public var line: Int
    public var target: Located<String>?
    public var body: Body
}

/// Pulls statements one at a time, so a script can run the statements before a syntax error.
public struct Parser {
    /// Lists nest at most this deep: every later stage (evaluation, rendering, JSON) walks a value recursively, so
    /// the bound here is what keeps a crafted `[[[[…]]]]` an error instead of a stack overflow.
    public static let maximumNesting = 64
    /// A range is listed out wherever it is used (layers, numbers, --json), so its length is bounded too.
    public static let maximumRangeLength = 1_000_000

    private var lexer: Lexer
    private var lookahead: Token?
    private let isVerb: (String) -> Bool

    /// `isVerb` decides whether a statement consisting of one name is a command (`help`) or a value (`x`).
    public init(_ source: String, isVerb: @escaping (String) -> Bool) {
        lexer = Lexer(source)
        self.isVerb = isVerb
    }

    private mutating func peek() throws -> Token {
        if let token = lookahead { return token }
        let token = try lexer.next()
        lookahead = token
        return token
    }

    private mutating func take() throws -> Token {
        let token = try peek()
        lookahead = nil
        return token
    }

    /// The next statement, or nil at the end of the input. Blank lines and comments are skipped.
    public mutating func nextStatement() throws -> Statement? {
        while try peek().kind == .newline { _ = try take() }
        var tokens: [Token] = []
        while true {
            let token = try peek()
            if token.kind == .newline || token.kind == .end { break }
            tokens.append(try take())
        }
        guard let first = tokens.first else { return nil }
        let terminator = try peek()
        var cursor = TokenCursor(tokens: tokens, endPosition: terminator.start, endsInput: terminator.kind == .end)
        var target: Located<String>?
        if tokens.count >= 2, case .name(let name) = first.kind, tokens[1].kind == .equals {
            target = Located(value: name, position: first.start)
            cursor.index = 2
            guard !cursor.atEnd else {
                throw LanguageError(cursor.endPosition, "expected a verb or a value after `\(name) =`")
            }
        }
        let body = try parseBody(&cursor)
        return Statement(line: first.start.line, target: target, body: body)
    }

    /// Parses all statements (for tests, fuzzing and the parse-rate benchmark).
    public mutating func parseAll() throws -> [Statement] {
        var statements: [Statement] = []
        while let statement = try nextStatement() { statements.append(statement) }
        return statements
    }

    private func parseBody(_ cursor: inout TokenCursor) throws -> Statement.Body {
        let head = cursor.current!
        // `geom(…)` heading a statement is a value (a call), not a verb with arguments.
        if case .name(let word) = head.kind, !["true", "false"].contains(word), cursor.peek(1)?.kind != .leftParen {
            let isSingle = cursor.index + 1 == cursor.tokens.count
            if !isSingle || isVerb(word) {
                cursor.index += 1
                return try parseCommand(verb: Located(value: word, position: head.start), &cursor)
            }
        }
        let value = try parseExpression(&cursor)
        if let extra = cursor.current {
            throw LanguageError(extra.start, "unexpected \(describe(extra.kind)) after the value; a value statement holds one value (a command starts with a verb)")
        }
        return .value(value)
    }

    private func parseCommand(verb: Located<String>, _ cursor: inout TokenCursor) throws -> Statement.Body {
        var arguments: [Located<Expr>] = []
        var options: [OptionArgument] = []
        while let token = cursor.current {
            if case .name(let key) = token.kind, cursor.peek(1)?.kind == .equals {
                cursor.index += 2
                guard !cursor.atEnd else {
                    throw LanguageError(cursor.endPosition, "expected a value after `\(key)=`")
                }
                if options.contains(where: { $0.key.value == key }) {
                    throw LanguageError(token.start, "the option `\(key)` is given twice")
                }
                let value = try parseExpression(&cursor)
                options.append(OptionArgument(key: Located(value: key, position: token.start), value: value))
            } else if token.kind == .equals {
                throw LanguageError(token.start, "unexpected `=`; expected an argument or an option written `key=value` with no name before it bound elsewhere")
            } else {
                if let firstOption = options.first {
                    throw LanguageError(token.start, "unexpected argument after the option `\(firstOption.key.value)=…`; positional arguments come before options")
                }
                arguments.append(try parseExpression(&cursor))
            }
        }
        return .command(verb: verb, arguments: arguments, options: options)
    }

    private func parseExpression(_ cursor: inout TokenCursor) throws -> Located<Expr> {
        guard let token = cursor.current else {
            throw LanguageError(cursor.endPosition, "expected a value (a number, a string, a list, a range or a name)",
                                kind: cursor.insideOpenList ? .incomplete : .syntax)
        }
        cursor.index += 1
        switch token.kind {
        case .number(let value):
            if cursor.current?.kind == .dotDot {
                let dots = cursor.current!
                cursor.index += 1
                guard let upperToken = cursor.current, case .number(let upper) = upperToken.kind else {
                    throw LanguageError(cursor.current?.start ?? cursor.endPosition, "expected an integer after `..` to end the range")
                }
                cursor.index += 1
                guard let lo = exactInt(value) else {
                    throw LanguageError(token.start, "a range needs whole numbers; `\(formatNumber(value))` is not one")
                }
                guard let hi = exactInt(upper) else {
                    throw LanguageError(upperToken.start, "a range needs whole numbers; `\(formatNumber(upper))` is not one")
                }
                guard lo <= hi else {
                    throw LanguageError(dots.start, "the range \(lo)..\(hi) is empty; ranges are inclusive and ascending")
                }
                let (span, overflow) = hi.subtractingReportingOverflow(lo)
                guard !overflow, span < Self.maximumRangeLength else {
                    throw LanguageError(dots.start, "the range \(lo)..\(hi) is too long: a range holds at most \(Self.maximumRangeLength) numbers")
                }
                return Located(value: .range(lo, hi), position: token.start)
            }
            return Located(value: .number(value), position: token.start)
        case .string(let text):
            return Located(value: .string(text), position: token.start)
        case .name(let name):
            if name == "true" { return Located(value: .bool(true), position: token.start) }
            if name == "false" { return Located(value: .bool(false), position: token.start) }
            if cursor.current?.kind == .leftParen { return try parseCall(Located(value: name, position: token.start), &cursor) }
            return Located(value: .name(name), position: token.start)
        case .leftBracket:
            cursor.depth += 1
            defer { cursor.depth -= 1 }
            guard cursor.depth <= Self.maximumNesting else {
                throw LanguageError(token.start, "lists nest more than \(Self.maximumNesting) deep here")
            }
            var items: [Located<Expr>] = []
            if cursor.current?.kind == .rightBracket {
                cursor.index += 1
                return Located(value: .list(items), position: token.start)
            }
            while true {
                items.append(try parseExpression(&cursor))
                guard let separator = cursor.current else {
                    throw LanguageError(cursor.endPosition, "expected `,` or `]` to continue the list opened at line \(token.start.line), column \(token.start.column)",
                                        kind: cursor.insideOpenList ? .incomplete : .syntax)
                }
                cursor.index += 1
                if separator.kind == .rightBracket { break }
                guard separator.kind == .comma else {
                    throw LanguageError(separator.start, "expected `,` or `]` in the list, found \(describe(separator.kind))")
                }
            }
            return Located(value: .list(items), position: token.start)
        default:
            throw LanguageError(token.start, "expected a value (a number, a string, a list, a range or a name), found \(describe(token.kind))")
        }
    }

    /// `name(a, b, …)` with the cursor at `(`: the arguments are expressions, as list items are.
    private func parseCall(_ name: Located<String>, _ cursor: inout TokenCursor) throws -> Located<Expr> {
        let open = cursor.current!
        cursor.index += 1
        cursor.depth += 1
        defer { cursor.depth -= 1 }
        guard cursor.depth <= Self.maximumNesting else {
            throw LanguageError(open.start, "lists and calls nest more than \(Self.maximumNesting) deep here")
        }
        var arguments: [Located<Expr>] = []
        if cursor.current?.kind == .rightParen {
            cursor.index += 1
            return Located(value: .call(name, arguments), position: name.position)
        }
        while true {
            arguments.append(try parseExpression(&cursor))
            guard let separator = cursor.current else {
                throw LanguageError(cursor.endPosition, "expected `,` or `)` to continue the arguments of `\(name.value)(` opened at line \(open.start.line), column \(open.start.column)",
                                    kind: cursor.insideOpenList ? .incomplete : .syntax)
            }
            cursor.index += 1
            if separator.kind == .rightParen { break }
            guard separator.kind == .comma else {
                throw LanguageError(separator.start, "expected `,` or `)` in the arguments of `\(name.value)(`, found \(describe(separator.kind))")
            }
        }
        return Located(value: .call(name, arguments), position: name.position)
    }
}

private struct TokenCursor {
    var tokens: [Token]
    var index = 0
    var endPosition: SourcePosition
    /// Whether the statement ends because the input does (not at a newline).
    var endsInput: Bool
    /// How many lists and calls enclose the current token.
    var depth = 0
    /// The input stops inside a list or a call: more lines may close it (the lexer reads newlines in a list as blanks).
    var insideOpenList: Bool { depth > 0 && atEnd && endsInput }
    var current: Token? { index < tokens.count ? tokens[index] : nil }
    var atEnd: Bool { index >= tokens.count }
    func peek(_ ahead: Int) -> Token? { index + ahead < tokens.count ? tokens[index + ahead] : nil }
}

func describe(_ kind: TokenKind) -> String {
    switch kind {
    case .number(let v): return "the number `\(formatNumber(v))`"
    case .string: return "a string"
    case .name(let n): return "the name `\(n)`"
    case .equals: return "`=`"
    case .dotDot: return "`..`"
    case .comma: return "`,`"
    case .leftBracket: return "`[`"
    case .rightBracket: return "`]`"
    case .leftParen: return "`(`"
    case .rightParen: return "`)`"
    case .newline: return "the end of the line"
    case .end: return "the end of the input"
    }
}

/// The Int a Double holds exactly, if any.
func exactInt(_ value: Double) -> Int? {
    guard value.isFinite, value == value.rounded(), abs(value) < 9.0e15 else { return nil }
    return Int(value)
}

/// The shortest text that reads back as the same Double; integers without a decimal point.
public func formatNumber(_ value: Double) -> String {
    if let int = exactInt(value) { return String(int) }
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    return value.description
}
