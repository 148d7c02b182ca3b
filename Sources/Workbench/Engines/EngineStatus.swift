// Which engines this build wires in. A verb whose engine is missing stays declared (help lists it, marked
// "(not yet available)") and refuses to run with that reason instead of faking a result. All engines are wired
// now; a verb gets `unavailable: EngineStatus.missing("…")` again if its engine is ever taken out.

enum EngineStatus {
    static func missing(_ engine: String) -> String { "this verb is not yet available: the \(engine) engine is not in this build yet" }

    static let gpt2: String? = nil
    static let activations: String? = nil
    static let topK: String? = nil
    static let sae: String? = nil
    static let training: String? = nil
    static let splice: String? = nil
    static let logitLens: String? = nil
    static let dictionary: String? = nil
    static let synthetic: String? = nil
}
