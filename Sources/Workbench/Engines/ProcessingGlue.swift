import Activations
import Foundation
import GPT2

// The SAE ↔ model weight-processing check: an SAE trained on TransformerLens's processed GPT-2 (SAELens's
// gpt2-small-res-jb says `model_from_pretrained_kwargs: {center_writing_weights: true}`) sees activations shifted by
// the per-token mean on a Hugging Face-numerics model, and the other way round.

extension Engines {
    /// The boolean flags of `model_from_pretrained_kwargs` in the cfg.json of the SAE folder at `path`, or of the
    /// first layer folder that has one (top level, or in SAELens 6's `metadata` block); nil when no cfg says.
    static func modelFromPretrainedKwargs(saeFolder path: String) -> [String: Bool]? {
        var folders = [path]
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: path) {
            folders += entries.sorted().map { (path as NSString).appendingPathComponent($0) }
        }
        for folder in folders {
            let cfgPath = (folder as NSString).appendingPathComponent("cfg.json")
            guard let data = FileManager.default.contents(atPath: cfgPath),
                  let cfg = try? JSON.parse([UInt8](data)) else { continue }
            guard case .object(let kwargs)? = cfg["model_from_pretrained_kwargs"] ?? cfg["metadata"]?["model_from_pretrained_kwargs"] else { continue }
            var flags: [String: Bool] = [:]
            for (key, value) in kwargs { if case .bool(let b) = value { flags[key] = b } }
            return flags
        }
        return nil
    }

    /// Writes the SAE's kwargs into every cfg.json under `path` (a saved SAE folder or group), top level and in
    /// `metadata`, so SAELens loads the model the SAE was trained on.
    static func writeModelFromPretrainedKwargs(_ kwargs: [String: Bool], under path: String) throws {
        var cfgs: [String] = []
        if let walker = FileManager.default.enumerator(atPath: path) {
            while let relative = walker.nextObject() as? String {
                if (relative as NSString).lastPathComponent == "cfg.json" { cfgs.append((path as NSString).appendingPathComponent(relative)) }
            }
        }
        for cfgPath in cfgs {
            guard let data = FileManager.default.contents(atPath: cfgPath),
                  var cfg = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            cfg["model_from_pretrained_kwargs"] = kwargs
            if var metadata = cfg["metadata"] as? [String: Any] {
                metadata["model_from_pretrained_kwargs"] = kwargs
                cfg["metadata"] = metadata
            }
            let out = try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted, .sortedKeys])
            let temporary = cfgPath + ".tmp"
            try out.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, cfgPath) == 0 else {
                throw ActivationsError("\(cfgPath): cannot replace: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Warns (or with `strict=true` refuses) when `processing` — the model's, or the one a store was harvested
    /// with — differs from the SAE's on a flag that changes the values at the SAE's hooks.
    static func checkProcessing(_ sae: SAEObject, against processing: WeightProcessing, what: String, call: Call) throws {
        guard let kwargs = sae.modelFromPretrainedKwargs else { return }
        var flags: [String] = [], hooks: [String] = []
        for s in sae.group.saes {
            let hook = s.config.hookName.flatMap { try? HookPoint.parse($0) }
            let differing = processing.mismatches(saeKwargs: kwargs, hook: hook)
            if !differing.isEmpty { hooks.append(hook?.name ?? "layer \(s.config.hookLayer ?? 0)") }
            for f in differing where !flags.contains(f) { flags.append(f) }
        }
        guard !flags.isEmpty else { return }
        let asked = kwargs.keys.sorted().map { "\($0): \(kwargs[$0]!)" }.joined(separator: ", ")
        let other = WeightProcessing.allCases.first { p in p != processing && sae.group.saes.allSatisfy {
            p.mismatches(saeKwargs: kwargs, hook: $0.config.hookName.flatMap { try? HookPoint.parse($0) }).isEmpty } }
        let fix = other.map { "; load the model with processing=\($0.rawValue)" + (what == "the store" ? " and harvest again" : "") } ?? ""
        let message = "the SAE was trained with model_from_pretrained_kwargs {\(asked)}, but \(what) has processing=\(processing.rawValue): \(flags.joined(separator: ", ")) changes the values at \(hooks.joined(separator: ", "))\(fix)"
        if call.flag("strict") { throw call.error(message + " (strict=true refuses)") }
        call.sink.stream("warning: " + message + "\n", name: .stderr)
    }

    /// The processing a store was harvested with (nil for stores from elsewhere or from `synth`).
    static func processing(of store: ActivationStore) -> WeightProcessing? {
        store.manifest.info["processing"].flatMap(WeightProcessing.init(rawValue:))
    }
}
