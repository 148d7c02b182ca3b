import ArgumentParser
import Foundation
import Tensor
import Workbench

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the built-in default: the NSAE study's central experiment on synthetic data with known ground truth.",
        discussion: """
        Trains a standard ReLU SAE group and an NSAE group on four synthetic "layers" whose input norms span two
        orders of magnitude, then compares sparsity, reconstruction, feature recovery, the L0-vs-input-norm fit and
        the dictionaries. Prints everything, and writes report.html (tables and SVG figures) and results.json (every
        number) into the output folder. The script it runs is examples/synthetic.nsae.
        """)

    @Flag(help: "Reduced size (what CI runs): fewer tokens and steps.")
    var quick = false

    @Option(help: "Folder for the store, the saved SAEs, report.html and results.json.")
    var out = "nsae-demo"

    @Flag(help: "Print the script instead of running it.")
    var printScript = false

    func run() throws {
        let size: DemoScript.Size = quick ? .quick : .full
        let script = DemoScript.synthetic(size: size, out: out)
        if printScript { print(script, terminator: ""); return }
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw ValidationError("cannot create the output folder `\(out)`: \(error.localizedDescription)")
        }
        InterruptHandling.install()
        let started = Date()
        let runner = ReportingRunner(source: script)
        let outcome = runner.run(cancellation: terminalInterruptFlag)
        let seconds = Date().timeIntervalSince(started)
        let title = "nsae demo: standard SAE vs Normalized SAE on synthetic activations"
        let settings: [(String, JSON)] = [("quick", .bool(quick)), ("tokens", .number(Double(size.tokens))),
                                          ("steps", .number(Double(size.steps))), ("batch", .number(Double(size.batch))),
                                          ("pairs", .number(Double(size.pairs))),
                                          ("seconds", .number(seconds.rounded()))]
        var results = runner.resultsJSON(title: title, settings: settings)
        if case .error(_, let message, let line) = outcome {
            results = .object([("error", .string(message)), ("line", .number(Double(line))), ("partial", results)])
        }
        let intro = "Produced by `nsae demo\(quick ? " --quick" : "")` (nsae \(Session.version)) in \(Int(seconds)) s. "
            + "Every number below is as measured on this run; nothing is fixed in advance."
        try write(runner.reportHTML(title: title, intro: intro), to: out + "/report.html")
        try write(results.serialized + "\n", to: out + "/results.json")
        FileHandle.standardError.write(Data("wrote \(out)/report.html and \(out)/results.json (\(Int(seconds)) s)\n".utf8))
        switch outcome {
        case .ok: return
        case .error(_, let message, _):
            FileHandle.standardError.write(Data((message + "\n").utf8))
            throw ExitCode(1)
        case .interrupted(let message):
            FileHandle.standardError.write(Data((message + "\n").utf8))
            throw ExitCode(130)
        }
    }

    private func write(_ text: String, to path: String) throws {
        do { try AtomicFile.write(Data(text.utf8), to: path) } catch {
            throw ValidationError("cannot write `\(path)`: \(error.localizedDescription)")
        }
    }
}
