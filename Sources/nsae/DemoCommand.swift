import ArgumentParser
import Foundation
import REPL
import Tensor
import Workbench

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the built-in default: the NSAE study's central experiment, on synthetic data and on the built-in GPT-2.",
        discussion: """
        Part 1 trains a standard ReLU SAE group and an NSAE group on four synthetic "layers" whose input norms span
        two orders of magnitude, then compares sparsity, reconstruction, feature recovery, the L0-vs-input-norm fit
        and the dictionaries (examples/synthetic.nsae). Part 2 does the same on the MLP outputs of nsae's built-in
        GPT-2 over the Python 3.11 documentation with a sweep of three L1 coefficients per kind, compares the two
        kinds' sparsity–fidelity frontiers at matched L0, splices the reconstructions back into the model (CE and
        KL) and shows feature cards (examples/builtin-gpt2.nsae); it needs Debian's python3.11-doc package, which the
        README's set-up command installs, or --corpus. Prints everything, and writes report.html (tables and SVG
        figures) and results.json (every number) into the output folder.
        """)

    enum Part: String, ExpressibleByArgument, CaseIterable {
        case all, synthetic, gpt2
    }

    @Flag(help: "Reduced size (what CI runs): fewer tokens and steps.")
    var quick = false

    @Option(help: "Which part to run: all (part 2 is skipped, with the reason, when its corpus is missing), synthetic, or gpt2.")
    var part: Part = .all

    @Option(help: "The Python 3.11 documentation's _sources folder, for part 2.")
    var corpus = DemoScript.pythonDocsCorpus

    @Option(help: "Folder for the stores, the saved SAEs, report.html and results.json.")
    var out = "nsae-demo"

    @Flag(help: "Print the script instead of running it.")
    var printScript = false

    /// What the demo is about to do and how long it takes, before anything runs.
    static func firstScreen(quick: Bool, synthetic: Bool, gpt2: Bool, out: String) -> String {
        var lines = ["nsae demo: a standard ReLU SAE against a Normalized SAE (NSAE), layer by layer.", ""]
        if synthetic {
            lines.append("  part 1  synthetic activations whose layers differ only in norm (×1 to ×64): train both, compare")
            lines.append("          sparsity, reconstruction, recovery of the known features, and the L0-vs-norm fit")
        }
        if gpt2 {
            lines.append("  part 2  the built-in GPT-2 on the Python 3.11 docs: harvest MLP outputs, train a sweep of three")
            lines.append("          L1 coefficients of each on every layer, splice them back into the model (CE, KL), compare")
            lines.append("          their frontiers at matched L0, feature cards")
        }
        lines.append("")
        if quick {
            lines.append("Reduced sizes (--quick). Ctrl-C stops it; report.html and results.json go to \(out)/.")
        } else {
            lines.append("This takes about 5 minutes on 2 quiet cores (longer on a busy machine); `nsae demo --quick`")
            lines.append("runs reduced sizes in a fraction of that. Ctrl-C stops it; report.html and results.json go to \(out)/.")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func run() throws {
        let size: DemoScript.Size = quick ? .quick : .full
        let lmSize: DemoScript.LanguageModelSize = quick ? .quick : .full
        var parts: [String] = []
        var skipped: String?
        if part != .gpt2 { parts.append(DemoScript.synthetic(size: size, out: out)) }
        if part != .synthetic {
            // Printing the script needs no corpus; running part 2 does.
            if let missing = printScript ? nil : missingCorpus() {
                if part == .gpt2 { throw ValidationError(missing) }
                skipped = missing
            } else {
                parts.append(DemoScript.builtinGPT2(size: lmSize, corpus: corpus, out: out))
            }
        }
        let script = parts.joined(separator: "\n")
        if printScript { print(script, terminator: ""); return }
        if let skipped { FileHandle.standardError.write(Data("part 2 (built-in GPT-2) skipped: \(skipped)\n".utf8)) }
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw ValidationError("cannot create the output folder `\(out)`: \(error.localizedDescription)")
        }
        print(DemoCommand.firstScreen(quick: quick, synthetic: part != .gpt2, gpt2: part != .synthetic && skipped == nil, out: out))
        fflush(nil)
        InterruptHandling.install()
        let started = Date()
        let runner = ReportingRunner(source: script, terminal: TerminalSink(), writeOut: TerminalSink.writeStdout)
        let outcome = runner.run(cancellation: terminalInterruptFlag)
        let seconds = Date().timeIntervalSince(started)
        let title = "nsae demo: standard SAE vs Normalized SAE"
        let ranGPT2 = part != .synthetic && skipped == nil
        var settings: [(String, JSON)] = [("quick", .bool(quick)), ("part", .string(part.rawValue)),
                                          ("synthetic", .bool(part != .gpt2)), ("gpt2", .bool(ranGPT2))]
        if part != .gpt2 {
            settings += [("tokens", .number(Double(size.tokens))), ("steps", .number(Double(size.steps))),
                         ("batch", .number(Double(size.batch))), ("pairs", .number(Double(size.pairs)))]
        }
        if ranGPT2 {
            settings.append(("gpt2_sizes", .object([
                ("tokens", .number(Double(lmSize.tokens))), ("steps", .number(Double(lmSize.steps))),
                ("batch", .number(Double(lmSize.batch))), ("splice_tokens", .number(Double(lmSize.spliceTokens))),
                ("frontier_tokens", .number(Double(lmSize.frontierTokens))),
                ("pairs", .number(Double(lmSize.pairs))), ("corpus", .string(corpus))])))
        }
        if let skipped { settings.append(("gpt2_skipped", .string(skipped))) }
        settings.append(("seconds", .number(seconds.rounded())))
        var results = runner.resultsJSON(title: title, settings: settings)
        if case .error(_, let message, let line) = outcome {
            results = .object([("error", .string(message)), ("line", .number(Double(line))), ("partial", results)])
        }
        var intro = "Produced by `nsae demo\(quick ? " --quick" : "")\(part == .all ? "" : " --part \(part.rawValue)")` "
            + "(nsae \(Session.version)) in \(Int(seconds)) s. Every number below is as measured on this run; nothing is fixed in advance."
        if let skipped { intro += " Part 2 (built-in GPT-2) was skipped: \(skipped)" }
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

    /// Why part 2 cannot run here, or nil when its corpus is in place.
    private func missingCorpus() -> String? {
        let needed = ["library", "tutorial"].map { corpus + "/" + $0 }
        guard let absent = needed.first(where: { !FileManager.default.fileExists(atPath: $0) }) else { return nil }
        let install = corpus == DemoScript.pythonDocsCorpus
            ? "install it with `apt-get install -y python3.11-doc` (the README's set-up command does)"
            : "give the Python 3.11 documentation's _sources folder with --corpus"
        return "its corpus `\(absent)` is missing; \(install)."
    }

    private func write(_ text: String, to path: String) throws {
        do { try AtomicFile.write(Data(text.utf8), to: path) } catch {
            throw ValidationError("cannot write `\(path)`: \(error.localizedDescription)")
        }
    }
}
