// SAELens's on-disk layout (design §5), both ways: a folder per hook holding cfg.json, sae_weights.safetensors
// (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], plus an architecture's own tensors such
// as JumpReLU's threshold) and sparsity.safetensors (log10 density); a group is a folder of such folders.
// Reading follows SAELens 6's `load_from_disk` (its `handle_pre_6_0_config` for folders without a 6.x version),
// and refuses, naming the field and its value, anything nsae cannot represent exactly: nothing is loaded as
// another kind. Integers are read strictly and every size is checked against the tensors before use.
// Writing goes to a temporary sibling folder that is swapped in when complete.
import Foundation
import Tensor

public enum SAELensIO {
    public static let configFile = "cfg.json"
    public static let weightsFile = "sae_weights.safetensors"
    public static let sparsityFile = "sparsity.safetensors"
    /// The SAELens version nsae's folders declare: the 6.x layout, so SAELens skips its pre-6.0 conversion.
    static let layoutVersion = "6.0.0"

    /// The subfolder name of one SAE in a group: its hook name made into one safe path component, else `layer{L}`.
    public static func folderName(_ sae: SAE, index: Int) -> String {
        if let h = sae.config.hookName, let safe = safePathComponent(h) { return safe }
        return "layer\(sae.config.hookLayer ?? index)"
    }

    /// A hook name from data as one path component: characters outside [A-Za-z0-9._-] become "_", and a name
    /// that is empty, all dots, or starts with a dot gets a "_" in front (so "..", "a/b", ".hidden" stay inside
    /// the group folder). Nil when nothing usable is left.
    static func safePathComponent(_ name: String) -> String? {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        var out = String(name.prefix(200).map { allowed.contains($0) ? $0 : "_" })
        guard !out.isEmpty else { return nil }
        if out.hasPrefix(".") { out = "_" + out }
        return out
    }

    /// Writes a group as a folder of per-layer SAELens folders, built in a temporary sibling and swapped in at
    /// the end, so an interrupted save leaves the old group or the new one, never a mix.
    public static func save(_ group: SAEGroup, to folder: String) throws {
        var names: [String] = []
        var used = Set<String>()
        for (i, sae) in group.saes.enumerated() {
            let name = folderName(sae, index: i)
            guard used.insert(name).inserted else { throw SAEError("save: two SAEs of the group would share the folder name \(name)") }
            names.append(name)
        }
        try FolderSwap.replace(folder, isReplaceable: isGroupFolder) { tmp in
            for (sae, name) in zip(group.saes, names) { try writeFolder(sae, to: (tmp as NSString).appendingPathComponent(name)) }
        }
    }

    /// Writes one SAE as a SAELens folder (built aside and swapped in, like a group).
    public static func save(_ sae: SAE, to folder: String) throws {
        try FolderSwap.replace(folder, isReplaceable: isSAEFolder) { tmp in try writeFolder(sae, to: tmp) }
    }

    /// An existing folder `save` may replace: one written as an SAE folder (cfg.json) …
    static func isSAEFolder(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(configFile))
    }
    /// … or a group: only SAE folders (and hidden files) inside.
    static func isGroupFolder(_ path: String) -> Bool {
        guard let items = try? FileManager.default.contentsOfDirectory(atPath: path) else { return false }
        return items.allSatisfy { $0.hasPrefix(".") || isSAEFolder((path as NSString).appendingPathComponent($0)) }
    }

    static func writeFolder(_ sae: SAE, to folder: String) throws {
        let c = sae.config
        let kind = c.architecture.kind
        var metadata: [String: Any] = ["sae_lens_version": layoutVersion, "written_by": "nsae"]
        var cfg: [String: Any] = [
            "architecture": kind.saelensArchitecture,
            "d_in": c.dIn, "d_sae": c.dSAE, "dtype": "float32", "device": "cpu",
            "apply_b_dec_to_input": true, "normalize_activations": c.normalization.rawValue, "reshape_activations": "none",
            "alpha": Double(c.alpha), "mse": c.mse.rawValue, "seed": c.seed, "nsae_architecture": c.architecture.name,
        ]
        cfg.merge(kind.saelensFields(c)) { _, new in new }
        if !c.options.isEmpty { cfg["nsae_options"] = c.options }
        if let h = c.hookName { cfg["hook_name"] = h; metadata["hook_name"] = h }
        if let l = c.hookLayer { cfg["hook_layer"] = l; metadata["hook_layer"] = l }
        if let m = c.modelName { cfg["model_name"] = m; metadata["model_name"] = m }
        cfg["metadata"] = metadata
        let json = try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json, to: (folder as NSString).appendingPathComponent(configFile))
        var tensors = [
            TensorToWrite(name: "W_enc", matrix: sae.W_enc),
            TensorToWrite(name: "W_dec", matrix: sae.W_dec),
            TensorToWrite(name: "b_enc", vector: sae.b_enc),
            TensorToWrite(name: "b_dec", vector: sae.b_dec),
        ]
        for (name, values) in kind.saelensTensors(sae) { tensors.append(TensorToWrite(name: name, vector: values)) }
        try SafeTensors.write(tensors, to: (folder as NSString).appendingPathComponent(weightsFile))
        if let density = sae.featureDensity, density.count == sae.dSAE {
            try SafeTensors.write([TensorToWrite(name: "sparsity", vector: density.map { Foundation.log10($0 + 1e-10) })],
                                  to: (folder as NSString).appendingPathComponent(sparsityFile))
        }
    }

    /// Reads a single SAELens folder (it holds cfg.json) as a one-SAE group, or a folder of such folders as a
    /// group ordered by hook layer, then name.
    public static func load(_ folder: String) throws -> SAEGroup {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw SAEError("load sae: \(folder) is not a folder")
        }
        if fm.fileExists(atPath: (folder as NSString).appendingPathComponent(configFile)) {
            return try SAEGroup(saes: [loadOne(folder)])
        }
        let subfolders = try fm.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }.sorted()
            .map { (folder as NSString).appendingPathComponent($0) }
            .filter { fm.fileExists(atPath: ($0 as NSString).appendingPathComponent(configFile)) }
        guard !subfolders.isEmpty else {
            throw SAEError("load sae: \(folder) holds no \(configFile), and no subfolder does (expected a SAELens folder or a folder of them)")
        }
        let saes = try subfolders.map { try loadOne($0) }
        let ordered = zip(saes, subfolders).sorted {
            ($0.0.config.hookLayer ?? Int.max, $0.1) < ($1.0.config.hookLayer ?? Int.max, $1.1)
        }.map(\.0)
        return try SAEGroup(saes: ordered)
    }

    /// The names SAELens gives the architectures nsae reads.
    static var readableArchitectures: String {
        SAERegistry.kinds.map { $0.saelensArchitecture == $0.name ? $0.name : "\($0.saelensArchitecture) (\($0.name))" }
            .joined(separator: ", ")
    }

    /// Reads one SAELens folder.
    public static func loadOne(_ folder: String) throws -> SAE {
        let cfgPath = (folder as NSString).appendingPathComponent(configFile)
        guard let data = FileManager.default.contents(atPath: cfgPath) else { throw SAEError("load sae: cannot read \(cfgPath)") }
        guard let raw = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SAEError("load sae: \(cfgPath) is not a JSON object")
        }
        var fields = raw
        var spelledAs: [String: String] = [:]
        let metadata = raw["metadata"] as? [String: Any] ?? [:]
        let version = (raw["sae_lens_version"] ?? metadata["sae_lens_version"]) as? String
        let major = version.flatMap { Int($0.split(separator: ".").first ?? "") }
        let pre6 = major.map { $0 < 6 } ?? true
        if pre6 {
            // SAELens's handle_pre_6_0_config: old key names, and TopK recorded as an activation function.
            for (old, new) in [("hook_point", "hook_name"), ("hook_point_layer", "hook_layer"),
                               ("hook_point_head_index", "hook_head_index"), ("activation_fn_str", "activation_fn")]
            where fields[new] == nil && fields[old] != nil {
                fields[new] = fields[old]
                spelledAs[new] = old
            }
        }
        let cfg = SAELensConfigFields(path: cfgPath, fields: fields, metadata: metadata, spelledAs: spelledAs)

        guard let dIn = try cfg.integer("d_in") else { throw SAEError("load sae: \(cfgPath) has no integer d_in") }
        guard let dSAE = try cfg.integer("d_sae") else { throw SAEError("load sae: \(cfgPath) has no integer d_sae") }
        guard dIn > 0 else { throw cfg.refuse("d_in", "must be positive") }
        guard dSAE > 0 else { throw cfg.refuse("d_sae", "must be positive") }
        let (cells, overflow) = dIn.multipliedReportingOverflow(by: dSAE)
        guard !overflow, cells <= 1 << 36 else { throw cfg.refuse("d_sae", "with d_in = \(dIn) is too large (d_in × d_sae overflows)") }

        let architecture = try readArchitecture(cfg, pre6: pre6)
        var config = SAEConfig(architecture: architecture, dIn: dIn, dSAE: dSAE,
                               alpha: Float(try cfg.number("alpha") ?? cfg.number("l1_coefficient") ?? 0))
        config.normalization = try readNormalization(cfg)
        if let reshape = cfg.value("reshape_activations"), !(reshape is NSNull) {
            guard let r = reshape as? String, r == "none" else { throw cfg.refuse("reshape_activations", "is not supported (only 'none')") }
        }
        if let scaling = try cfg.bool("finetuning_scaling_factor"), scaling {
            throw cfg.refuse("finetuning_scaling_factor", "is not supported")
        }
        if let w = cfg.string("mse") {
            guard let mode = MSEMode(rawValue: w) else { throw cfg.refuse("mse", "is not sum or mean") }
            config.mse = mode
        }
        if let seed = cfg.value("seed"), !(seed is NSNull) {
            guard let n = seed as? NSNumber, !SAELensConfigFields.isBool(n), let s = UInt64(exactly: n.doubleValue) else {
                throw cfg.refuse("seed", "is not a non-negative integer")
            }
            config.seed = s
        }
        if let stored = raw["nsae_options"] as? [String: Any] {
            for (k, v) in stored {
                guard let n = v as? NSNumber, n.doubleValue.isFinite else { throw cfg.refuse("nsae_options", "holds a non-number \(k)") }
                config.options[k] = n.doubleValue
            }
        }
        try architecture.kind.readSAELens(cfg, &config)
        config.hookName = cfg.string("hook_name")
        config.hookLayer = try cfg.integer("hook_layer")
        if config.hookLayer == nil, let h = config.hookName { config.hookLayer = layerIndex(inHookName: h) }
        config.modelName = cfg.string("model_name")
        config.architecture.applyDefaults(&config)
        do { try config.validate() } catch { throw SAEError("load sae: \(cfgPath): \(error)") }

        let weightsPath = (folder as NSString).appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw SAEError("load sae: \(weightsPath) is missing") }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: weightsPath) } catch { throw SAEError("load sae: \(error)") }
        func tensor(_ name: String, _ shape: [Int]) throws -> Matrix {
            guard let info = file.tensors[name] else {
                throw SAEError("load sae: \(weightsPath) has no tensor \(name) (found: \(file.names.sorted().joined(separator: ", ")))")
            }
            guard [.f32, .f16, .bf16].contains(info.dtype) else {
                throw SAEError("load sae: \(weightsPath): tensor \(name) has dtype \(info.dtype.rawValue); expected F32, F16 or BF16")
            }
            let m: Matrix
            do { m = try file.matrix(name, shape: shape) } catch { throw SAEError("load sae: \(error)") }
            guard m.data.allSatisfy({ $0.isFinite }) else {
                throw SAEError("load sae: \(weightsPath): tensor \(name) holds non-finite values")
            }
            return m
        }
        let wEnc = try tensor("W_enc", [dIn, dSAE]), wDec = try tensor("W_dec", [dSAE, dIn])
        var bEnc = try tensor("b_enc", [dSAE]).data
        let bDec = try tensor("b_dec", [dIn]).data
        let extra = try architecture.kind.readSAELensTensors({ name in
            file.tensors[name] == nil ? nil : try tensor(name, [dSAE]).data
        }, &config)
        if try cfg.bool("apply_b_dec_to_input") == false {
            // SAELens then encodes x, not x − b_dec: fold b_dec·W_enc into b_enc so our x − b_dec gives the same codes.
            for j in 0..<dSAE { var s: Float = 0; for i in 0..<dIn { s += bDec[i] * wEnc[i, j] }; bEnc[j] += s }
        }
        let sae = try SAE(config: config, W_enc: wEnc, b_enc: bEnc, W_dec: wDec, b_dec: bDec, extra: extra)
        let sparsityPath = (folder as NSString).appendingPathComponent(sparsityFile)
        if FileManager.default.fileExists(atPath: sparsityPath) {
            let s: SafeTensorsFile
            do { s = try SafeTensorsFile(path: sparsityPath) } catch { throw SAEError("load sae: \(error)") }
            if s.tensors["sparsity"] != nil {
                let logs = try s.floats("sparsity")
                guard logs.count == dSAE else {
                    throw SAEError("load sae: \(sparsityPath): sparsity has \(logs.count) values, expected d_sae = \(dSAE)")
                }
                sae.featureDensity = logs.map { max(0, Foundation.pow(10, $0) - 1e-10) }
            }
        }
        return sae
    }

    /// The architecture a folder holds: SAELens 6's `architecture`, with the pre-6.0 `activation_fn` rules
    /// (relu → standard; topk with activation_fn_kwargs.k → topk; tanh-relu → nsae). Anything else is refused.
    static func readArchitecture(_ cfg: SAELensConfigFields, pre6: Bool) throws -> SAEArchitecture {
        var name = cfg.string("architecture") ?? "standard"
        if cfg.value("architecture") != nil, cfg.string("architecture") == nil { throw cfg.refuse("architecture", "is not a name") }
        if let nsaeName = cfg.string("nsae_architecture"), name == "nsae" || SAERegistry.kinds.contains(where: { $0.name == nsaeName && $0.saelensArchitecture == name }) {
            name = nsaeName
        }
        if let fn = cfg.value("activation_fn"), !(fn is NSNull) {
            guard let fn = fn as? String else { throw cfg.refuse("activation_fn", "is not a name") }
            switch (name, fn) {
            case (_, "relu") where name != "nsae": break
            case ("standard", "topk"):
                let kwargs = cfg.value("activation_fn_kwargs") as? [String: Any] ?? [:]
                guard kwargs["k"] != nil else {
                    throw cfg.refuse("activation_fn", "needs activation_fn_kwargs.k (the number of active features), which is missing")
                }
                name = "topk"
            case ("standard", "tanh-relu"): name = "nsae"
            case ("topk", "topk"), ("nsae", "tanh-relu"): break
            default:
                throw cfg.refuse("activation_fn", "is not supported for architecture '\(name)' (nsae reads relu, topk with its k, tanh-relu)")
            }
        }
        guard let kind = SAERegistry.kinds.first(where: { $0.saelensArchitecture == name || $0.name == name }) else {
            throw cfg.refuse("architecture", "is not supported; valid: \(readableArchitectures)")
        }
        return SAEArchitecture(kind)
    }

    static func readNormalization(_ cfg: SAELensConfigFields) throws -> InputNormalization {
        guard let v = cfg.value("normalize_activations"), !(v is NSNull) else { return .none }
        if let n = v as? NSNumber, SAELensConfigFields.isBool(n) { return n.boolValue ? .expectedAverageOnlyIn : .none }
        guard let s = v as? String, let mode = InputNormalization(rawValue: s) else {
            throw cfg.refuse("normalize_activations", "is not supported (nsae reads none, expected_average_only_in, constant_norm_rescale, layer_norm)")
        }
        return mode
    }

    /// N from a TransformerLens hook name such as "blocks.5.hook_mlp_out".
    static func layerIndex(inHookName name: String) -> Int? {
        let parts = name.split(separator: ".")
        guard let i = parts.firstIndex(of: "blocks"), i + 1 < parts.count else { return nil }
        return Int(parts[i + 1])
    }
}

/// Replacing an SAE folder as one step, through Tensor's `AtomicDirectory`: the new contents are written into a
/// hidden temporary sibling that then takes the folder's place by an atomic exchange of the two names, or, for a
/// new folder, a rename. A kill at any moment leaves the old folder or the new one under the name.
enum FolderSwap {
    static func replace(_ folder: String, isReplaceable: (String) -> Bool, write: (String) throws -> Void) throws {
        let fm = FileManager.default
        let url = URL(fileURLWithPath: folder).standardizedFileURL
        let name = url.lastPathComponent
        guard !name.isEmpty, name != "/", name != ".", name != ".." else { throw SAEError("save: \(folder) is not a folder path to write to") }
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw SAEError("save: \(folder) exists and is a file, not an SAE folder") }
            let empty = ((try? fm.contentsOfDirectory(atPath: url.path)) ?? ["?"]).isEmpty
            guard empty || isReplaceable(url.path) else {
                throw SAEError("save: \(folder) exists and holds files that are not an SAE folder; choose another path")
            }
        }
        let staging: String
        do { staging = try AtomicDirectory.makeStagingSibling(of: url.path) } catch { throw SAEError("save: \(error)") }
        do { try write(staging) } catch {
            try? fm.removeItem(atPath: staging)
            throw error
        }
        do { try AtomicDirectory.swapIn(staging, at: url.path) } catch {
            try? fm.removeItem(atPath: staging)
            throw SAEError("save: \(error)")
        }
    }
}
