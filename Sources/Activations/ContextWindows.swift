import Foundation

/// GPT-2's `<|endoftext|>`, used as BOS at position 0 of every window and as the separator between documents.
public let endOfTextToken: Int32 = 50256

/// One context window of T tokens, with where each token came from.
public struct TokenWindow: Sendable, Equatable {
    public var tokens: [Int32]
    /// Index of the document (0-based, in corpus order) each token came from; -1 for BOS and separator tokens.
    public var documentIndex: [Int32]
    /// Offset of each token within its document's token ids; -1 for BOS and separator tokens.
    public var position: [Int32]

    public init(tokens: [Int32], documentIndex: [Int32]? = nil, position: [Int32]? = nil) {
        self.tokens = tokens
        self.documentIndex = documentIndex ?? Array(repeating: -1, count: tokens.count)
        self.position = position ?? Array(repeating: -1, count: tokens.count)
    }
}

/// The pinned windowing rule of design §5, identical to SAELens's `concat_and_batch_sequences` with
/// `begin_batch_token_id = sequence_separator_token_id = 50256` (its GPT-2 defaults, `prepend_bos=True`,
/// `sequence_separator_token="bos"`), so harvests are reproducible elsewhere:
/// each document is tokenized without BOS; a document with no tokens is skipped; the documents' ids are joined with
/// 50256 between consecutive documents; the stream is cut into consecutive windows of T tokens, each starting with
/// 50256 followed by T−1 stream tokens; a separator that would stand right after a window's BOS is dropped (a
/// document that ends exactly at a window's end starts the next window as `[50256, first token, …]`, never
/// `[50256, 50256, …]`); no BOS or separator is added before a token that already is 50256; a last partial window is
/// dropped; `maxTokens = N` stops after the first ⌊N/T⌋ windows.
///
/// Streaming: documents are read and tokenized only as windows are requested.
public struct ContextWindows {
    public let contextLength: Int
    public let maxWindows: Int?
    private let tokenize: (String) throws -> [Int32]
    /// The window being filled; empty when the next token starts a new window.
    private var window = TokenWindow(tokens: [])
    /// The document being cut into windows, and how many of its ids were handed out.
    private var documentIds: [Int32] = []
    private var documentOffset = 0
    private var documents: DocumentPump
    private var documentsSeen = 0
    private var windowsMade = 0

    /// `tokenize` turns a document's text into ids with no BOS (e.g. GPT-2's tokenizer `encode`).
    public init(corpus: Corpus, contextLength: Int, maxTokens: Int? = nil,
                tokenize: @escaping (String) throws -> [Int32]) throws {
        try self.init(documents: try DocumentPump(corpus: corpus), contextLength: contextLength, maxTokens: maxTokens,
                      tokenize: tokenize)
    }

    /// Windows over documents given in memory (tests, notebooks).
    public init(texts: [String], contextLength: Int, maxTokens: Int? = nil,
                tokenize: @escaping (String) throws -> [Int32]) throws {
        try self.init(documents: DocumentPump(texts: texts), contextLength: contextLength, maxTokens: maxTokens,
                      tokenize: tokenize)
    }

    private init(documents: DocumentPump, contextLength: Int, maxTokens: Int?,
                 tokenize: @escaping (String) throws -> [Int32]) throws {
        guard contextLength >= 2 else {
            throw ActivationsError("context length must be at least 2 (BOS plus one token), got \(contextLength)")
        }
        if let maxTokens, maxTokens < contextLength {
            throw ActivationsError("tokens=\(maxTokens) is less than one window of \(contextLength) tokens")
        }
        self.contextLength = contextLength
        self.maxWindows = maxTokens.map { $0 / contextLength }
        self.tokenize = tokenize
        self.documents = documents
    }

    /// The next window, or nil when the corpus (or the token budget) is exhausted.
    public mutating func next() throws -> TokenWindow? {
        if let maxWindows, windowsMade >= maxWindows { return nil }
        let T = contextLength
        while true {
            while documentOffset == documentIds.count {
                guard let text = try documents.next() else { return nil }  // the last partial window is dropped
                documentIds = try tokenize(text)
                documentOffset = 0
                documentsSeen += 1
                // A document continuing a window is preceded by the separator, unless it starts with one already.
                if !window.tokens.isEmpty, let first = documentIds.first, first != endOfTextToken {
                    appendMarker()
                    if window.tokens.count == T { return finishWindow() }
                }
            }
            if window.tokens.isEmpty && documentIds[documentOffset] != endOfTextToken { appendMarker() }
            let take = min(T - window.tokens.count, documentIds.count - documentOffset)
            let doc = Int32(documentsSeen - 1)
            window.tokens.append(contentsOf: documentIds[documentOffset..<(documentOffset + take)])
            window.documentIndex.append(contentsOf: repeatElement(doc, count: take))
            window.position.append(contentsOf: (Int32(documentOffset)..<Int32(documentOffset + take)))
            documentOffset += take
            if window.tokens.count == T { return finishWindow() }
        }
    }

    /// BOS at a window's start or the separator between documents: 50256, from no document.
    private mutating func appendMarker() {
        window.tokens.append(endOfTextToken); window.documentIndex.append(-1); window.position.append(-1)
    }

    private mutating func finishWindow() -> TokenWindow {
        defer { window = TokenWindow(tokens: []) }
        windowsMade += 1
        return window
    }

    /// Up to `count` next windows.
    public mutating func next(count: Int) throws -> [TokenWindow] {
        var out: [TokenWindow] = []
        while out.count < count, let w = try next() { out.append(w) }
        return out
    }

    /// Every window (bounded corpora only).
    public mutating func all() throws -> [TokenWindow] {
        var out: [TokenWindow] = []
        while let w = try next() { out.append(w) }
        return out
    }
}

/// Documents from a corpus reader or from memory.
private enum DocumentPump {
    case reader(CorpusDocumentReader)
    case texts(IndexingIterator<[String]>)

    init(corpus: Corpus) throws { self = .reader(try corpus.makeDocumentReader()) }
    init(texts: [String]) { self = .texts(texts.makeIterator()) }

    mutating func next() throws -> String? {
        switch self {
        case .reader(let r): return try r.next()
        case .texts(var it):
            let t = it.next()
            self = .texts(it)
            return t
        }
    }
}
