// Every error a statement can raise, with the position it points at. Rendering shows the offending line with a
// caret so the message reads the same in the REPL, in scripts and in Jupyter.

public struct LanguageError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Malformed input.
        case syntax
        /// Well-formed but wrong: unknown verb, option or name, wrong argument type, engine failure.
        case runtime
        /// The input stops in the middle of a statement (continuation, unterminated string).
        case incomplete
    }

    public var position: SourcePosition
    public var message: String
    public var kind: Kind

    init(_ position: SourcePosition, _ message: String, kind: Kind = .syntax) {
        self.position = position
        self.message = message
        self.kind = kind
    }

    public var description: String { "line \(position.line), column \(position.column): \(message)" }

    /// The full readable form: where, the source line, a caret under the column, and the message.
    public func rendered(in source: String) -> String {
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        var text = "error at line \(position.line), column \(position.column): \(message)"
        if position.line >= 1, position.line <= lines.count {
            let sourceLine = String(lines[position.line - 1]).replacingTabs()
            let caretPad = String(repeating: " ", count: max(0, position.column - 1))
            text += "\n  \(sourceLine)\n  \(caretPad)^"
        }
        return text
    }
}

extension String {
    /// Tabs become single spaces so the caret lines up with the column count.
    func replacingTabs() -> String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "\t" || $0 == "\r" ? " " : $0 }))
    }
}

/// The nearest candidate to `word` by edit distance, if it is close enough to be a plausible typo.
func nearest(_ word: String, in candidates: [String]) -> String? {
    let lowered = word.lowercased()
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(lowered, candidate.lowercased())
        if best == nil || distance < best!.1 { best = (candidate, distance) }
    }
    guard let (candidate, distance) = best else { return nil }
    let limit = max(1, min(3, (max(word.count, candidate.count) + 1) / 3))
    if distance <= limit || candidate.lowercased().hasPrefix(lowered) && lowered.count >= 2 { return candidate }
    return nil
}

/// Levenshtein distance with adjacent transpositions counted as one edit (optimal string alignment).
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous2 = [Int](repeating: 0, count: y.count + 1)
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
                current[j] = min(current[j], previous2[j - 2] + 1)
            }
        }
        (previous2, previous, current) = (previous, current, previous2)
    }
    return previous[y.count]
}

/// " (did you mean `x`?)" or "".
func didYouMean(_ word: String, _ candidates: [String]) -> String {
    nearest(word, in: candidates).map { " (did you mean `\($0)`?)" } ?? ""
}
