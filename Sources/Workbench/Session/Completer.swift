import Foundation

// Completion, inspection and completeness: one implementation shared by the REPL (readline) and the kernel.

extension Session {
    public func complete(_ code: String, cursor: Int) -> Completion {
        let scalars = Array(code.unicodeScalars)
        let cursor = max(0, min(cursor, scalars.count))
        let statementStart = Session.logicalLineStart(scalars, before: cursor)
        let prefix = Array(scalars[statementStart..<cursor])

        if let quote = Session.openQuote(prefix) {
            let typed = String(String.UnicodeScalarView(prefix[(quote + 1)...]))
            let start = statementStart + quote + 1
            return Completion(matches: Session.pathCompletions(typed), start: start, end: cursor)
        }

        var wordStart = prefix.count
        while wordStart > 0, isNameContinue(prefix[wordStart - 1]) { wordStart -= 1 }
        let word = String(String.UnicodeScalarView(prefix[wordStart...]))
        let before = Session.words(Array(prefix[..<wordStart]))
        let start = statementStart + wordStart
        func result(_ candidates: [String]) -> Completion {
            let matches = candidates.filter { $0.hasPrefix(word) }
            var seen = Set<String>()
            return Completion(matches: matches.filter { seen.insert($0).inserted }, start: start, end: cursor)
        }

        var head = before
        if head.count >= 2, head[1] == "=" { head.removeFirst(2) }
        guard let verbName = head.first else {
            return result(verbNames + boundNames)
        }
        guard let verb = registry.verb(named: verbName) else {
            return result([])
        }
        // Directly after `key=`: the option's values.
        if wordStart > 0, prefix[wordStart - 1] == "=", head.count >= 2, head[head.count - 1] == "=" {
            let key = head[head.count - 2]
            guard let option = verb.options.first(where: { $0.name == key }) else { return result([]) }
            return result(candidates(for: option.kind))
        }
        let usedOptions = Set(head.indices.dropFirst().compactMap { i in i + 1 < head.count && head[i + 1] == "=" ? head[i] : nil })
        let optionCount = usedOptions.count
        let positionalCount = head.count - 1 - optionCount * 3
        var candidates: [String] = []
        if optionCount == 0, positionalCount >= 0 {
            if positionalCount < verb.positionals.count {
                candidates += self.candidates(for: verb.positionals[positionalCount].kind)
            } else if verb.variadic, let last = verb.positionals.last {
                candidates += self.candidates(for: last.kind)
            }
        }
        // From the declaration: required options first, then the rest; not one already given, nor another member of
        // a group one of whose members is given, nor an option of another form (`load text` offers no processing=).
        let form = head.count >= 2 && verb.formWords?.contains(head[1]) == true ? head[1] : nil
        let open = verb.options.filter { option in
            if usedOptions.contains(option.name) { return false }
            if let group = verb.group(of: option.name), group.names.contains(where: usedOptions.contains) { return false }
            if let form, let only = option.onlyFor, !only.contains(form) { return false }
            return true
        }
        candidates += (open.filter(\.required) + open.filter { !$0.required }).map { $0.name + "=" }
        return result(candidates)
    }

    private func candidates(for kind: ParameterKind) -> [String] {
        switch kind {
        case .word(let choices), .pathOrWord(let choices), .hookName(let choices): return choices
        case .verbName: return verbNames
        case .object(let type): return boundNames.filter { value(named: $0)?.typeName == type }
        case .objects(let types): return boundNames.filter { value(named: $0).map { types.contains($0.typeName) } ?? false }
        case .value, .number, .integer, .string, .path, .layers, .numbers: return boundNames
        case .bool: return ["true", "false"]
        case .column: return []
        }
    }

    public func inspect(_ code: String, cursor: Int) -> MimeBundle? {
        let scalars = Array(code.unicodeScalars)
        let cursor = max(0, min(cursor, scalars.count))
        var lo = cursor, hi = cursor
        while lo > 0, isNameContinue(scalars[lo - 1]) { lo -= 1 }
        while hi < scalars.count, isNameContinue(scalars[hi]) { hi += 1 }
        let word = String(String.UnicodeScalarView(scalars[lo..<hi]))
        guard !word.isEmpty else { return nil }
        if let verb = registry.verb(named: word) {
            return MimeBundle(["text/plain": HelpText.verb(verb)])
        }
        if let value = value(named: word) {
            var bundle = Rendering.bundle(value)
            bundle.data["text/plain"] = "\(word): \(value.typeName) — \(value.summary)\n" + bundle.plain
            return bundle
        }
        return nil
    }

    public func isComplete(_ code: String) -> Completeness {
        var parser = Parser(code, isVerb: { self.registry.verb(named: $0) != nil })
        do {
            _ = try parser.parseAll()
            return .complete
        } catch let error as LanguageError {
            return error.kind == .incomplete ? .incomplete(indent: "") : .invalid
        } catch {
            return .invalid
        }
    }

    /// The offset where the statement holding `cursor` starts. It follows the lexer's rule for where a statement
    /// ends: a newline outside strings and `[…]`, not after a continuation `\\`.
    static func logicalLineStart(_ scalars: [Unicode.Scalar], before cursor: Int) -> Int {
        var start = 0
        var inString = false, inComment = false
        var depth = 0
        var lastNonBlank: Unicode.Scalar?
        var i = 0
        while i < cursor {
            let c = scalars[i]
            if inString {
                if c == "\\" { i += 2; continue }
                if c == "\"" { inString = false }
            } else if inComment {
                if c == "\n" { inComment = false; continue }
            } else {
                switch c {
                case "\"": inString = true
                case "#": inComment = true
                case "[": depth += 1
                case "]": depth = max(0, depth - 1)
                case "\n":
                    if depth == 0 && lastNonBlank != "\\" { start = i + 1 }
                default: break
                }
            }
            if !inComment, c != " ", c != "\t", c != "\r", c != "\n" || inString { lastNonBlank = c }
            if c == "\n", !inString { lastNonBlank = nil }
            i += 1
        }
        return start
    }

    /// The index of the quote that opens an unterminated string in `prefix`, if any (comments skipped).
    static func openQuote(_ prefix: [Unicode.Scalar]) -> Int? {
        var open: Int?
        var i = 0
        while i < prefix.count {
            let c = prefix[i]
            if let _ = open {
                if c == "\\" { i += 2; continue }
                if c == "\"" { open = nil }
            } else if c == "\"" {
                open = i
            } else if c == "#" {
                return nil
            }
            i += 1
        }
        return open
    }

    /// A rough word split (names, `=`, and other punctuation) good enough to find the verb and options typed so far.
    static func words(_ scalars: [Unicode.Scalar]) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        var inString = false
        var i = 0
        func flush() { if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() } }
        while i < scalars.count {
            let c = scalars[i]
            if inString {
                if c == "\\" { i += 1 } else if c == "\"" { inString = false; words.append("\"…\"") }
            } else if c == "\"" {
                flush(); inString = true
            } else if c == "=" {
                flush(); words.append("=")
            } else if c == " " || c == "\t" || c == "\\" || c == "\n" || c == "," || c == "[" || c == "]" {
                flush()
            } else if c == "#" {
                break
            } else {
                current.append(c)
            }
            i += 1
        }
        flush()
        return words
    }

    /// File and folder names starting with `typed` (folders end in "/"); `~` is expanded for listing only.
    static func pathCompletions(_ typed: String) -> [String] {
        if let slash = typed.lastIndex(of: "/") {
            let dirTyped = String(typed[...slash])
            let directory = dirTyped.hasPrefix("~") ? NSString(string: dirTyped).expandingTildeInPath : dirTyped
            let partial = String(typed[typed.index(after: slash)...])
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "/" : directory)) ?? []
            return names.filter { $0.hasPrefix(partial) && (partial.hasPrefix(".") || !$0.hasPrefix(".")) }.sorted().map { name in
                let full = (directory as NSString).appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory)
                return dirTyped + name + (isDirectory.boolValue ? "/" : "")
            }
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: ".")) ?? []
        return names.filter { $0.hasPrefix(typed) && (typed.hasPrefix(".") || !$0.hasPrefix(".")) }.sorted().map { name in
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: name, isDirectory: &isDirectory)
            return name + (isDirectory.boolValue ? "/" : "")
        }
    }
}
