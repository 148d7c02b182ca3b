import ArgumentParser
import Foundation
import JupyterKernel
import Workbench

// `nsae kernel` and `nsae install-kernel`: the Jupyter front end.

struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "Run the Jupyter kernel (started by Jupyter through the installed kernelspec).")

    @Option(name: [.customLong("connection-file"), .customShort("f")], help: "The connection file written by Jupyter.")
    var connectionFile: String

    @Option(help: ArgumentHelp(
        "The largest message the kernel reads (all frames together); a larger frame disconnects its sender.",
        discussion: "Default \(KernelServer.defaultMaxMessageBytes) (64 MiB), or NSAE_KERNEL_MAX_MESSAGE_BYTES when set."))
    var maxMessageBytes: Int?

    /// The option, else the environment variable, else the default; refused unless a positive whole number.
    func messageLimit() throws -> Int {
        if let maxMessageBytes {
            guard maxMessageBytes > 0 else { throw ValidationError("--max-message-bytes must be positive") }
            return maxMessageBytes
        }
        guard let text = ProcessInfo.processInfo.environment["NSAE_KERNEL_MAX_MESSAGE_BYTES"] else {
            return KernelServer.defaultMaxMessageBytes
        }
        guard let bytes = Int(text), bytes > 0 else {
            throw ValidationError("NSAE_KERNEL_MAX_MESSAGE_BYTES must be a positive whole number of bytes, found '\(text)'")
        }
        return bytes
    }

    func run() throws {
        // Before anything starts a thread, so every kernel thread inherits the blocked SIGINT.
        InterruptSignals.blockInCurrentThread()
        let maxMessageBytes = try messageLimit()
        let connection: ConnectionInfo
        do { connection = try ConnectionInfo.load(path: connectionFile) } catch {
            throw ValidationError("\(error)")
        }
        let server: KernelServer
        do {
            server = try KernelServer(connection: connection, interpreter: Session(),
                                      implementationVersion: NSAE.configuration.version,
                                      maxMessageBytes: maxMessageBytes)
        } catch {
            throw ValidationError("\(error)")
        }
        server.run()
    }
}

struct InstallKernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-kernel",
        abstract: "Install the NSAE kernelspec for Jupyter, pointing at this nsae binary.",
        discussion: """
            Writes KERNELS/NAME/kernel.json with this binary's absolute path. KERNELS is \
            ~/.local/share/jupyter/kernels with --user (the default), or PREFIX/share/jupyter/kernels with --prefix.
            """)

    @Flag(help: "Install for the current user (the default).")
    var user = false

    @Option(help: "Install into PREFIX/share/jupyter/kernels (e.g. a virtual environment's prefix).")
    var prefix: String?

    @Option(help: "The kernelspec name (ASCII letters, digits, '-', '.', '_').")
    var name: String = KernelSpec.defaultName

    func validate() throws {
        if user && prefix != nil { throw ValidationError("--user and --prefix cannot be combined") }
        do { try KernelSpec.validate(name: name) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        let directory = prefix.map(KernelSpec.prefixKernelsDirectory) ?? KernelSpec.userKernelsDirectory()
        let path: String
        do {
            path = try KernelSpec.install(executable: KernelSpec.currentExecutable(), kernelsDirectory: directory,
                                          name: name)
        } catch {
            throw ValidationError("\(error)")
        }
        print("Installed kernelspec '\(name)' in \(path)")
    }
}
