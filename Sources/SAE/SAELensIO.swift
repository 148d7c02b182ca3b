// SAELens's on-disk layout (design §5), both ways: a folder per hook holding cfg.json, sae_weights.safetensors
// (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in]) and sparsity.safetensors (log10 density);
// a group is a folder of such folders. Reading is lenient about cfg fields it does not need and strict about
// the tensors: a missing tensor or a shape that disagrees with d_in / d_sae is an error naming the file.
import Foundation
import Tensor

public enum SAELensIO {
    public static let configFile = "cfg.json"
    public static let weightsFile = "sae_weights.safetensors"
    public static let sparsityFile = "sparsity.safetensors"

    /// The subfolder name of one SAE in a group: its hook name, else `layer{L}`.
    public static func folderName(_ sae: SAE, index: Int) -> String {
        if let h = sae.config.hookName, !h.isEmpty { return h.replacingOccurrences(of: "/", with: "_") }
        return "layer\(sae.config.hookLayer ?? index)"
    }

    /// Writes a group as a folder of per-layer SAELens folders.
    public static func save(_ group: SAEGroup, to folder: String) throws {
        var used = Set<String>()
        for (i, sae) in group.saes.enumerated() {
            let name = folderName(sae, index: i)
            guard used.insert(name).inserted else { throw SAEError("save: two SAEs of the group would share the folder name \(name)") }
            try save(sae, to: (folder as NSString).appendingPathComponent(name))
        }
    }

    /// Writes one SAE as a SAELens folder (each file atomically).
    public static func save(_ sae: SAE, to folder: String) throws {
        let c = sae.config
        var cfg: [String: Any] = [
            "architecture": c.architecture.saelensName,
            "d_in": c.dIn, "d_sae": c.dSAE, "dtype": "float32", "device": "cpu",
            "apply_b_dec_to_input": true, "normalize_activations": "none",
            "alpha": Double(c.alpha), "l1_coefficient": Double(c.alpha), "mse": c.mse.rawValue, "seed": c.seed,
        ]
        cfg.merge(c.architecture.kind.saelensFields(c)) { _, new in new }
        var metadata: [String: Any] = [:]
        if let h = c.hookName { cfg["hook_name"] = h; metadata["hook_name"] = h }
        if let l = c.hookLayer { cfg["hook_layer"] = l; metadata["hook_layer"] = l }
        if let m = c.modelName { cfg["model_name"] = m; metadata["model_name"] = m }
        cfg["metadata"] = metadata
        let json = try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json, to: (folder as NSString).appendingPathComponent(configFile))
        try SafeTensors.write([
            TensorToWrite(name: "W_enc", matrix: sae.W_enc),
            TensorToWrite(name: "W_dec", matrix: sae.W_dec),
            TensorToWrite(name: "b_enc", vector: sae.b_enc),
            TensorToWrite(name: "b_dec", vector: sae.b_dec),
        ], to: (folder as NSString).appendingPathComponent(weightsFile))
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
        let subfolders = try fm.contentsOfDirectory(atPath: folder).sorted()
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

    /// Reads one SAELens folder.
    public static func loadOne(_ folder: String) throws -> SAE {
        let cfgPath = (folder as NSString).appendingPathComponent(configFile)
        guard let data = FileManager.default.contents(atPath: cfgPath) else { throw SAEError("load sae: cannot read \(cfgPath)") }
        guard let cfg = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SAEError("load sae: \(cfgPath) is not a JSON object")
        }
        let metadata = cfg["metadata"] as? [String: Any] ?? [:]
        func field(_ key: String) -> Any? { cfg[key] ?? metadata[key] }
        func int(_ key: String) -> Int? { (field(key) as? NSNumber)?.intValue }
        func float(_ key: String) -> Float? { (field(key) as? NSNumber)?.floatValue }
        guard let dIn = int("d_in") else { throw SAEError("load sae: \(cfgPath) has no integer d_in") }
        guard let dSAE = int("d_sae") else { throw SAEError("load sae: \(cfgPath) has no integer d_sae") }
        let archName = field("architecture") as? String ?? "standard"
        let architecture: SAEArchitecture
        do { architecture = try SAERegistry.architecture(named: archName) } catch {
            throw SAEError("load sae: \(cfgPath): architecture '\(archName)' is not supported; valid: standard (relu), nsae")
        }
        if let norm = field("normalize_activations") as? String, norm != "none" {
            throw SAEError("load sae: \(cfgPath): normalize_activations '\(norm)' is not supported (only 'none')")
        }
        let hookName = (field("hook_name") ?? field("hook_point")) as? String
        var hookLayer = int("hook_layer") ?? int("hook_point_layer")
        if hookLayer == nil, let h = hookName { hookLayer = layerIndex(inHookName: h) }
        let config = SAEConfig(
            architecture: architecture, dIn: dIn, dSAE: dSAE,
            alpha: float("alpha") ?? float("l1_coefficient") ?? 0, sigma: float("noise_sigma") ?? 1,
            noise: NoiseMode(rawValue: field("noise_mode") as? String ?? "") ?? .train,
            mse: MSEMode(rawValue: field("mse") as? String ?? "") ?? .sum,
            beta: BetaMode(rawValue: field("beta_mode") as? String ?? "") ?? .batch,
            layerMeanNorm: float("layer_mean_norm"), seed: UInt64((field("seed") as? NSNumber)?.uint64Value ?? 1),
            hookName: hookName, hookLayer: hookLayer, modelName: field("model_name") as? String)

        let weightsPath = (folder as NSString).appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw SAEError("load sae: \(weightsPath) is missing") }
        let file = try SafeTensorsFile(path: weightsPath)
        func tensor(_ name: String, _ shape: [Int]) throws -> Matrix {
            guard file.tensors[name] != nil else {
                throw SAEError("load sae: \(weightsPath) has no tensor \(name) (found: \(file.names.sorted().joined(separator: ", ")))")
            }
            do { return try file.matrix(name, shape: shape) } catch { throw SAEError("load sae: \(error)") }
        }
        let wEnc = try tensor("W_enc", [dIn, dSAE]), wDec = try tensor("W_dec", [dSAE, dIn])
        var bEnc = try tensor("b_enc", [dSAE]).data
        let bDec = try tensor("b_dec", [dIn]).data
        if (field("apply_b_dec_to_input") as? Bool) == false {
            // SAELens then encodes x, not x − b_dec: fold b_dec·W_enc into b_enc so our x − b_dec gives the same codes.
            for j in 0..<dSAE { var s: Float = 0; for i in 0..<dIn { s += bDec[i] * wEnc[i, j] }; bEnc[j] += s }
        }
        let sae = try SAE(config: config, W_enc: wEnc, b_enc: bEnc, W_dec: wDec, b_dec: bDec)
        let sparsityPath = (folder as NSString).appendingPathComponent(sparsityFile)
        if FileManager.default.fileExists(atPath: sparsityPath) {
            let s = try SafeTensorsFile(path: sparsityPath)
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

    /// N from a TransformerLens hook name such as "blocks.5.hook_mlp_out".
    static func layerIndex(inHookName name: String) -> Int? {
        let parts = name.split(separator: ".")
        guard let i = parts.firstIndex(of: "blocks"), i + 1 < parts.count else { return nil }
        return Int(parts[i + 1])
    }
}
