import ArgumentParser

@main
struct NSAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nsae",
        abstract: "A workbench for sparse-autoencoder interpretability research.",
        version: "0.1.0",
        subcommands: [KernelCommand.self, InstallKernelCommand.self])
}
