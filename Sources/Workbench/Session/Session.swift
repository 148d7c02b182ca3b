import Tensor

/// Observes statements as a session runs them (the `--json` script runner writes one line per statement).
public protocol StatementObserver: AnyObject {
    func willRun(_ statement: Statement)
    func didRun(_ statement: Statement, value: Value)
}

/// The command language's interpreter: named values, settings and the verb registry.
/// One session serves one front end; it is not shared between threads.
public final class Session: Interpreter {
    public private(set) var bindings: [String: Value] = [:]
    /// Binding order, so `vars` lists names in the order they were first bound.
    private var bindingOrder: [String] = []
    public internal(set) var settings = Settings()
    let registry: VerbRegistry
    private var progressSerial = 0
    let lastProgress = LastProgress()

    public struct Settings {
        public var threads: Int = 0
        public var seed: Int = 1
    }

    public init() {
        registry = VerbRegistry.standard()
    }

    public var banner: String {
        "nsae \(Session.version): a workbench for sparse-autoencoder interpretability research.\n"
            + "Type `help` for the verbs, `help VERB` for one of them; Ctrl-C interrupts a running command."
    }
    public var languageVersion: String { Session.version }
    public static let version = "0.1.0"

    public var verbNames: [String] { registry.visible.map(\.name) }

    func nextProgressSerial() -> Int {
        progressSerial += 1
        return progressSerial
    }

    public func value(named name: String) -> Value? { bindings[name] }

    public func bind(_ name: String, _ value: Value) {
        if bindings[name] == nil { bindingOrder.append(name) }
        bindings[name] = value
    }

    public var boundNames: [String] { bindingOrder }

    // MARK: Running code

    public func execute(_ code: String, sink: OutputSink, cancellation: CancellationFlag) -> ExecutionOutcome {
        run(code, sink: sink, cancellation: cancellation, observer: nil)
    }

    /// Parses all of `code` first (a syntax error anywhere runs nothing), then runs its statements in order,
    /// stopping at the first error or interruption. Values bound before an error stay bound.
    /// Without an observer (Jupyter, the REPL) every unbound result but the last is shown through `sink.display`
    /// as its statement finishes, and the last one is the outcome's result; a script's observer prints them all.
    public func run(_ code: String, sink: OutputSink, cancellation: CancellationFlag,
                    observer: StatementObserver?) -> ExecutionOutcome {
        var parser = Parser(code, isVerb: { self.registry.verb(named: $0) != nil })
        let statements: [Statement]
        do {
            statements = try parser.parseAll()
        } catch let error as LanguageError {
            return .error(name: "SyntaxError", message: error.rendered(in: code) + Self.nothingRan, line: error.position.line)
        } catch {
            return .error(name: "SyntaxError", message: "\(error)" + Self.nothingRan, line: 1)
        }
        var lastResult: MimeBundle?
        var currentLine = 1
        do {
            for (index, statement) in statements.enumerated() {
                currentLine = statement.line
                if cancellation.isCancelled { return .interrupted(message: "interrupted before line \(statement.line)") }
                observer?.willRun(statement)
                lastProgress.set(nil)
                let value = try run(statement, sink: sink, cancellation: cancellation)
                observer?.didRun(statement, value: value)
                if let target = statement.target {
                    bind(target.value, value)
                    continue
                }
                if case .none = value { continue }
                if index == statements.count - 1 {
                    lastResult = Rendering.bundle(value)
                } else if observer == nil {
                    sink.display(Rendering.bundle(value))
                }
            }
        } catch let error as LanguageError {
            let name = error.kind == .runtime ? "Error" : "SyntaxError"
            return .error(name: name, message: error.rendered(in: code), line: error.position.line)
        } catch is Cancelled {
            var kept = ""
            if let update = lastProgress.update, update.done > 0 {
                let of = update.total > 0 ? " of \(update.total)" : ""
                kept = ": \(update.task) kept the \(update.done)\(of) \(update.unit) it finished"
            }
            return .interrupted(message: "interrupted at line \(currentLine)\(kept); bound values are kept")
        } catch {
            return .error(name: "Error", message: "error at line \(currentLine): \(error)", line: currentLine)
        }
        return .ok(result: lastResult)
    }

    private static let nothingRan = "\n(the code was parsed whole first: nothing ran)"

    /// Runs one parsed statement and returns its value (the caller binds it).
    func run(_ statement: Statement, sink: OutputSink, cancellation: CancellationFlag) throws -> Value {
        if let target = statement.target, registry.verb(named: target.value) != nil {
            throw LanguageError(target.position, "cannot bind the name `\(target.value)`: it is a verb; choose another name", kind: .runtime)
        }
        switch statement.body {
        case .value(let expression):
            return try evaluate(expression, as: .value, verbs: [])
        case .command(let verbName, let arguments, let options):
            guard let verb = registry.verb(named: verbName.value) else {
                if bindings[verbName.value] != nil {
                    throw LanguageError(verbName.position, "`\(verbName.value)` is a bound value, not a verb; a statement starts with a verb or is a single value", kind: .runtime)
                }
                throw LanguageError(verbName.position, "unknown verb `\(verbName.value)`\(didYouMean(verbName.value, registry.visible.map(\.name))); type `help` for the list", kind: .runtime)
            }
            let call = try prepare(verb, statement: statement, verbPosition: verbName.position, arguments: arguments,
                                   options: options, sink: sink, cancellation: cancellation)
            if let reason = verb.unavailableReason { throw LanguageError(verbName.position, reason, kind: .runtime) }
            do {
                let value = try verb.run(call)
                if case .table(var table) = value, !call.shownFigures.isEmpty {
                    table.figures = call.shownFigures
                    return .table(table)
                }
                return value
            } catch let error as LanguageError {
                throw error
            } catch let cancelled as Cancelled {
                throw cancelled
            } catch {
                throw LanguageError(verbName.position, "\(verb.name) failed: \(error)", kind: .runtime)
            }
        }
    }

    /// Checks the arguments and options against the verb's declaration and evaluates them.
    private func prepare(_ verb: Verb, statement: Statement, verbPosition: SourcePosition,
                         arguments: [Located<Expr>], options: [OptionArgument],
                         sink: OutputSink, cancellation: CancellationFlag) throws -> Call {
        let required = verb.positionals.filter(\.required)
        if arguments.count < required.count {
            let missing = verb.positionals[arguments.count]
            let at = arguments.last.map { _ in statementEnd(statement) } ?? verbPosition
            throw LanguageError(at, "`\(verb.name)` expects \(missing.name) (\(missing.kind.placeholder)) here; usage: \(verb.usage)", kind: .runtime)
        }
        if arguments.count > verb.positionals.count && !verb.variadic {
            let extra = arguments[verb.positionals.count]
            var hint = ""
            if case .name(let n) = extra.value, let near = nearest(n, in: verb.options.map(\.name)) {
                hint = " (options are written `key=value`, e.g. `\(near)=…`)"
            }
            throw LanguageError(extra.position, "`\(verb.name)` takes \(verb.positionals.count) argument\(verb.positionals.count == 1 ? "" : "s"), found another one\(hint); usage: \(verb.usage)", kind: .runtime)
        }
        var values: [Value] = []
        var positions: [SourcePosition] = []
        for (i, argument) in arguments.enumerated() {
            let parameter = verb.positionals[min(i, verb.positionals.count - 1)]
            values.append(try evaluate(argument, as: parameter.kind, verbs: registry.visible.map(\.name)))
            positions.append(argument.position)
        }
        var optionValues: [String: Value] = [:]
        var optionPositions: [String: SourcePosition] = [:]
        for option in options {
            guard let parameter = verb.options.first(where: { $0.name == option.key.value }) else {
                let names = verb.options.map(\.name)
                let known = names.isEmpty ? "`\(verb.name)` takes no options" : "options of `\(verb.name)`: \(names.joined(separator: ", "))"
                throw LanguageError(option.key.position, "unknown option `\(option.key.value)`\(didYouMean(option.key.value, names)); \(known)", kind: .runtime)
            }
            optionValues[parameter.name] = try evaluate(option.value, as: parameter.kind, verbs: [], optionName: parameter.name)
            optionPositions[parameter.name] = option.key.position
        }
        try checkOptions(verb, given: optionValues, at: optionPositions, arguments: values, verbPosition: verbPosition)
        return Call(session: self, verb: verb, statement: statement, sink: sink, cancellation: cancellation,
                    verbPosition: verbPosition, arguments: values, argumentPositions: positions,
                    options: optionValues, optionPositions: optionPositions)
    }

    /// The declaration's rules on options: an option of one form only with that form, at most one of a group,
    /// exactly one of a required group, and every required option (all missing ones named at once).
    private func checkOptions(_ verb: Verb, given: [String: Value], at positions: [String: SourcePosition],
                              arguments: [Value], verbPosition: SourcePosition) throws {
        func written(_ name: String) -> String { "\(name)=\(verb.option(named: name)?.kind.placeholder ?? "…")" }
        if let words = verb.formWords, case .string(let form)? = arguments.first, words.contains(form) {
            for option in verb.options where given[option.name] != nil {
                guard let only = option.onlyFor, !only.contains(form) else { continue }
                throw LanguageError(positions[option.name] ?? verbPosition,
                                    "\(option.name)= is not an option of \(form): it applies only to \(only.map { "`\(verb.name) \($0)`" }.joined(separator: ", "))",
                                    kind: .runtime)
            }
        }
        for group in verb.groups {
            let present = group.names.filter { given[$0] != nil }
            if present.count > 1 {
                let second = present.dropFirst().min { (positions[$0]?.offset ?? 0) < (positions[$1]?.offset ?? 0) }!
                throw LanguageError(positions[second] ?? verbPosition,
                                    "give \(Self.orList(group.names.map { "\($0)=" })), not \(present.count == 2 ? "both" : "several")", kind: .runtime)
            }
        }
        var missing = verb.options.filter { $0.required && given[$0.name] == nil }.map { written($0.name) }
        for group in verb.groups where group.required && !group.names.contains(where: { given[$0] != nil }) {
            missing.append(Self.orList(group.names.map(written)))
        }
        if !missing.isEmpty {
            let list = missing.count == 1 ? missing[0] : missing.dropLast().joined(separator: ", ") + " and " + missing.last!
            throw LanguageError(verbPosition, "`\(verb.name)` needs \(list); usage: \(verb.usage)", kind: .runtime)
        }
    }

    /// "a", "a or b", "a, b or c".
    static func orList(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " or " + items.last!
    }

    private func statementEnd(_ statement: Statement) -> SourcePosition {
        if case .command(_, let arguments, _) = statement.body, let last = arguments.last {
            return last.position
        } else if case .command(let verb, _, _) = statement.body {
            return verb.position
        }
        return SourcePosition(line: statement.line, column: 1, offset: 0)
    }

    /// Evaluates an expression for a parameter of `kind`, with an error at the expression when it does not fit.
    func evaluate(_ expression: Located<Expr>, as kind: ParameterKind, verbs: [String],
                  optionName: String? = nil) throws -> Value {
        let at = expression.position
        let what = optionName.map { "for `\($0)=`" } ?? "here"
        func fail(_ expected: String) -> LanguageError {
            LanguageError(at, "expected \(expected) \(what), found \(describe(expression.value))", kind: .runtime)
        }
        func resolved() throws -> Value {
            try literalValue(expression)
        }
        switch kind {
        case .value:
            return try resolved()
        case .number:
            if case .number = try resolved() { return try resolved() }
            throw fail("a number")
        case .integer:
            let value = try resolved()
            if case .number(let v) = value, exactInt(v) != nil { return value }
            throw fail("a whole number")
        case .string:
            if case .string = try resolved() { return try resolved() }
            throw fail("a string in double quotes")
        case .path:
            if case .string = try resolved() { return try resolved() }
            throw fail("a path in double quotes")
        case .bool:
            if case .bool = try resolved() { return try resolved() }
            throw fail("true or false")
        case .word(let choices), .pathOrWord(let choices):
            if case .name(let word) = expression.value {
                if choices.contains(word) { return .string(word) }
                // A path may come from a bound string (`nsae run … --define model=PATH`).
                if case .pathOrWord = kind, case .string(let path)? = bindings[word] { return .string(path) }
                throw LanguageError(at, "expected one of \(choices.joined(separator: ", ")) \(what), found `\(word)`\(didYouMean(word, choices))", kind: .runtime)
            }
            if case .pathOrWord = kind, case .string(let path) = expression.value { return .string(path) }
            if case .string(let word) = expression.value, choices.contains(word) { return .string(word) }
            if case .pathOrWord = kind { throw fail("a path in double quotes or one of \(choices.joined(separator: ", "))") }
            throw fail("one of \(choices.joined(separator: ", "))")
        case .hookName:
            if case .name(let word) = expression.value { return .string(word) }
            if case .string(let word) = expression.value { return .string(word) }
            throw fail("a hook name")
        case .column:
            if case .name(let word) = expression.value { return .string(word) }
            if case .string(let word) = expression.value { return .string(word) }
            throw fail("a column name")
        case .verbName:
            guard case .name(let word) = expression.value else { throw fail("a verb name") }
            guard verbs.contains(word) || registry.verb(named: word) != nil else {
                throw LanguageError(at, "unknown verb `\(word)`\(didYouMean(word, verbs))", kind: .runtime)
            }
            return .string(word)
        case .layers:
            let value = try resolved()
            switch value {
            case .number(let v):
                guard let layer = exactInt(v), layer >= 0 else { throw fail("a layer number (a whole number ≥ 0)") }
                return .list([.number(Double(layer))])
            case .range(let lo, let hi):
                guard lo >= 0 else { throw fail("layers ≥ 0") }
                return .list((lo...hi).map { .number(Double($0)) })
            case .list(let items):
                for item in items {
                    guard case .number(let v) = item, let layer = exactInt(v), layer >= 0 else { throw fail("a list of layer numbers") }
                }
                return value
            default:
                throw fail("a layer, a range such as 0..11, or a list such as [0, 3]")
            }
        case .numbers:
            let value = try resolved()
            if case .range(let lo, let hi) = value { return .list((lo...hi).map { .number(Double($0)) }) }
            if case .number = value { return .list([value]) }
            guard case .list(let items) = value, items.allSatisfy({ if case .number = $0 { true } else { false } }) else {
                throw fail("a list of numbers such as [1, 4, 16]")
            }
            return value
        case .object(let type):
            guard case .name(let name) = expression.value else { throw fail("the name of a \(type)") }
            let value = try resolved()
            guard value.typeName == type else {
                throw LanguageError(at, "expected a \(type) \(what), but `\(name)` is a \(value.typeName)", kind: .runtime)
            }
            return value
        case .objects(let types):
            let expected = types.map { "a \($0)" }.joined(separator: " or ")
            guard case .name(let name) = expression.value else { throw fail("the name of \(expected)") }
            let value = try resolved()
            guard types.contains(value.typeName) else {
                throw LanguageError(at, "expected \(expected) \(what), but `\(name)` is a \(value.typeName)", kind: .runtime)
            }
            return value
        }
    }

    /// The value of a literal, or of a name looked up in the bindings.
    func literalValue(_ expression: Located<Expr>) throws -> Value {
        switch expression.value {
        case .number(let v): return .number(v)
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .range(let lo, let hi): return .range(lo, hi)
        case .list(let items): return .list(try items.map(literalValue))
        case .call(let name, let arguments):
            guard let builtin = Builtins.named(name.value) else {
                let names = Builtins.all.map(\.name)
                throw LanguageError(name.position, "unknown function `\(name.value)`\(didYouMean(name.value, names)); the functions are \(Builtins.all.map(\.usage).joined(separator: ", "))", kind: .runtime)
            }
            return try builtin.evaluate(try arguments.map(literalValue), arguments.map(\.position), name.position)
        case .name(let name):
            if let value = bindings[name] { return value }
            var hint = didYouMean(name, bindingOrder)
            if hint.isEmpty, registry.verb(named: name) != nil { hint = " (`\(name)` is a verb; a command starts with it)" }
            let known = bindingOrder.isEmpty ? "no names are bound yet" : "bound names: \(bindingOrder.joined(separator: ", "))"
            throw LanguageError(expression.position, "unknown name `\(name)`\(hint); \(known)", kind: .runtime)
        }
    }

    func unbind(_ name: String) {
        bindings[name] = nil
        bindingOrder.removeAll { $0 == name }
    }
}

func describe(_ expression: Expr) -> String {
    switch expression {
    case .number(let v): return "the number \(formatNumber(v))"
    case .string(let s): return "the string \(quoteString(s).truncated(to: 40))"
    case .bool(let b): return b ? "true" : "false"
    case .name(let n): return "the name `\(n)`"
    case .range(let lo, let hi): return "the range \(lo)..\(hi)"
    case .list(let items): return "a list of \(items.count)"
    case .call(let name, _): return "a call of \(name.value)(…)"
    }
}
