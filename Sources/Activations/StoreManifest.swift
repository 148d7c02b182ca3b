import Foundation
import Tensor

/// One hook point held by a store: its TransformerLens name, its layer and its width.
public struct StoreHook: Codable, Sendable, Equatable {
    public var name: String
    public var layer: Int
    public var d: Int
    public init(name: String, layer: Int, d: Int) { self.name = name; self.layer = layer; self.d = d }

    enum CodingKeys: String, CodingKey { case name, layer, d }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        layer = try c.decodeWholeNumber(forKey: .layer)
        d = try c.decodeWholeNumber(forKey: .d)
    }

    /// The layer number in a name like `blocks.5.hook_mlp_out`, if any.
    public static func layerNumber(in name: String) -> Int? {
        let parts = name.split(separator: ".")
        guard parts.count >= 2, parts[0] == "blocks" else { return nil }
        return Int(parts[1])
    }
}

public struct StoreShardEntry: Codable, Sendable, Equatable {
    public var file: String
    public var rows: Int
    public init(file: String, rows: Int) { self.file = file; self.rows = rows }

    enum CodingKeys: String, CodingKey { case file, rows }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        file = try c.decode(String.self, forKey: .file)
        rows = try c.decodeWholeNumber(forKey: .rows)
    }
}

/// `manifest.json` of an activation store. Rewritten (atomically) after every shard, so it always describes
/// exactly the shards that were finished; `complete` is false for a store whose harvest was interrupted.
public struct StoreManifest: Codable, Sendable, Equatable {
    public static let formatName = "nsae-activation-store"
    public var format = StoreManifest.formatName
    public var version = 1
    public var model: String
    public var hooks: [StoreHook]
    public var dtype: StoreDType
    public var contextLength: Int
    public var tokenCount: Int
    public var bosTokenId: Int32
    public var shards: [StoreShardEntry]
    /// One per hook, over positions whose token is not BOS.
    public var normStats: [NormStats]
    public var complete: Bool
    /// Free-form provenance (corpus path, hook kind, seed, …).
    public var info: [String: String]

    enum CodingKeys: String, CodingKey {
        case format, version, model, hooks, dtype, contextLength = "context_length", tokenCount = "token_count"
        case bosTokenId = "bos_token_id", shards, normStats = "norm_stats", complete, info
    }

    /// Reads and checks `manifest.json`. A store whose writing was interrupted (`complete: false`) is refused unless
    /// `allowIncomplete`, with a message that says what it holds and what to do.
    public init(model: String, hooks: [StoreHook], dtype: StoreDType, contextLength: Int, tokenCount: Int,
                bosTokenId: Int32, shards: [StoreShardEntry], normStats: [NormStats], complete: Bool, info: [String: String]) {
        self.model = model; self.hooks = hooks; self.dtype = dtype; self.contextLength = contextLength
        self.tokenCount = tokenCount; self.bosTokenId = bosTokenId; self.shards = shards; self.normStats = normStats
        self.complete = complete; self.info = info
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(String.self, forKey: .format)
        version = try c.decodeWholeNumber(forKey: .version)
        model = try c.decode(String.self, forKey: .model)
        hooks = try c.decode([StoreHook].self, forKey: .hooks)
        dtype = try c.decode(StoreDType.self, forKey: .dtype)
        contextLength = try c.decodeWholeNumber(forKey: .contextLength)
        tokenCount = try c.decodeWholeNumber(forKey: .tokenCount)
        bosTokenId = try c.decode(Int32.self, forKey: .bosTokenId)
        shards = try c.decode([StoreShardEntry].self, forKey: .shards)
        normStats = try c.decode([NormStats].self, forKey: .normStats)
        complete = try c.decode(Bool.self, forKey: .complete)
        info = try c.decode([String: String].self, forKey: .info)
    }

    static func read(folder: String, allowIncomplete: Bool = false) throws -> StoreManifest {
        let path = (folder as NSString).appendingPathComponent("manifest.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDir: ObjCBool = false
            if !FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) || !isDir.boolValue {
                throw ActivationsError("store \(folder): no such folder")
            }
            throw ActivationsError("store \(folder): no manifest.json (not an activation store, or nothing finished yet)")
        }
        let manifest: StoreManifest
        do { manifest = try JSONDecoder().decode(StoreManifest.self, from: data) } catch {
            throw ActivationsError("store \(folder): manifest.json is not a valid store manifest: \(Self.describe(error))")
        }
        guard manifest.format == formatName else {
            throw ActivationsError("store \(folder): manifest.json has format '\(manifest.format)', expected '\(formatName)'")
        }
        try manifest.validate(folder: folder)
        guard manifest.complete || allowIncomplete else {
            throw ActivationsError("store \(folder) is incomplete: the run that wrote it was interrupted after \(manifest.tokenCount) tokens (manifest.json says \"complete\": false). Load it anyway with incomplete=true to use the tokens it has, or remove the folder and write it again")
        }
        return manifest
    }

    /// Sizes and names a crafted manifest could get wrong, checked before anything uses them.
    func validate(folder: String) throws {
        func fail(_ what: String) -> ActivationsError { ActivationsError("store \(folder): manifest.json \(what)") }
        guard !hooks.isEmpty else { throw fail("lists no hooks") }
        for (i, h) in hooks.enumerated() {
            guard h.d > 0 else { throw fail("hooks[\(i)] ('\(h.name)') has width d = \(h.d); must be positive") }
            guard !h.name.isEmpty else { throw fail("hooks[\(i)] has an empty name") }
        }
        guard Set(hooks.map(\.name)).count == hooks.count else { throw fail("lists a hook name twice") }
        guard contextLength >= 0 else { throw fail("has context_length \(contextLength); must be ≥ 0") }
        guard tokenCount >= 0 else { throw fail("has token_count \(tokenCount); must be ≥ 0") }
        var total = 0
        for (i, shard) in shards.enumerated() {
            guard shard.rows >= 0 else { throw fail("shards[\(i)] has rows = \(shard.rows); must be ≥ 0") }
            guard PathComponent.isSafe(shard.file) else {
                throw fail("shards[\(i)] names the file '\(shard.file)'; a shard must be a plain file name inside the store")
            }
            let (sum, overflow) = total.addingReportingOverflow(shard.rows)
            guard !overflow else { throw fail("shard row counts overflow at shards[\(i)] (rows = \(shard.rows))") }
            total = sum
        }
        guard total == tokenCount else {
            throw fail("token_count \(tokenCount) disagrees with its shard row counts (sum \(total))")
        }
        guard normStats.count == hooks.count else {
            throw fail("has \(normStats.count) norm_stats entries for \(hooks.count) hooks")
        }
    }

    func write(folder: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        try AtomicWrite.write(data, to: (folder as NSString).appendingPathComponent("manifest.json"))
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c), DecodingError.dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? c.debugDescription : "field '\(path)': \(c.debugDescription)"
        default: return "\(error)"
        }
    }
}

import Tensor

enum AtomicWrite {
    static func write(_ data: Data, to path: String) throws {
        do { try AtomicFile.write(data, to: path) } catch {
            throw ActivationsError("cannot write \(path): \(error)")
        }
    }
}
