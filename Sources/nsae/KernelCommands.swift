import ArgumentParser

// Owned by the Jupyter kernel work: `nsae kernel` and `nsae install-kernel`.

struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kernel", abstract: "Run the Jupyter kernel.")
    @Option(name: [.customLong("connection-file"), .customShort("f")], help: "The connection file written by Jupyter.")
    var connectionFile: String

    func run() throws { throw ValidationError("the Jupyter kernel is not available yet") }
}

struct InstallKernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "install-kernel", abstract: "Install the NSAE kernelspec for Jupyter.")
    func run() throws { throw ValidationError("install-kernel is not available yet") }
}
