import Tensor

// Verbs about the session itself: help, echo, show, vars, set.

enum CoreVerbs {
    static var all: [Verb] { [help, echo, show, vars, set] }

    static let help = Verb(
        "help", summary: "list the verbs, or show one verb's usage, options and an example",
        example: "help train",
        positionals: [.optional("VERB", .verbName, "the verb to describe")]
    ) { call in
        if case .string(let name)? = call.arguments.first, let verb = call.session.registry.verb(named: name) {
            return .string(HelpText.verb(verb))
        }
        return .table(HelpText.overview(call.session.registry))
    }

    static let echo = Verb(
        "echo", summary: "write text and a newline to standard output",
        example: "echo \"hello\"",
        positionals: [.required("TEXT", .value, "the text (or any value) to write")]
    ) { call in
        let text: String
        if case .string(let s) = call.arguments[0] { text = s } else { text = Rendering.text(call.arguments[0]) }
        call.sink.stream(text + "\n", name: .stdout)
        return .none
    }

    static let show = Verb(
        "show", summary: "display a value now (display_data in Jupyter), e.g. a figure in the middle of a cell",
        example: "show 2k",
        positionals: [.required("VALUE", .value, "the value to display")]
    ) { call in
        call.display(call.arguments[0])
        return .none
    }

    static let vars = Verb(
        "vars", summary: "table of bound names, their types and one-line summaries",
        example: "vars"
    ) { call in
        let session = call.session
        let rows = session.boundNames.map { name -> [Cell] in
            let value = session.value(named: name) ?? .none
            return [.text(name), .text(value.typeName), .text(value.summary)]
        }
        return .table(Table(columns: ["name", "type", "summary"], rows: rows))
    }

    static let set = Verb(
        "set", summary: "session settings: BLAS threads and the default random seed; with no options, shows them",
        example: "set threads=2 seed=1",
        options: [
            .optional("threads", .integer, default: "OPENBLAS_NUM_THREADS", "threads for matrix products (BLAS)"),
            // Described, not a value: `set threads=2` must leave the seed as it is.
            .optional("seed", .integer, default: .described("1 at the start of a session"), "default seed of verbs that draw random numbers"),
        ]
    ) { call in
        if let threads = call.integer("threads") {
            guard threads >= 1, threads <= 1024 else { throw call.error(atOption: "threads", "threads must be between 1 and 1024, found \(threads)") }
            BLAS.setThreads(threads)
            call.session.settings.threads = threads
        }
        if let seed = call.integer("seed") {
            guard seed >= 0 else { throw call.error(atOption: "seed", "seed must be ≥ 0, found \(seed)") }
            call.session.settings.seed = seed
        }
        if call.has("threads") || call.has("seed") { return .none }
        let settings = call.session.settings
        return .table(Table(columns: ["setting", "value"], rows: [
            [.text("threads"), settings.threads > 0 ? .number(Double(settings.threads)) : .text("default")],
            [.text("seed"), .number(Double(settings.seed))],
        ]))
    }
}
