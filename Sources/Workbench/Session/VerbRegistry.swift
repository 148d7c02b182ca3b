// The table of verbs. Each group of verbs lives in its own file under Verbs/ and registers here.

struct VerbRegistry {
    private(set) var verbs: [Verb] = []
    private var index: [String: Int] = [:]

    mutating func add(_ verb: Verb) {
        precondition(index[verb.name] == nil, "verb \(verb.name) declared twice")
        index[verb.name] = verbs.count
        verbs.append(verb)
    }

    func verb(named name: String) -> Verb? { index[name].map { verbs[$0] } }

    /// Verbs shown in help and completion.
    var visible: [Verb] { verbs.filter { !$0.hidden } }

    static func standard() -> VerbRegistry {
        var registry = VerbRegistry()
        for verb in CoreVerbs.all + ModelVerbs.all + DataVerbs.all + SAEVerbs.all + SweepVerbs.all + AnalysisVerbs.all + FrontierVerbs.all + [PlotVerb.plot, ExportVerb.export] {
            registry.add(verb)
        }
        return registry
    }
}
