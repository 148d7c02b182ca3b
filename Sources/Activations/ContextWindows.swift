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

/// The pinned windowing rule of design §5 (SAELens-like, so harvests are reproducible elsewhere):
/// each document is tokenized without BOS; the documents' ids are joined with 50256 between consecutive documents;
/// the stream is cut into consecutive pieces of T−1 tokens, each prefixed with 50256, so every window has T tokens
/// and starts with BOS; a last partial piece is dropped; `maxTokens = N` stops after the first ⌊N/T⌋ windows.
///
/// Streaming: documents are read and tokenized only as windows are requested.
public struct ContextWindows {
    public let contextLength: Int
    public let maxWindows: Int?
    private let tokenize: (String) throws -> [Int32]
    private var pendingTokens: [Int32] = []
    private var pendingDocs: [Int32] = []
    private var pendingPositions: [Int32] = []
    /// Tokens before this index in the pending arrays were already handed out (compacted now and then, so a huge
    /// document does not make every window cost a shift of the whole buffer).
    private var pendingStart = 0
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
        let piece = contextLength - 1
        while pendingTokens.count - pendingStart < piece {
            guard let text = try documents.next() else { return nil }  // the last partial piece is dropped
            if documentsSeen > 0 {
                pendingTokens.append(endOfTextToken); pendingDocs.append(-1); pendingPositions.append(-1)
            }
            let ids = try tokenize(text)
            let doc = Int32(documentsSeen)
            pendingTokens.append(contentsOf: ids)
            pendingDocs.append(contentsOf: repeatElement(doc, count: ids.count))
            pendingPositions.append(contentsOf: (0..<Int32(ids.count)))
            documentsSeen += 1
        }
        var window = TokenWindow(tokens: [endOfTextToken], documentIndex: [-1], position: [-1])
        let taken = pendingStart..<(pendingStart + piece)
        window.tokens.append(contentsOf: pendingTokens[taken])
        window.documentIndex.append(contentsOf: pendingDocs[taken])
        window.position.append(contentsOf: pendingPositions[taken])
        pendingStart += piece
        if pendingStart > 4096 && pendingStart * 2 > pendingTokens.count {
            pendingTokens.removeFirst(pendingStart); pendingDocs.removeFirst(pendingStart)
            pendingPositions.removeFirst(pendingStart)
            pendingStart = 0
        }
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
