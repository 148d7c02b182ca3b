import Synchronization
import Tensor

// The verb registry's types. Each verb declares its parameters once; that declaration drives argument checking,
// `help`, completion, inspection and docs/commands.md.

/// What a parameter accepts. Names are resolved by kind: a `.word` takes the name literally, an `.object` looks it up.
public enum ParameterKind: Sendable, Equatable {
    case number
    case integer
    case string
    /// A file or folder path in double quotes (or a name bound to a string).
    case path
    case bool
    /// A name taken literally, one of the choices (`relu`, `nsae`; `noise=train`).
    case word([String])
    /// A path string, or one of the literal words (`load gpt2 builtin`).
    case pathOrWord([String])
    /// One layer, an inclusive range or a list of layers.
    case layers
    /// A list of numbers.
    case numbers
    /// A bound value of this type (model, corpus, store, sae, run).
    case object(String)
    /// A bound value of one of these types (`train` takes an sae or a sweep).
    case objects([String])
    /// Any value: a literal or a bound name.
    case value
    /// The name of a verb (`help VERB`).
    case verbName
    /// A table column, written as a bare name (`x=step`) or a string (`x="mse_term"`).
    case column
    /// A hook point, written as a bare name (`mlp_out`, `attn.hook_z`, `blocks.5.hook_resid_pre`) or a string;
    /// the verb parses it with GPT2's HookPoint. `choices` are offered by completion.
    case hookName([String])

    var placeholder: String {
        switch self {
        case .number: return "N"
        case .integer: return "N"
        case .string: return "\"TEXT\""
        case .path: return "\"PATH\""
        case .bool: return "true|false"
        case .word(let choices): return choices.joined(separator: "|")
        case .pathOrWord(let words): return (["\"PATH\""] + words).joined(separator: "|")
        case .layers: return "L|A..B|[L,…]"
        case .numbers: return "[N,…]"
        case .object(let type): return type.uppercased()
        case .objects(let types): return types.map { $0.uppercased() }.joined(separator: "|")
        case .value: return "VALUE"
        case .verbName: return "VERB"
        case .column: return "COLUMN"
        case .hookName: return "HOOK"
        }
    }
}

/// A parameter's default. A value (`4096`, `1e-3`, `false`, `"sum"` for a word) is what the call returns when the
/// option is not given, so glue reads it through the call and no default is written twice. A description
/// (`.described("the store's context")`) says what the verb does when the option is absent; the call returns nil.
/// A string literal is read as a literal of the parameter's kind where it is one (`"4096"`, `"1M"`, `"[1,4,16,64]"`,
/// `"\"text\""`, a word among the choices) and as a description otherwise, so declarations written before typed
/// defaults keep working.
public struct ParameterDefault: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
                                ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral {
    /// A default value, held in a Sendable form (Value holds engine objects).
    public enum Literal: Sendable, Equatable {
        case number(Double)
        case string(String)
        case bool(Bool)
        case numbers([Double])

        var value: Value {
            switch self {
            case .number(let v): return .number(v)
            case .string(let s): return .string(s)
            case .bool(let b): return .bool(b)
            case .numbers(let vs): return .list(vs.map(Value.number))
            }
        }
    }
    enum Form: Sendable, Equatable {
        /// Written as text; resolved against the parameter's kind when the parameter is made.
        case text(String)
        case value(Literal, shown: String)
        case described(String)
    }
    let form: Form

    init(form: Form) { self.form = form }
    public init(stringLiteral text: String) { form = .text(text) }
    public init(integerLiteral v: Int) { form = .value(.number(Double(v)), shown: ParameterDefault.compact(v)) }
    public init(floatLiteral v: Double) { form = .value(.number(v), shown: formatNumber(v)) }
    public init(booleanLiteral b: Bool) { form = .value(.bool(b), shown: b ? "true" : "false") }
    /// What the verb does when the option is absent; the call returns nil for it.
    public static func described(_ text: String) -> ParameterDefault { ParameterDefault(form: .described(text)) }

    /// 10000 → 10k, 2000000 → 2M: as a user would write it.
    static func compact(_ v: Int) -> String {
        for (factor, suffix) in [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")] where v != 0 && v % factor == 0 {
            return "\(v / factor)\(suffix)"
        }
        return String(v)
    }

    /// The typed value, once resolved against the kind.
    var literal: Literal? { if case .value(let v, _) = form { return v } else { return nil } }
    /// How help shows it.
    var shown: String {
        switch form {
        case .text(let t), .described(let t), .value(_, shown: let t): return t
        }
    }

    /// Reads text as a literal of `kind` where it is one; anything else describes.
    func resolved(for kind: ParameterKind, parameter: String) -> ParameterDefault {
        switch form {
        case .described: return self
        case .value(let literal, _):
            precondition(ParameterDefault.fits(literal, kind), "the default of \(parameter)= is not a \(kind.placeholder)")
            return self
        case .text(let text):
            guard let literal = ParameterDefault.parse(text, as: kind) else { return .described(text) }
            return ParameterDefault(form: .value(literal, shown: text))
        }
    }

    static func fits(_ literal: Literal, _ kind: ParameterKind) -> Bool {
        switch (literal, kind) {
        case (.number, .number): return true
        case (.number(let v), .integer): return exactInt(v) != nil
        case (.bool, .bool): return true
        case (.string(let s), .word(let choices)), (.string(let s), .pathOrWord(let choices)): return choices.contains(s)
        case (.string, .string), (.string, .path), (.string, .hookName), (.string, .column): return true
        case (.numbers, .numbers): return true
        default: return false
        }
    }

    static func parse(_ text: String, as kind: ParameterKind) -> Literal? {
        var parser = Parser(text, isVerb: { _ in false })
        guard let statements = try? parser.parseAll(), statements.count == 1, statements[0].target == nil,
              case .value(let expression) = statements[0].body else { return nil }
        let literal: Literal
        switch expression.value {
        case .number(let v): literal = .number(v)
        case .string(let s): literal = .string(s)
        case .bool(let b): literal = .bool(b)
        case .name(let n): literal = .string(n)
        case .list(let items):
            var numbers: [Double] = []
            for item in items { guard case .number(let v) = item.value else { return nil }; numbers.append(v) }
            literal = .numbers(numbers)
        case .range, .call: return nil
        }
        // A bare name is a value only for kinds that take words; `off` for an integer describes.
        if case .name = expression.value {
            switch kind {
            case .word, .pathOrWord, .hookName, .column: break
            default: return nil
            }
        }
        // A quoted string is a value only for string kinds (`"text"` for field=), not for a word.
        if case .string = expression.value {
            switch kind {
            case .string, .path, .hookName, .column: break
            default: return nil
            }
        }
        return fits(literal, kind) ? literal : nil
    }
}

public struct Parameter: Sendable {
    public var name: String
    public var kind: ParameterKind
    public var `default`: ParameterDefault?
    public var required: Bool
    public var help: String
    /// The words of the verb's first positional this option applies to (`field=` only for `load text`; an SAE
    /// kind's own options), or nil for every form.
    public var onlyFor: [String]?

    /// The default as help shows it, or nil when the parameter is required or optional with no default.
    public var defaultText: String? { self.default?.shown }
    /// The value the call returns when the option is not given.
    var defaultValue: Value? { self.default?.literal?.value }

    public init(name: String, kind: ParameterKind, default value: ParameterDefault?, required: Bool, help: String,
                onlyFor: [String]? = nil) {
        self.name = name; self.kind = kind; self.default = value?.resolved(for: kind, parameter: name)
        self.required = required; self.help = help; self.onlyFor = onlyFor
    }

    /// A positional argument, or an option, that must be given.
    public static func required(_ name: String, _ kind: ParameterKind, _ help: String) -> Parameter {
        Parameter(name: name, kind: kind, default: nil, required: true, help: help)
    }
    public static func optional(_ name: String, _ kind: ParameterKind, default value: ParameterDefault? = nil, _ help: String) -> Parameter {
        Parameter(name: name, kind: kind, default: value, required: false, help: help)
    }
    /// The form that takes a computed default text (`SAEVerbs.architectureOptions`); the text resolves as a literal does.
    public static func optional(_ name: String, _ kind: ParameterKind, defaultText: String?, _ help: String) -> Parameter {
        Parameter(name: name, kind: kind, default: defaultText.map { ParameterDefault(form: .text($0)) }, required: false, help: help)
    }

    /// This option, applying only to these words of the verb's first positional.
    public func only(_ words: [String]) -> Parameter {
        var copy = self
        copy.onlyFor = words
        return copy
    }
    public func only(_ words: String...) -> Parameter { only(words) }

    /// How the usage line shows the option: `layer=N`, `[k=20]`, `[sort=norm|density|id]`, `[tokens=N]`.
    var usageText: String {
        let shown: String
        if case .word = kind { shown = kind.placeholder }
        else if let d = self.default, d.literal != nil { shown = d.shown }
        else { shown = kind.placeholder }
        return "\(name)=\(shown)"
    }
}

/// Options of which at most one may be given (`steps=N|tokens=N|until=N`); with `required`, exactly one.
public struct OptionGroup: Sendable {
    public var names: [String]
    public var required: Bool
    public init(_ names: [String], required: Bool) { self.names = names; self.required = required }
    public static func oneOf(_ names: String..., required: Bool = false) -> OptionGroup { OptionGroup(names, required: required) }
}

public struct Verb: Sendable {
    public var name: String
    public var summary: String
    public var example: String
    public var positionals: [Parameter]
    /// The last positional may repeat (`compare A B …`).
    public var variadic: Bool = false
    public var options: [Parameter]
    /// Options that exclude each other; usage shows them as `a=N|b=N`.
    public var groups: [OptionGroup]
    /// Why the verb cannot run yet (its engine has not landed), or nil when it is available.
    public var unavailableReason: String?
    /// Kept out of `help` (maintenance verbs).
    public var hidden: Bool = false
    var run: @Sendable (Call) throws -> Value

    /// `usage:` is accepted for declarations written before usage lines were generated, and ignored: the usage
    /// line is generated from the positionals, options and groups (`usage`), so it cannot drift from them.
    init(_ name: String, summary: String, usage _: String? = nil, example: String, positionals: [Parameter] = [],
         variadic: Bool = false, options: [Parameter] = [], groups: [OptionGroup] = [], unavailable: String? = nil,
         hidden: Bool = false, run: @escaping @Sendable (Call) throws -> Value) {
        self.name = name; self.summary = summary; self.example = example
        self.positionals = positionals; self.variadic = variadic; self.options = options; self.groups = groups
        self.unavailableReason = unavailable; self.hidden = hidden; self.run = run
        for group in groups {
            for member in group.names {
                precondition(options.contains { $0.name == member }, "verb \(name): group member \(member)= is not an option")
            }
        }
    }

    public func option(named name: String) -> Parameter? { options.first { $0.name == name } }
    func group(of option: String) -> OptionGroup? { groups.first { $0.names.contains(option) } }

    /// The words of the first positional that select a form (`load gpt2`, `sae nsae`), when options depend on it.
    /// (A verb whose first positional takes no words shows `onlyFor` in help only.)
    var formWords: [String]? {
        guard options.contains(where: { $0.onlyFor != nil }), case .word(let words)? = positionals.first?.kind else { return nil }
        return words
    }

    /// The usage line, generated: positionals, then options in declaration order (a group at its first member).
    /// Options that apply only to some forms follow, one line per form.
    public var usage: String {
        var parts = [name]
        for (i, p) in positionals.enumerated() {
            let shown: String
            switch p.kind {
            case .object, .word: shown = p.name
            case .string, .path: shown = "\"\(p.name)\""
            case .pathOrWord(let words): shown = (["\"\(p.name)\""] + words).joined(separator: "|")
            default: shown = p.name
            }
            let last = i == positionals.count - 1
            parts.append(p.required ? shown : "[\(shown)]")
            if last && variadic { parts.append("\(shown) …") }
        }
        parts += optionsUsage(options.filter { $0.onlyFor == nil })
        var lines = [parts.joined(separator: " ")]
        if let words = formWords {
            for word in words {
                let own = options.filter { $0.onlyFor?.contains(word) ?? false }
                if !own.isEmpty { lines.append("  \(name) \(word): " + optionsUsage(own).joined(separator: " ")) }
            }
        }
        return lines.joined(separator: "\n")
    }

    private func optionsUsage(_ list: [Parameter]) -> [String] {
        var parts: [String] = []
        var shownGroups = Set<Int>()
        for option in list {
            if let g = groups.firstIndex(where: { $0.names.contains(option.name) }) {
                guard shownGroups.insert(g).inserted else { continue }
                let members = groups[g].names.compactMap { self.option(named: $0)?.usageText }.joined(separator: "|")
                parts.append(groups[g].required ? members : "[\(members)]")
            } else {
                parts.append(option.required ? option.usageText : "[\(option.usageText)]")
            }
        }
        return parts
    }

    /// A verb whose engine is not there yet: declared fully, so help and completion know it, but it refuses to run.
    static func pending(_ verb: Verb, engine: String) -> Verb {
        var copy = verb
        copy.unavailableReason = "`\(verb.name)` is not yet available: it needs the \(engine) engine, which is not in this build"
        return copy
    }
}

/// One invocation of a verb: the checked arguments and options, and where to send output.
public final class Call {
    public let session: Session
    public let verb: Verb
    public let statement: Statement
    public let sink: OutputSink
    public let cancellation: CancellationFlag
    let verbPosition: SourcePosition
    /// Positional values in order (variadic ones included), with their positions for error messages.
    public let arguments: [Value]
    let argumentPositions: [SourcePosition]
    private let options: [String: Value]
    private let optionPositions: [String: SourcePosition]
    private var progressCounter = 0

    init(session: Session, verb: Verb, statement: Statement, sink: OutputSink, cancellation: CancellationFlag,
         verbPosition: SourcePosition, arguments: [Value], argumentPositions: [SourcePosition],
         options: [String: Value], optionPositions: [String: SourcePosition]) {
        self.session = session; self.verb = verb; self.statement = statement; self.sink = sink
        self.cancellation = cancellation; self.verbPosition = verbPosition; self.arguments = arguments
        self.argumentPositions = argumentPositions; self.options = options; self.optionPositions = optionPositions
    }

    /// A work context whose progress goes to the sink under a fresh id.
    public func work(_ task: String) -> WorkContext {
        progressCounter += 1
        let id = "\(verb.name)-\(statement.line)-\(progressCounter)-\(session.nextProgressSerial())"
        return WorkContext(progress: SinkProgress(sink: sink, id: id, record: session.lastProgress), cancellation: cancellation)
    }

    /// Tells the front end a work context's progress is over.
    public func finish(_ context: WorkContext) {
        if let progress = context.progress as? SinkProgress { sink.progressDone(id: progress.id) }
    }

    /// Whether the option was given in the statement (a declared default does not count).
    public func has(_ option: String) -> Bool { options[option] != nil }
    /// The option's value as given, else its declared default value, else nil.
    public func option(_ name: String) -> Value? {
        if let given = options[name] { return given }
        return verb.option(named: name)?.defaultValue
    }

    public func number(_ name: String) -> Double? {
        if case .number(let v)? = option(name) { return v }
        return nil
    }
    public func integer(_ name: String) -> Int? { number(name).flatMap(exactInt) }
    public func string(_ name: String) -> String? {
        if case .string(let s)? = option(name) { return s }
        return nil
    }
    public func bool(_ name: String) -> Bool? {
        if case .bool(let b)? = option(name) { return b }
        return nil
    }
    /// A bool option that has a declared default (or is required): its value.
    public func flag(_ name: String) -> Bool { bool(name) ?? false }
    public func layers(_ name: String) -> [Int]? {
        guard case .list(let items)? = option(name) else { return nil }
        return items.compactMap { if case .number(let v) = $0 { return exactInt(v) } else { return nil } }
    }
    public func numbers(_ name: String) -> [Double]? {
        guard case .list(let items)? = option(name) else { return nil }
        return items.compactMap { if case .number(let v) = $0 { return v } else { return nil } }
    }

    /// The value of an option that is required or has a declared default value, so it is always there once the
    /// call was checked; a verb reading one declared otherwise gets an error naming it (a declaration bug).
    public func requiredNumber(_ name: String) throws -> Double {
        guard let v = number(name) else { throw missing(name) }
        return v
    }
    public func requiredInteger(_ name: String) throws -> Int {
        guard let v = integer(name) else { throw missing(name) }
        return v
    }
    public func requiredString(_ name: String) throws -> String {
        guard let v = string(name) else { throw missing(name) }
        return v
    }
    public func requiredNumbers(_ name: String) throws -> [Double] {
        guard let v = numbers(name) else { throw missing(name) }
        return v
    }
    private func missing(_ name: String) -> LanguageError {
        let placeholder = verb.option(named: name)?.kind.placeholder ?? "…"
        return error("`\(verb.name)` needs \(name)=\(placeholder); usage: \(verb.usage)")
    }

    /// The positional argument `index` as an engine object of type `T`.
    public func object<T: SessionObject>(_ index: Int, as type: T.Type) throws -> T {
        guard index < arguments.count, case .object(let object) = arguments[index], let typed = object as? T else {
            throw error(atArgument: index, "expected a \(verb.positionals[min(index, verb.positionals.count - 1)].kind.placeholder.lowercased()) here")
        }
        return typed
    }

    /// An error pointing at the verb.
    public func error(_ message: String) -> LanguageError {
        LanguageError(verbPosition, message, kind: .runtime)
    }
    public func error(atArgument index: Int, _ message: String) -> LanguageError {
        LanguageError(index < argumentPositions.count ? argumentPositions[index] : verbPosition, message, kind: .runtime)
    }
    public func error(atOption name: String, _ message: String) -> LanguageError {
        LanguageError(optionPositions[name] ?? verbPosition, message, kind: .runtime)
    }

    /// Figures shown so far, attached to the command's table result (Session.run) so they can be saved.
    private(set) var shownFigures: [Figure] = []

    public func display(_ value: Value) {
        if case .figure(let figure) = value { shownFigures.append(figure) }
        sink.display(Rendering.bundle(value))
    }
}

/// Forwards engine progress to an output sink under one id, remembering the last update so an interrupt can
/// say how far the command got.
struct SinkProgress: ProgressSink {
    let sink: OutputSink
    let id: String
    let record: LastProgress
    func report(_ update: ProgressUpdate) {
        record.set(update)
        sink.progress(update, id: id)
    }
}

/// The last progress update of the running statement (engines may report from worker threads).
final class LastProgress: Sendable {
    private let value = Mutex<ProgressUpdate?>(nil)
    func set(_ update: ProgressUpdate?) { value.withLock { $0 = update } }
    var update: ProgressUpdate? { value.withLock { $0 } }
}
