import Foundation
import Tensor
import Synchronization

/// GPT-2's byte-level BPE tokenizer, exactly: pre-tokenize (PreTokenizer), map each piece to its UTF-8 bytes, merge
/// adjacent tokens by rank, map to ids. A literal "<|endoftext|>" in text is ordinary text; id 50256 is only ever
/// added by the caller (as BOS or document separator).
public final class Tokenizer: Sendable {
    public static let endOfText: Int32 = 50256

    /// Bytes of every token id (id 50256 is the literal bytes of "<|endoftext|>").
    private let tokenByteStrings: [[UInt8]]
    /// Whole token byte string -> id.
    private let vocab: ByteStringTable
    /// (left id, right id) -> (rank << 32 | merged id).
    private let merges: [UInt64: UInt64]
    private let byteTokens: [Int32]
    private let pieceCache = Mutex(PieceCache())

    public var vocabSize: Int { tokenByteStrings.count }

    /// Loads a tokenizer from a folder holding `vocab.json` + `merges.txt` (Hugging Face), `encoder.json` +
    /// `vocab.bpe` (OpenAI), or llm.c's `gpt2_tokenizer.bin` (whose merges are implied: rank = id).
    /// The tokenizer in `folder`, nil when the folder has no tokenizer files at all; files that are there but
    /// damaged are an error naming the file, never taken for "no tokenizer".
    public static func loadIfPresent(folder: String) throws -> Tokenizer? {
        let names = ["vocab.json", "merges.txt", "encoder.json", "vocab.bpe", "tokenizer.json", "gpt2_tokenizer.bin"]
        guard names.contains(where: { FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent($0)) }) else {
            return nil
        }
        return try load(folder: folder)
    }

    public static func load(folder: String) throws -> Tokenizer {
        let fm = FileManager.default
        func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        if fm.fileExists(atPath: path("vocab.json")) && fm.fileExists(atPath: path("merges.txt")) {
            return try Tokenizer(vocabPath: path("vocab.json"), mergesPath: path("merges.txt"))
        }
        if fm.fileExists(atPath: path("encoder.json")) && fm.fileExists(atPath: path("vocab.bpe")) {
            return try Tokenizer(vocabPath: path("encoder.json"), mergesPath: path("vocab.bpe"))
        }
        if fm.fileExists(atPath: path("tokenizer.json")) {
            return try Tokenizer(huggingFaceTokenizerJSON: path("tokenizer.json"))
        }
        if fm.fileExists(atPath: path("gpt2_tokenizer.bin")) {
            return try Tokenizer(llmcPath: path("gpt2_tokenizer.bin"))
        }
        throw GPT2Error("\(folder): no tokenizer files (a complete set: looked for vocab.json + merges.txt, encoder.json + vocab.bpe, tokenizer.json, gpt2_tokenizer.bin)")
    }

    /// Reads a vocabulary (JSON object: token string -> id) and a merges list (optional `#version` line, then one
    /// "left right" pair per line, in rank order).
    public convenience init(vocabPath: String, mergesPath: String) throws {
        let vocabData: Data
        do { vocabData = try Data(contentsOf: URL(fileURLWithPath: vocabPath)) } catch {
            throw GPT2Error("\(vocabPath): cannot read vocabulary: \(error.localizedDescription)")
        }
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: vocabData) } catch {
            throw GPT2Error("\(vocabPath): the vocabulary is not valid JSON (\(error.localizedDescription))")
        }
        guard let dict = obj as? [String: Any] else {
            throw GPT2Error("\(vocabPath): the vocabulary is not a JSON object of token string -> id")
        }
        guard let text = try? String(contentsOfFile: mergesPath, encoding: .utf8) else {
            throw GPT2Error("\(mergesPath): cannot read merges as UTF-8 text")
        }
        var pairs: [(String, String)] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("#version") || line.isEmpty { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw GPT2Error("\(mergesPath): line \(n + 1) is not two tokens separated by a space: '\(line)'") }
            pairs.append((String(parts[0]), String(parts[1])))
        }
        try self.init(vocab: dict, merges: pairs, vocabSource: vocabPath, mergesSource: mergesPath)
    }

    /// Reads a Hugging Face `tokenizer.json` (a byte-level BPE model: `model.vocab` and `model.merges`, the merges as
    /// "left right" strings or as [left, right] pairs). Its added tokens beyond the vocabulary are ignored.
    public convenience init(huggingFaceTokenizerJSON path: String) throws {
        guard let data = FileManager.default.contents(atPath: path),
              let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw GPT2Error("\(path): cannot read as JSON")
        }
        guard let model = root["model"] as? [String: Any], let vocab = model["vocab"] as? [String: Any],
              let merges = model["merges"] as? [Any] else {
            throw GPT2Error("\(path): no BPE model (expected model.vocab and model.merges)")
        }
        if let type = model["type"] as? String, type != "BPE" { throw GPT2Error("\(path): model type '\(type)' is not BPE") }
        var pairs: [(String, String)] = []
        for (n, m) in merges.enumerated() {
            if let s = m as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw GPT2Error("\(path): merge \(n + 1) '\(s)' is not two tokens separated by a space") }
                pairs.append((String(parts[0]), String(parts[1])))
            } else if let a = m as? [String], a.count == 2 {
                pairs.append((a[0], a[1]))
            } else {
                throw GPT2Error("\(path): merge \(n + 1) is neither \"left right\" nor [left, right]")
            }
        }
        try self.init(vocab: vocab, merges: pairs, vocabSource: path, mergesSource: path)
    }

    private convenience init(vocab dict: [String: Any], merges pairs: [(String, String)], vocabSource: String,
                             mergesSource: String) throws {
        var strings = [[UInt8]?](repeating: nil, count: dict.count)
        for (token, value) in dict {
            guard let id = CheckedSize.exactInt(value), id >= 0, id < dict.count else {
                throw GPT2Error("\(vocabSource): token '\(token)' has id \(value), expected 0..<\(dict.count)")
            }
            guard let bytes = ByteLevel.bytes(ofTokenString: token) else {
                throw GPT2Error("\(vocabSource): token '\(token)' uses a character outside GPT-2's byte-level alphabet")
            }
            if strings[id] != nil { throw GPT2Error("\(vocabSource): id \(id) is used twice") }
            strings[id] = bytes
        }
        let tokens = strings.map { $0! } // ids are 0..<count and distinct, so every slot is filled
        try self.init(tokens: tokens, source: vocabSource) { vocab in
            var merges: [UInt64: UInt64] = [:]
            merges.reserveCapacity(pairs.count)
            for (rank, (l, r)) in pairs.enumerated() {
                guard let lb = ByteLevel.bytes(ofTokenString: l), let rb = ByteLevel.bytes(ofTokenString: r),
                      let li = vocab.lookup(lb), let ri = vocab.lookup(rb), let mi = vocab.lookup(lb + rb) else {
                    throw GPT2Error("\(mergesSource): merge \(rank + 1) '\(l) \(r)' names a token missing from the vocabulary")
                }
                let key = li << 32 | ri
                if merges[key] == nil { merges[key] = UInt64(rank) << 32 | mi }
            }
            return merges
        }
    }

    /// Reads llm.c's `gpt2_tokenizer.bin` (256 int32 header, then per id a length byte and the raw bytes). It has no
    /// merges; for GPT-2 merge i creates token 256+i, so rank = id and the pair table is every split of every token.
    public convenience init(llmcPath: String) throws {
        guard let data = FileManager.default.contents(atPath: llmcPath) else { throw GPT2Error("\(llmcPath): cannot read") }
        guard data.count >= 1024 else { throw GPT2Error("\(llmcPath): \(data.count) bytes, shorter than the 1024-byte header") }
        let header = data.withUnsafeBytes { raw in (0..<4).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) } }
        guard header[0] == 20240328 else { throw GPT2Error("\(llmcPath): magic \(header[0]), expected 20240328 (llm.c tokenizer)") }
        guard header[1] == 1 || header[1] == 2 else { throw GPT2Error("\(llmcPath): version \(header[1]), expected 1 or 2") }
        let count = header[2]
        guard count > 256, count <= 1 << 24 else { throw GPT2Error("\(llmcPath): token count \(count) is not in 257...\(1 << 24)") }
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(count)
        var at = 1024
        let bytes = [UInt8](data)
        for id in 0..<count {
            guard at < bytes.count else { throw GPT2Error("\(llmcPath): truncated at token \(id) of \(count)") }
            let len = Int(bytes[at]); at += 1
            guard at + len <= bytes.count else { throw GPT2Error("\(llmcPath): truncated at token \(id) of \(count)") }
            tokens.append(Array(bytes[at..<(at + len)])); at += len
        }
        try self.init(tokens: tokens, source: llmcPath) { vocab in
            var merges: [UInt64: UInt64] = [:]
            for (id, t) in tokens.enumerated() where t.count >= 2 && id != Int(Tokenizer.endOfText) {
                for k in 1..<t.count {
                    if let l = vocab.lookup(Array(t[..<k])), let r = vocab.lookup(Array(t[k...])) {
                        merges[l << 32 | r] = UInt64(id) << 32 | UInt64(id)
                    }
                }
            }
            return merges
        }
    }

    private init(tokens: [[UInt8]], source: String, merges makeMerges: (ByteStringTable) throws -> [UInt64: UInt64]) throws {
        var table = ByteStringTable(capacity: tokens.count)
        for (id, t) in tokens.enumerated() where table.lookup(t) == nil { table.insert(t, UInt64(id)) }
        var byteIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            guard let id = table.lookup([UInt8(b)]) else { throw GPT2Error("\(source): no token for the single byte \(b)") }
            byteIds[b] = Int32(id)
        }
        tokenByteStrings = tokens
        vocab = table
        byteTokens = byteIds
        merges = try makeMerges(table)
    }

    // MARK: encoding

    /// Token ids of `text`, with no BOS.
    public func encode(_ text: String) -> [Int32] {
        var text = text
        return text.withUTF8 { encode(utf8: $0) }
    }

    /// Token ids of raw UTF-8 bytes.
    public func encode(utf8 s: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(s.count / 3 + 8)
        var scratch: [Int32] = []
        pieceCache.withLock { cache in
            PreTokenizer.split(s) { range in
                let piece = UnsafeBufferPointer(rebasing: s[range])
                if let id = vocab.lookup(piece) { out.append(Int32(truncatingIfNeeded: id)); return }
                if let hit = cache.lookup(piece) { out.append(contentsOf: hit); return }
                bpe(piece, into: &scratch)
                cache.insert(piece, scratch)
                out.append(contentsOf: scratch)
            }
        }
        return out
    }

    /// Merges the bytes of one piece: repeatedly the adjacent pair with the lowest rank (leftmost on ties).
    /// The merge of the adjacent pair (left, right): its rank and the merged token, if the merges have it.
    @inline(__always) private func merge(_ left: Int32, _ right: Int32) -> (rank: UInt64, id: Int32)? {
        guard let m = merges[UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))] else { return nil }
        return (m >> 32, Int32(truncatingIfNeeded: m & 0xFFFF_FFFF))
    }

    /// Byte-pair encoding of one pre-token: repeatedly merge the adjacent pair of lowest rank, the leftmost one
    /// among equals (GPT-2's encoder.py; merging one occurrence at a time gives its result because a merge that uses
    /// a merged token always ranks after the merge that made it).
    ///
    /// Linear-ish in the piece's length: the parts are a doubly linked list over the byte positions and the
    /// candidate pairs a min-heap keyed by (rank, position), so each merge costs O(log n) instead of a rescan of all
    /// pairs and an array removal (which made one 100k-character word take minutes). Heap entries are checked when
    /// popped and dropped if either part has changed since they were pushed.
    private func bpe(_ piece: UnsafeBufferPointer<UInt8>, into parts: inout [Int32]) {
        parts.removeAll(keepingCapacity: true)
        for b in piece { parts.append(byteTokens[Int(b)]) }
        let n = parts.count
        guard n > 1 else { return }
        if n <= 16 {
            // Short pieces, the common case: the direct scan is faster than building the heap.
            while parts.count > 1 {
                var best: (rank: UInt64, at: Int, id: Int32) = (.max, -1, 0)
                for k in 0..<(parts.count - 1) {
                    if let m = merge(parts[k], parts[k + 1]), m.rank < best.rank { best = (m.rank, k, m.id) }
                }
                if best.at < 0 { break }
                parts[best.at] = best.id
                parts.remove(at: best.at + 1)
            }
            return
        }
        var next = Array(1...n)                  // next[i] == n: i is the last part
        var prev = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap<PairCandidate>()
        for i in 0..<(n - 1) {
            if let m = merge(parts[i], parts[i + 1]) { heap.push(PairCandidate(rank: m.rank, left: i, leftToken: parts[i], rightToken: parts[i + 1])) }
        }
        while let top = heap.pop() {
            let i = top.left
            guard alive[i], parts[i] == top.leftToken else { continue }
            let j = next[i]
            guard j < n, parts[j] == top.rightToken, let m = merge(parts[i], parts[j]), m.rank == top.rank else { continue }
            parts[i] = m.id
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0, let left = merge(parts[prev[i]], parts[i]) {
                heap.push(PairCandidate(rank: left.rank, left: prev[i], leftToken: parts[prev[i]], rightToken: parts[i]))
            }
            if next[i] < n, let right = merge(parts[i], parts[next[i]]) {
                heap.push(PairCandidate(rank: right.rank, left: i, leftToken: parts[i], rightToken: parts[next[i]]))
            }
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i = 0
        while i < n { out.append(parts[i]); i = next[i] }
        parts = out
    }

    // MARK: decoding

    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < tokenByteStrings.count else { return [] }
        return tokenByteStrings[Int(id)]
    }

    /// The text of `ids`; invalid UTF-8 (a multi-byte character split across a cut) becomes U+FFFD.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && Int(id) < tokenByteStrings.count { bytes.append(contentsOf: tokenByteStrings[Int(id)]) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A readable piece for tables: the token's text with control characters and partial UTF-8 made visible.
    public func tokenString(_ id: Int32) -> String {
        guard id >= 0 && Int(id) < tokenByteStrings.count else { return "<?\(id)>" }
        let bytes = tokenByteStrings[Int(id)]
        var out = ""
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b < 0x80 {
                switch b {
                case 0x0A: out += "\\n"
                case 0x09: out += "\\t"
                case 0x0D: out += "\\r"
                case 0..<0x20, 0x7F: out += String(format: "\\x%02x", b)
                default: out.unicodeScalars.append(Unicode.Scalar(b))
                }
                i += 1; continue
            }
            let (_, len) = bytes.withUnsafeBufferPointer { PreTokenizer.scalar($0, i) }
            if len > 1 {
                out += String(decoding: bytes[i..<(i + len)], as: UTF8.self); i += len
            } else {
                out += String(format: "\\x%02x", b); i += 1
            }
        }
        return out
    }
}

/// Ids of pieces seen before. Bounded: cleared when it grows past `limit` entries so memory stays flat on huge corpora.
struct PieceCache: Sendable {
    private var table = ByteStringTable(capacity: 4096)
    private var ids: [Int32] = []
    private let limit = 1 << 20

    func lookup(_ piece: UnsafeBufferPointer<UInt8>) -> ArraySlice<Int32>? {
        guard let p = table.lookup(piece) else { return nil }
        let start = Int(p >> 32), count = Int(p & 0xFFFF_FFFF)
        return ids[start..<(start + count)]
    }

    mutating func insert(_ piece: UnsafeBufferPointer<UInt8>, _ tokens: [Int32]) {
        if table.count >= limit { table = ByteStringTable(capacity: 4096); ids.removeAll(keepingCapacity: true) }
        table.insert(piece, UInt64(ids.count) << 32 | UInt64(tokens.count))
        ids.append(contentsOf: tokens)
    }
}

/// A candidate merge, ordered by (rank, left position): lowest rank first, leftmost among equals.
private struct PairCandidate: HeapOrdered {
    var rank: UInt64; var left: Int; var leftToken: Int32; var rightToken: Int32
    static func heapBelow(_ a: PairCandidate, _ b: PairCandidate) -> Bool {
        a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
    }
}
