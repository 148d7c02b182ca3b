import ArgumentParser
import Foundation
import REPL
import Workbench

@main
struct NSAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nsae",
        abstract: "A workbench for sparse-autoencoder interpretability research. With no subcommand, starts the REPL.",
        version: Session.version,
        subcommands: [RunCommand.self, DemoCommand.self, KernelCommand.self, InstallKernelCommand.self, DocsCommand.self])

    /// `nsae help --markdown` prints docs/commands.md; everything else goes to the argument parser.
    static func main() {
        if Array(CommandLine.arguments.dropFirst()) == ["help", "--markdown"] {
            print(HelpText.markdown(), terminator: "")
            return
        }
        main(nil)
    }

    func run() throws {
        InterruptHandling.install()
        let status = InteractiveLoop(session: Session()).run()
        if status != 0 { throw ExitCode(status) }
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a .nsae script; stops at the first error with exit status 1.",
        discussion: "With --json, stdout carries one JSON object per statement; progress goes to stderr.")

    @Argument(help: "The script, or - to read standard input.")
    var file: String

    @Flag(help: "Print one JSON object per statement instead of text.")
    var json = false

    @Option(name: .customLong("define"), parsing: .singleValue,
            help: ArgumentHelp("Bind NAME to VALUE before the script runs (a number when it reads as one, else a string), e.g. --define model=models/gpt2.", valueName: "NAME=VALUE"))
    var defines: [String] = []

    func run() throws {
        let source: String
        if file == "-" {
            source = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read the script `\(file)`: no such file or not readable")
            }
            source = String(decoding: data, as: UTF8.self)
        }
        let session = Session()
        for definition in defines {
            guard let eq = definition.firstIndex(of: "="), eq != definition.startIndex else {
                throw ValidationError("--define takes NAME=VALUE, found `\(definition)`")
            }
            let name = String(definition[..<eq]), text = String(definition[definition.index(after: eq)...])
            guard name.first.map({ $0.isLetter || $0 == "_" }) == true, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw ValidationError("--define: `\(name)` is not a valid name (letters, digits and _, not starting with a digit)")
            }
            session.bind(name, Double(text).map(Value.number) ?? .string(text))
        }
        InterruptHandling.install()
        let status = ScriptRunner(session: session, json: json).run(source, cancellation: terminalInterruptFlag)
        if status != 0 { throw ExitCode(status) }
    }
}

struct DocsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docs", abstract: "Print docs/commands.md (the verb reference generated from help); same as `nsae help --markdown`.",
        shouldDisplay: false)

    @Flag(help: "Markdown output (the only form).")
    var markdown = false

    func run() throws {
        print(HelpText.markdown(), terminator: "")
    }
}
