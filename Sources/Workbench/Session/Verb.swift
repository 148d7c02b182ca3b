import Synchronization
import Tensor

// The verb registry's types. Each verb declares its parameters once; that declaration drives argument checking,
// `help`, completion, inspection and docs/commands.md.

/// What a parameter accepts. Names are resolved by kind: a `.word` takes the name literally, an `.object` looks it up.
public enum ParameterKind: Sendable, Equatable {
    case number
    case integer
    case string
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

public struct Parameter: Sendable {
    public var name: String
    public var kind: ParameterKind
    /// The default as it would be written, or nil when the parameter is required (or optional with no default).
    public var defaultText: String?
    public var required: Bool
    public var help: String

    public static func required(_ name: String, _ kind: ParameterKind, _ help: String) -> Parameter {
        Parameter(name: name, kind: kind, defaultText: nil, required: true, help: help)
    }
    public static func optional(_ name: String, _ kind: ParameterKind, default defaultText: String? = nil, _ help: String) -> Parameter {
        Parameter(name: name, kind: kind, defaultText: defaultText, required: false, help: help)
    }
}

public struct Verb: Sendable {
    public var name: String
    public var summary: String
    public var usage: String
    public var example: String
    public var positionals: [Parameter]
    /// The last positional may repeat (`compare A B …`).
    public var variadic: Bool = false
    public var options: [Parameter]
    /// Why the verb cannot run yet (its engine has not landed), or nil when it is available.
    public var unavailableReason: String?
    /// Kept out of `help` (maintenance verbs).
    public var hidden: Bool = false
    var run: @Sendable (Call) throws -> Value

    init(_ name: String, summary: String, usage: String, example: String, positionals: [Parameter] = [],
         variadic: Bool = false, options: [Parameter] = [], unavailable: String? = nil, hidden: Bool = false,
         run: @escaping @Sendable (Call) throws -> Value) {
        self.name = name; self.summary = summary; self.usage = usage; self.example = example
        self.positionals = positionals; self.variadic = variadic; self.options = options
        self.unavailableReason = unavailable; self.hidden = hidden; self.run = run
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

    public func has(_ option: String) -> Bool { options[option] != nil }
    public func option(_ name: String) -> Value? { options[name] }

    public func number(_ name: String) -> Double? {
        if case .number(let v)? = options[name] { return v }
        return nil
    }
    public func integer(_ name: String) -> Int? { number(name).flatMap(exactInt) }
    public func string(_ name: String) -> String? {
        if case .string(let s)? = options[name] { return s }
        return nil
    }
    public func bool(_ name: String) -> Bool? {
        if case .bool(let b)? = options[name] { return b }
        return nil
    }
    public func layers(_ name: String) -> [Int]? {
        guard case .list(let items)? = options[name] else { return nil }
        return items.compactMap { if case .number(let v) = $0 { return exactInt(v) } else { return nil } }
    }
    public func numbers(_ name: String) -> [Double]? {
        guard case .list(let items)? = options[name] else { return nil }
        return items.compactMap { if case .number(let v) = $0 { return v } else { return nil } }
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
