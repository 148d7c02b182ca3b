import Activations
import Foundation
import GPT2
import SAE
import Tensor

// load (all kinds), tokenize, run: thin adapters over GPT2, Activations and SAE.

extension Engines {
    static func loadModel(_ path: String, processing: WeightProcessing, call: Call) throws -> Value {
        let resolved = path == "builtin" ? try builtinModelPath(call) : path
        let model: GPT2Model
        do { model = try GPT2Model.load(path: resolved, processing: processing) } catch {
            throw call.error(atArgument: 1, "cannot load GPT-2 from `\(resolved)`: \(error)")
        }
        return .object(ModelObject(model: model, path: resolved))
    }

    /// The GPT-2 that ships with nsae (`models/builtin-gpt2` in the repository, trained by
    /// `tools/builtin_model/train.py`). Looked for in $NSAE_BUILTIN_GPT2; in `share/nsae/gpt2` or
    /// `models/builtin-gpt2` beside the executable or up to four folders above it (an installed layout, or a build
    /// inside the checkout); and in the checkout this binary was built from.
    static func builtinModelPath(_ call: Call) throws -> String {
        let candidates = builtinModelCandidates()
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/config.json") }) {
            return found
        }
        throw call.error(atArgument: 1, "the builtin GPT-2 is not installed with this build (looked in "
            + candidates.map { "`\($0)`" }.joined(separator: ", ")
            + "); set NSAE_BUILTIN_GPT2 to its folder, or give a path: load gpt2 \"PATH\"")
    }

    static func builtinModelCandidates() -> [String] {
        if let env = ProcessInfo.processInfo.environment["NSAE_BUILTIN_GPT2"], !env.isEmpty { return [env] }
        var candidates: [String] = []
        // /proc/self/exe names the binary even when it was started through $PATH or a symlink.
        let executablePath = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments.first ?? "."
        let executable = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
        for up in 0...4 {
            var dir = executable
            for _ in 0..<up { dir = dir.deletingLastPathComponent() }
            candidates.append(dir.appendingPathComponent("share/nsae/gpt2").path)
            candidates.append(dir.appendingPathComponent("models/builtin-gpt2").path)
        }
        // Sources/Workbench/Engines/ModelGlue.swift → the repository root.
        var checkout = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { checkout = checkout.deletingLastPathComponent() }
        candidates.append(checkout.appendingPathComponent("models/builtin-gpt2").path)
        var seen = Set<String>()
        return candidates.filter { seen.insert($0).inserted }
    }

    static func loadCorpus(_ path: String, field: String, split: Corpus.Split?, special: Bool, call: Call) throws -> Value {
        do {
            var corpus = try Corpus(path: path, jsonField: field, split: split)
            corpus.specialTokens = special
            return .object(CorpusObject(corpus: corpus))
        } catch {
            throw call.error(atArgument: 1, "cannot load the corpus `\(path)`: \(error)")
        }
    }

    static func loadStore(_ path: String, call: Call) throws -> Value {
        let lower = path.lowercased()
        let context = call.work("load")
        defer { call.finish(context) }
        do {
            if lower.hasSuffix(".npy") || lower.hasSuffix(".safetensors") {
                return .object(StoreObject(store: try ActivationStore.openInPlace(path, context: context)))
            }
            return .object(StoreObject(store: try ActivationStore(path: path, allowIncomplete: call.flag("incomplete"))))
        } catch {
            throw call.error(atArgument: 1, "cannot load activations from `\(path)`: \(error)")
        }
    }

    static func loadSAE(_ path: String, call: Call) throws -> Value {
        if SAELensIO.isSweepFolder(path) {
            do {
                let sweep = try SAELensIO.loadSweep(path)
                let first = (path as NSString).appendingPathComponent(SAELensIO.sweepFolderName(sweep.architecture, option: sweep.gridOption, value: sweep.values[0]))
                return .object(SweepObject(sweep: sweep, store: nil, modelKwargs: modelFromPretrainedKwargs(saeFolder: first)))
            } catch {
                throw call.error(atArgument: 1, "cannot load a sweep from `\(path)`: \(error)")
            }
        }
        do {
            return .object(SAEObject(group: try SAELensIO.load(path), store: nil, modelKwargs: modelFromPretrainedKwargs(saeFolder: path)))
        } catch {
            throw call.error(atArgument: 1, "cannot load an SAE group from `\(path)`: \(error)")
        }
    }

    static func tokenizer(of model: ModelObject, _ call: Call) throws -> Tokenizer {
        guard let tokenizer = model.model.tokenizer else {
            throw call.error(atArgument: 0, "the model \(model.model.name) has no tokenizer (put vocab.json and merges.txt beside its weights)")
        }
        return tokenizer
    }

    static func tokenize(_ call: Call) throws -> Value {
        let model = try call.object(0, as: ModelObject.self)
        guard case .string(let text) = call.arguments[1] else { throw call.error(atArgument: 1, "expected a string") }
        let tokenizer = try tokenizer(of: model, call)
        let ids = tokenizer.encode(text, special: call.flag("special"))
        return .table(Table(columns: ["position", "id", "token"], rows: ids.enumerated().map { i, id in
            [.number(Double(i)), .number(Double(id)), .text(tokenizer.tokenString(id))]
        }))
    }

    static func runModel(_ call: Call) throws -> Value {
        let model = try call.object(0, as: ModelObject.self)
        guard case .string(let text) = call.arguments[1] else { throw call.error(atArgument: 1, "expected a string") }
        let tokenizer = try tokenizer(of: model, call)
        let k = try call.requiredInteger("top")
        guard k >= 1 else { throw call.error(atOption: "top", "top must be at least 1, found \(k)") }
        var ids = tokenizer.encode(text, special: call.flag("special"))
        if call.flag("bos") { ids.insert(Tokenizer.endOfText, at: 0) }
        guard !ids.isEmpty else { throw call.error(atArgument: 1, "the text has no tokens; give some text or bos=true") }
        let limit = model.model.config.nPositions
        guard ids.count <= limit else {
            throw call.error(atArgument: 1, "the text is \(ids.count) tokens, longer than the model's context of \(limit)")
        }
        let result = try model.model.forward(tokens: ids, batch: 1, seqLen: ids.count)
        guard let logits = result.logits else { throw call.error("the forward pass returned no logits") }
        let ce = ids.count > 1 ? Double(try Losses.meanCrossEntropy(logits: logits, tokens: ids, batch: 1, seqLen: ids.count)) : .nan
        let top: [[Int32]] = logits.data.withUnsafeBufferPointer { p in
            (0..<ids.count).map { t in Kernels.topK(p.baseAddress! + t * logits.cols, count: logits.cols, k: k).map { Int32($0) } }
        }
        return .object(RunObject(tokens: ids, ceLoss: ce, top: top, tokenText: { tokenizer.tokenString($0) }))
    }
}
