import Workbench

// The parts of the REPL that do not need a terminal: joining continued lines into statements, and mapping the
// shared completer's answer (Unicode scalars over the whole statement) onto readline's word (bytes of one line).

/// Joins entered lines into statements: a line that leaves the statement incomplete (an open string, a trailing
/// `\`) continues on the next line, as in `nsae run` and the kernel's is_complete.
struct StatementBuffer {
    private(set) var pending = ""
    let isComplete: (String) -> Completeness

    init(isComplete: @escaping (String) -> Completeness) { self.isComplete = isComplete }

    /// Adds one entered line; returns the whole statement once it is complete, nil while it continues.
    mutating func add(_ line: String) -> String? {
        pending += line
        if case .incomplete = isComplete(pending) {
            pending += "\n"
            return nil
        }
        defer { pending = "" }
        return pending
    }

    /// What was entered before the current line of a continued statement (the completer sees all of it).
    var precedingText: String { pending }
    var isContinuing: Bool { !pending.isEmpty }
    mutating func clear() { pending = "" }
}

enum CompletionGlue {
    /// The completer's cursor (Unicode scalars into the whole statement) for readline's point, a byte offset
    /// into the current line.
    static func statementCursor(precedingText: String, line: String, pointByte: Int) -> Int {
        precedingText.unicodeScalars.count + scalarCount(line, bytes: pointByte)
    }

    /// The matches readline should insert for its word, which starts at byte `wordStartByte` of `line`: the
    /// completer's matches re-based from where the completer's word starts to where readline's does (they differ
    /// when the completer breaks words at other characters). `suppressAppend`: no space after a lone `key=` or a
    /// directory, so typing goes on inside it.
    static func readlineMatches(_ completion: Completion, precedingText: String, line: String,
                                wordStartByte: Int) -> (matches: [String], suppressAppend: Bool) {
        guard !completion.matches.isEmpty else { return ([], false) }
        let precedingCount = precedingText.unicodeScalars.count
        let lineScalars = Array(line.unicodeScalars)
        let wordStart = scalarCount(line, bytes: wordStartByte)
        let ourStart = completion.start - precedingCount
        var matches = completion.matches
        if ourStart > wordStart, ourStart <= lineScalars.count {
            let prefix = String(String.UnicodeScalarView(lineScalars[wordStart..<ourStart]))
            matches = matches.map { prefix + $0 }
        } else if ourStart < wordStart {
            let drop = wordStart - ourStart
            matches = matches.map { String(String.UnicodeScalarView($0.unicodeScalars.dropFirst(drop))) }
        }
        let suppress = matches.count == 1 && (matches[0].hasSuffix("=") || matches[0].hasSuffix("/"))
        return (matches, suppress)
    }

    /// The longest common prefix, in Unicode scalars (readline's first entry: what it inserts when ambiguous).
    static func commonPrefix(_ words: [String]) -> String {
        guard var prefix = words.first.map({ Array($0.unicodeScalars) }) else { return "" }
        for word in words.dropFirst() {
            let scalars = Array(word.unicodeScalars)
            var n = 0
            while n < prefix.count, n < scalars.count, prefix[n] == scalars[n] { n += 1 }
            prefix = Array(prefix[0..<n])
        }
        return String(String.UnicodeScalarView(prefix))
    }

    /// Unicode scalars in the first `bytes` UTF-8 bytes of `text` (a cut inside a character counts what decodes).
    static func scalarCount(_ text: String, bytes: Int) -> Int {
        let utf8 = Array(text.utf8)
        return String(decoding: utf8[0..<min(max(0, bytes), utf8.count)], as: UTF8.self).unicodeScalars.count
    }
}
