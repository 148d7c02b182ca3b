/// The inputs (and text outputs) of this kernel process, answering history_request's tail, range and search.
/// Line numbers are execution counts. There is one session per kernel process, numbered `sessionNumber`; requests
/// may also name it as 0 or as a negative offset (-1 = the previous session, which this kernel never has).
public struct History: Sendable {
    public struct Entry: Sendable, Equatable {
        public var line: Int
        public var input: String
        public var output: String?
    }

    public let sessionNumber = 1
    public private(set) var entries: [Entry] = []

    public init() {}

    public mutating func record(line: Int, input: String) {
        entries.append(Entry(line: line, input: input, output: nil))
    }

    public mutating func recordOutput(line: Int, output: String) {
        if let i = entries.lastIndex(where: { $0.line == line }) { entries[i].output = output }
    }

    /// The last `n` entries.
    public func tail(_ n: Int) -> [Entry] { Array(entries.suffix(max(0, n))) }

    /// Lines `start ..< stop` of `session` (stop nil = to the end). Negative start/stop count from the end, as in
    /// IPython.
    public func range(session: Int, start: Int, stop: Int?) -> [Entry] {
        guard session == 0 || session == sessionNumber else { return [] }
        let last = (entries.last?.line ?? 0) + 1
        let from = start < 0 ? last + start : start
        let to = stop.map { $0 < 0 ? last + $0 : $0 } ?? last
        return entries.filter { $0.line >= from && $0.line < to }
    }

    /// Inputs matching the glob `pattern` as a whole; with `unique` only the latest of equal inputs; the last `n`
    /// when `n` is given.
    public func search(pattern: String, n: Int?, unique: Bool) -> [Entry] {
        let glob = Array(pattern.unicodeScalars)
        var found = entries.filter { Glob.matches(glob, Array($0.input.unicodeScalars)) }
        if unique {
            var seen = Set<String>()
            found = found.reversed().filter { seen.insert($0.input).inserted }.reversed()
        }
        if let n, n > 0 { found = Array(found.suffix(n)) }
        return found
    }
}

/// Shell-style glob matching (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`), the pattern language of history search.
enum Glob {
    static func matches(_ pattern: [Unicode.Scalar], _ text: [Unicode.Scalar]) -> Bool {
        // Iterative matcher with single-star backtracking: linear for typical patterns, never recursive.
        var p = 0, t = 0
        var starP = -1, starT = 0
        while t < text.count {
            if p < pattern.count {
                let c = pattern[p]
                if c == "*" { starP = p; starT = t; p += 1; continue }
                if c == "?" { p += 1; t += 1; continue }
                if c == "[", let (matched, next) = matchClass(pattern, p, text[t]) {
                    if matched { p = next; t += 1; continue }
                } else if c == text[t] { p += 1; t += 1; continue }
            }
            guard starP >= 0 else { return false }
            p = starP + 1
            starT += 1
            t = starT
        }
        while p < pattern.count && pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }

    /// Matches `ch` against the bracket class starting at `pattern[open]`; nil when the bracket is not closed
    /// (then `[` is an ordinary character).
    static func matchClass(_ pattern: [Unicode.Scalar], _ open: Int, _ ch: Unicode.Scalar) -> (Bool, Int)? {
        var i = open + 1
        var negate = false
        if i < pattern.count && (pattern[i] == "!" || pattern[i] == "^") { negate = true; i += 1 }
        var matched = false
        var first = true
        while i < pattern.count {
            let c = pattern[i]
            if c == "]" && !first { return (matched != negate, i + 1) }
            first = false
            if i + 2 < pattern.count && pattern[i + 1] == "-" && pattern[i + 2] != "]" {
                if c.value <= ch.value && ch.value <= pattern[i + 2].value { matched = true }
                i += 3
            } else {
                if c == ch { matched = true }
                i += 1
            }
        }
        return nil
    }
}
