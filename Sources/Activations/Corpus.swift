// Module Activations: corpus reading, context windows, activation stores, harvesting, shuffled reading,
// splice evaluation, top-activating tokens and the logit lens (../shared/design/nsae.md §2, §4, §5).
import Foundation

/// An error about the user's input to this module: a bad corpus, store, shape or option. The message says what.
public struct ActivationsError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A text corpus read as a stream of documents, so a corpus larger than RAM can be windowed.
///
/// - a folder: every `.txt` file in it or in its subfolders, in order of path relative to the folder; by default
///   each file is one document, its text exactly as stored (the Python documentation's `_sources` tree is one such
///   corpus: a reST `::` and its code block share a document).
/// - `.txt`: by default documents separated by one or more blank lines (a line that is empty or only whitespace); a
///   document's text is its lines joined by "\n".
/// - `.jsonl`: one document per line, the string at `field` (default "text"); blank lines are skipped.
///
/// `split` overrides the text rule: `.file` (a file is a document), `.blank` (blank-line separated), `.line` (every
/// line that is not blank is a document).
public struct Corpus: Sendable {
    public enum Kind: Sendable, Equatable { case text, jsonl(field: String), folder }
    /// How a text file is cut into documents.
    public enum Split: String, Sendable, CaseIterable { case file, blank, line }
    public let path: String
    public let kind: Kind
    /// nil for .jsonl (one record is one document).
    public let split: Split?
    /// Whether the literal `<|endoftext|>` in the text is read as the special token 50256 (Hugging Face's and
    /// TransformerLens's tokenization) rather than as text (the default, tiktoken's `encode_ordinary`).
    public var specialTokens = false

    /// `split` nil takes the default: `.file` for a folder, `.blank` for a .txt file.
    public init(path: String, jsonField: String = "text", split: Split? = nil) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ActivationsError("corpus \(path): no such file or folder")
        }
        self.path = path
        if isDir.boolValue { kind = .folder }
        else if path.lowercased().hasSuffix(".jsonl") { kind = .jsonl(field: jsonField) }
        else { kind = .text }
        switch kind {
        case .jsonl:
            if let split { throw ActivationsError("corpus \(path): split=\(split.rawValue) applies to text files and folders; a .jsonl corpus has one document per record") }
            self.split = nil
        case .folder: self.split = split ?? .file
        case .text: self.split = split ?? .blank
        }
    }

    /// Calls `body` with each document in order; `body` returns false to stop early.
    public func forEachDocument(_ body: (String) throws -> Bool) throws {
        let documents = try makeDocumentReader()
        while let text = try documents.next() { if try !body(text) { return } }
    }

    /// All documents (small corpora and tests only).
    public func documents() throws -> [String] {
        var out: [String] = []
        try forEachDocument { out.append($0); return true }
        return out
    }

    /// A reader handing out one document at a time; it holds one line buffer, never the corpus.
    public func makeDocumentReader() throws -> CorpusDocumentReader {
        switch kind {
        case .text: return CorpusDocumentReader(files: [path], rule: .text(split ?? .blank))
        case .jsonl(let field): return CorpusDocumentReader(files: [path], rule: .json(field: field))
        case .folder:
            let files = try Corpus.textFiles(under: path)
            guard !files.isEmpty else { throw ActivationsError("corpus \(path): folder holds no .txt files (searched its subfolders too)") }
            return CorpusDocumentReader(files: files.map { (path as NSString).appendingPathComponent($0) },
                                        rule: .text(split ?? .file))
        }
    }

    /// Relative paths of the `.txt` files at any depth under `folder`, sorted (byte order, as `sorted()` in Python).
    static func textFiles(under folder: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else {
            throw ActivationsError("corpus \(folder): cannot list folder")
        }
        var files: [String] = []
        while let relative = walker.nextObject() as? String {
            guard relative.lowercased().hasSuffix(".txt") else { continue }
            var isDir: ObjCBool = false
            let full = (folder as NSString).appendingPathComponent(relative)
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue { files.append(relative) }
        }
        return files.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

/// Streams documents out of one or more files (see `Corpus` for the rules).
public final class CorpusDocumentReader {
    enum Rule { case text(Corpus.Split), json(field: String) }
    private var files: [String]
    private let rule: Rule
    private var reader: LineReader?
    private var currentFile = ""
    private var lineNumber = 0

    init(files: [String], rule: Rule) {
        self.files = files.reversed()
        self.rule = rule
    }

    /// The next document, or nil at the end of the corpus.
    public func next() throws -> String? {
        while true {
            if reader == nil {
                guard let file = files.popLast() else { return nil }
                if case .text(.file) = rule { return try Self.wholeFile(file) }
                reader = try LineReader(path: file)
                currentFile = file
                lineNumber = 0
            }
            let document: String?
            switch rule {
            case .json(let field): document = try nextJSONDocument(field: field)
            case .text(.line): document = nextLineDocument()
            default: document = nextTextDocument()
            }
            if let document { return document }
            reader = nil
        }
    }

    /// A file's text exactly as stored (invalid UTF-8 becomes U+FFFD, as Python's `errors="replace"`).
    private static func wholeFile(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ActivationsError("\(path): cannot read: \(String(cString: strerror(errno)))")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private func nextLineDocument() -> String? {
        while let line = reader!.next() {
            if !line.allSatisfy({ $0.isWhitespace }) { return line }
        }
        return nil
    }

    private func nextTextDocument() -> String? {
        var lines: [String] = []
        while let line = reader!.next() {
            if line.allSatisfy({ $0.isWhitespace }) {
                if !lines.isEmpty { break }
            } else {
                lines.append(line)
            }
        }
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }

    private func nextJSONDocument(field: String) throws -> String? {
        while let line = reader!.next() {
            lineNumber += 1
            if line.allSatisfy({ $0.isWhitespace }) { continue }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) } catch {
                throw ActivationsError("corpus \(currentFile) line \(lineNumber): not valid JSON")
            }
            guard let record = object as? [String: Any] else {
                throw ActivationsError("corpus \(currentFile) line \(lineNumber): not a JSON object")
            }
            guard let text = record[field] as? String else {
                let keys = record.keys.sorted().joined(separator: ", ")
                throw ActivationsError("corpus \(currentFile) line \(lineNumber): no string field '\(field)' (fields: \(keys))")
            }
            return text
        }
        return nil
    }
}

/// Reads a file line by line through a fixed buffer (memory independent of the file size). Lines are split on
/// "\n"; a trailing "\r" is kept, since GPT-2 tokenizes it like any other character.
final class LineReader {
    private let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutablePointer<CChar>? = nil
    private var capacity = 0

    init(path: String) throws {
        guard let f = fopen(path, "rb") else {
            throw ActivationsError("\(path): cannot open: \(String(cString: strerror(errno)))")
        }
        file = f
    }

    deinit {
        free(buffer)
        fclose(file)
    }

    func next() -> String? {
        let n = getline(&buffer, &capacity, file)
        guard n >= 0, let buffer else { return nil }
        var length = n
        if length > 0 && buffer[length - 1] == 0x0A { length -= 1 }
        return buffer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }
}
