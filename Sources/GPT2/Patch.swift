import Tensor

/// A replacement for a hook's value during a forward pass.
public struct Patch {
    public enum Replacement {
        /// Zeros (zero ablation).
        case zeros
        /// These values, [B·T, d].
        case values(Matrix)
        /// A function of the clean value, e.g. an SAE reconstruction; it may change the values in place but not the shape.
        case transform((inout Matrix) throws -> Void)
    }

    /// Which rows ([B·T] positions, batch-major) get the replacement; the others keep their clean value.
    public enum Positions {
        case all
        /// Leave positions whose *input* token is this id unpatched (e.g. BOS = 50256, as SAELens evals do).
        case exceptToken(Int32)
        /// true = patch this row.
        case mask([Bool])
    }

    public var replacement: Replacement
    public var positions: Positions

    public init(_ replacement: Replacement, positions: Positions = .all) {
        self.replacement = replacement
        self.positions = positions
    }

    public static func zeros(positions: Positions = .all) -> Patch { Patch(.zeros, positions: positions) }
    public static func values(_ m: Matrix, positions: Positions = .all) -> Patch { Patch(.values(m), positions: positions) }
    public static func transform(positions: Positions = .all, _ f: @escaping (inout Matrix) throws -> Void) -> Patch {
        Patch(.transform(f), positions: positions)
    }
    /// A function returning the replacement, e.g. `{ sae.reconstruct($0) }`.
    public static func mapping(positions: Positions = .all, _ f: @escaping (Matrix) throws -> Matrix) -> Patch {
        Patch(.transform { m in m = try f(m) }, positions: positions)
    }

    /// Applies the patch to `value` ([B·T, d]) for the forward over `tokens`.
    func apply(to value: inout Matrix, tokens: [Int32], hook: String) throws {
        let rows = value.rows, cols = value.cols
        var keep: [Bool]? = nil  // true = keep the clean row
        switch positions {
        case .all: break
        case .exceptToken(let t): keep = tokens.map { $0 == t }
        case .mask(let m):
            guard m.count == rows else { throw GPT2Error("patch of \(hook): position mask has \(m.count) entries, the batch has \(rows) positions") }
            keep = m.map { !$0 }
        }
        let clean = keep == nil ? nil : value
        switch replacement {
        case .zeros: value.fill(0)
        case .values(let m):
            guard m.rows == rows && m.cols == cols else {
                throw GPT2Error("patch of \(hook): values are [\(m.rows), \(m.cols)], the hook's value is [\(rows), \(cols)]")
            }
            value = m
        case .transform(let f):
            try f(&value)
            guard value.rows == rows && value.cols == cols else {
                throw GPT2Error("patch of \(hook): the transform returned [\(value.rows), \(value.cols)], expected [\(rows), \(cols)]")
            }
        }
        if let keep, let clean {
            for r in 0..<rows where keep[r] {
                for c in 0..<cols { value.data[r * cols + c] = clean.data[r * cols + c] }
            }
        }
    }
}

/// What a forward pass returns: captured hook values ([B·T, d] each, keyed by TransformerLens name) and the logits
/// ([B·T, V]) when asked for.
public struct ForwardResult: Sendable {
    public var captures: [String: Matrix]
    public var logits: Matrix?

    public init(captures: [String: Matrix] = [:], logits: Matrix? = nil) {
        self.captures = captures
        self.logits = logits
    }
}
