// A sweep on disk: a folder holding `sweep.json` (the manifest) and one group folder per grid value, named by
// kind, grid option and value (`relu-alpha-0.001`), each a folder of per-hook SAELens folders exactly as a saved
// group (so SAELens loads any one SAE of the sweep directly). The manifest:
//   {"format": "nsae-sweep", "version": 1, "architecture": "relu", "grid_option": "alpha",
//    "values": [0.0001, 0.001], "groups": ["relu-alpha-0.0001", "relu-alpha-0.001"]}
// Reading checks the manifest against the folders: every listed folder is there and is the name its value gives,
// each group's SAEs hold the grid value the manifest says, and all groups have the same layers and sizes.
import Foundation
import Tensor

extension SAELensIO {
    public static let sweepManifestFile = "sweep.json"
    static let sweepFormat = "nsae-sweep"
    /// More grid values than this in a manifest is refused before anything is read.
    static let maximumSweepGroups = 10_000

    /// The group folder of grid value `value`: kind, option and value, one safe path component.
    public static func sweepFolderName(_ architecture: SAEArchitecture, option: String, value: Double) -> String {
        safePathComponent("\(architecture.name)-\(option)-\(formatGridValue(value))") ?? "\(architecture.name)-\(option)"
    }

    /// Whether `folder` holds a sweep manifest (so `load sae` reads it as a sweep).
    public static func isSweepFolder(_ folder: String) -> Bool {
        FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(sweepManifestFile))
    }

    /// Writes the sweep (manifest and every group's SAELens folders) into a staging sibling swapped in at the end,
    /// as a group save is: an interrupted save leaves the old sweep or the new one.
    public static func save(_ sweep: SAESweep, to folder: String) throws {
        let names = sweep.values.map { sweepFolderName(sweep.architecture, option: sweep.gridOption, value: $0) }
        guard Set(names).count == names.count else {
            throw SAEError("save: two grid values of the sweep would share a folder name (\(names.joined(separator: ", ")))")
        }
        var groupFolders: [[String]] = []
        for group in sweep.groups {
            var used = Set<String>()
            let inner = try group.saes.enumerated().map { i, sae -> String in
                let name = folderName(sae, index: i)
                guard used.insert(name).inserted else { throw SAEError("save: two SAEs of a group would share the folder name \(name)") }
                return name
            }
            groupFolders.append(inner)
        }
        let manifest: [String: Any] = [
            "format": sweepFormat, "version": 1, "architecture": sweep.architecture.name, "grid_option": sweep.gridOption,
            "values": sweep.values.map { Double(Float($0).description) ?? $0 }, "groups": names,
        ]
        let json = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        try FolderSwap.replace(folder, isReplaceable: isSweepFolder) { tmp in
            for (g, group) in sweep.groups.enumerated() {
                let groupPath = (tmp as NSString).appendingPathComponent(names[g])
                for (sae, name) in zip(group.saes, groupFolders[g]) {
                    try writeFolder(sae, to: (groupPath as NSString).appendingPathComponent(name))
                }
            }
            try AtomicFile.write(json, to: (tmp as NSString).appendingPathComponent(sweepManifestFile))
        }
    }

    /// Reads a folder written by `save(_ sweep:)`; a manifest that does not match its folders is refused with
    /// the file and field named.
    public static func loadSweep(_ folder: String) throws -> SAESweep {
        let path = (folder as NSString).appendingPathComponent(sweepManifestFile)
        guard let data = FileManager.default.contents(atPath: path) else { throw SAEError("load sae: cannot read \(path)") }
        guard let object = try? JSONSerialization.jsonObject(with: data), let fields = object as? [String: Any] else {
            throw SAEError("load sae: \(path) is not a JSON object")
        }
        let cfg = SAELensConfigFields(path: path, fields: fields, metadata: [:])
        guard cfg.string("format") == sweepFormat else { throw cfg.refuse("format", "is not '\(sweepFormat)'") }
        guard try cfg.integer("version") == 1 else { throw cfg.refuse("version", "is not 1 (the sweep layout nsae reads)") }
        guard let kindName = cfg.string("architecture") else { throw cfg.refuse("architecture", "is not a string") }
        let architecture: SAEArchitecture
        do { architecture = try SAERegistry.architecture(named: kindName) } catch {
            throw cfg.refuse("architecture", "is not an nsae architecture (\(SAERegistry.names.joined(separator: ", ")))")
        }
        guard architecture.name == kindName else { throw cfg.refuse("architecture", "must be the architecture's nsae name, \(architecture.name)") }
        guard cfg.string("grid_option") == architecture.sparsityControl.name else {
            throw cfg.refuse("grid_option", "is not \(architecture.name)'s sparsity control, \(architecture.sparsityControl.name)")
        }
        let option = architecture.sparsityControl.name
        guard let rawValues = cfg.value("values") as? [Any] else { throw cfg.refuse("values", "is not a list") }
        guard let rawGroups = cfg.value("groups") as? [Any] else { throw cfg.refuse("groups", "is not a list") }
        guard !rawValues.isEmpty, rawValues.count <= maximumSweepGroups else {
            throw cfg.refuse("values", "must list 1 to \(maximumSweepGroups) grid values, found \(rawValues.count)")
        }
        guard rawGroups.count == rawValues.count else {
            throw cfg.refuse("groups", "lists \(rawGroups.count) folders for \(rawValues.count) values")
        }
        let values = try rawValues.enumerated().map { i, v -> Double in
            let item = SAELensConfigFields(path: path, fields: ["v": v], metadata: [:], spelledAs: ["v": "values[\(i)]"])
            guard let n = try item.number("v") else { throw item.refuse("v", "is not a number") }
            return n
        }
        do { try SAESweep.checkGrid(values, option: option) } catch let e as SAEError {
            throw SAEError("load sae: \(path): values: \(e.message)")
        }
        var groups: [SAEGroup] = []
        for (i, raw) in rawGroups.enumerated() {
            let expected = sweepFolderName(architecture, option: option, value: values[i])
            guard let name = raw as? String, name == expected else {
                let item = SAELensConfigFields(path: path, fields: ["g": raw], metadata: [:], spelledAs: ["g": "groups[\(i)]"])
                throw item.refuse("g", "is not the folder of values[\(i)] = \(formatGridValue(values[i])), which is '\(expected)'")
            }
            let groupPath = (folder as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: groupPath, isDirectory: &isDir), isDir.boolValue else {
                throw SAEError("load sae: \(path): groups[\(i)] = '\(name)' is not a folder in \(folder)")
            }
            let group = try load(groupPath)
            for sae in group.saes where sae.config.architecture != architecture {
                throw SAEError("load sae: \(groupPath) holds a \(sae.config.architecture.name) SAE, but \(path) says architecture \(architecture.name)")
            }
            for sae in group.saes where SAESweep.gridValue(sae.config, option: option) != Float(values[i]) {
                throw SAEError("load sae: \(path): values[\(i)] = \(formatGridValue(values[i])), but the SAE of \(groupPath) (\(sae.config.hookName ?? "layer \(sae.config.hookLayer ?? 0)")) has \(option) = \(SAESweep.gridValue(sae.config, option: option))")
            }
            groups.append(group)
        }
        do { return try SAESweep(architecture: architecture, gridOption: option, values: values, groups: groups) } catch let e as SAEError {
            throw SAEError("load sae: \(folder): \(e.message)")
        }
    }
}
