import Workbench
import Foundation

/// The kernelspec Jupyter uses to find and start the kernel: `kernels/<name>/kernel.json`.
public enum KernelSpec {
    public static let defaultName = "nsae"

    /// kernel.json for the binary at `executable` (an absolute path). interrupt_mode "signal" is the clients'
    /// default and also covers the SIGINT that jupyter_client sends before every shutdown.
    public static func json(executable: String, displayName: String = "NSAE") -> JSON {
        [
            "argv": [.string(executable), "kernel", "-f", "{connection_file}"],
            "display_name": .string(displayName),
            "language": "nsae",
            "interrupt_mode": "signal",
            "metadata": ["debugger": false],
        ]
    }

    /// Kernel directory names may hold ASCII letters, digits, '-', '.' and '_' only (jupyter_client's rule).
    public static func validate(name: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
        guard !name.isEmpty, name.allSatisfy({ allowed.contains($0) }) else {
            throw KernelSetupError("invalid kernel name '\(name)': use ASCII letters, digits, '-', '.' and '_' only")
        }
    }

    /// `~/.local/share/jupyter/kernels` (or `$JUPYTER_DATA_DIR/kernels`), where `--user` installs go.
    public static func userKernelsDirectory() -> String {
        let env = ProcessInfo.processInfo.environment
        if let data = env["JUPYTER_DATA_DIR"], !data.isEmpty { return data + "/kernels" }
        let home = env["HOME"] ?? NSHomeDirectory()
        return home + "/.local/share/jupyter/kernels"
    }

    /// `P/share/jupyter/kernels`, where `--prefix P` installs go (as `jupyter kernelspec install --prefix`).
    public static func prefixKernelsDirectory(_ prefix: String) -> String {
        (prefix as NSString).standardizingPath + "/share/jupyter/kernels"
    }

    /// Writes `kernelsDirectory/name/kernel.json` and the logos beside it, and returns the kernel.json path.
    @discardableResult
    public static func install(executable: String, kernelsDirectory: String, name: String = defaultName) throws -> String {
        try validate(name: name)
        let directory = kernelsDirectory + "/" + name
        let path = directory + "/kernel.json"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var text = json(executable: executable).prettyPrinted
            text += "\n"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            // The launcher's icons, which Jupyter finds by these names beside kernel.json.
            for logo in KernelLogo.files {
                guard let bytes = Data(base64Encoded: logo.base64) else { continue }
                try bytes.write(to: URL(fileURLWithPath: directory + "/" + logo.name), options: .atomic)
            }
        } catch {
            throw KernelSetupError("cannot write \(path): \(error.localizedDescription)")
        }
        return path
    }

    /// The absolute path of the running executable (what kernel.json must name, whatever the current directory).
    public static func currentExecutable() -> String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return resolved
        }
        let argv0 = CommandLine.arguments[0]
        if argv0.hasPrefix("/") { return argv0 }
        return (FileManager.default.currentDirectoryPath + "/" + argv0 as NSString).standardizingPath
    }
}
