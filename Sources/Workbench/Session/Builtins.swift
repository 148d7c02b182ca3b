import Foundation

// The language's built-in functions: `name(argument, …)` wherever a value goes. The table is small on purpose;
// a function is a pure computation on literal values (no bound engine objects, no side effects).

struct Builtin: Sendable {
    let name: String
    let usage: String
    let help: String
    /// Evaluates the call; the positions are the arguments' (for errors that point at one).
    let evaluate: @Sendable (_ arguments: [Value], _ positions: [SourcePosition], _ at: SourcePosition) throws -> Value
}

enum Builtins {
    static let all: [Builtin] = [geom]

    static func named(_ name: String) -> Builtin? { all.first { $0.name == name } }

    /// A grid evenly spaced on a log axis, both ends included.
    static let geom = Builtin(
        name: "geom", usage: "geom(lo, hi, n)",
        help: "n numbers from lo to hi (both included) evenly spaced on a log scale: lo·(hi/lo)^(i/(n−1)) to 15 significant digits; 0 < lo < hi, 2 ≤ n ≤ 1000"
    ) { arguments, positions, at in
        guard arguments.count == 3 else {
            throw LanguageError(at, "geom takes 3 arguments (lo, hi, n), found \(arguments.count)", kind: .runtime)
        }
        func number(_ i: Int, _ what: String) throws -> Double {
            guard case .number(let v) = arguments[i], v.isFinite else {
                throw LanguageError(positions[i], "geom's \(what) must be a number, found \(arguments[i].typeName == "number" ? "a non-finite number" : "a \(arguments[i].typeName)")", kind: .runtime)
            }
            return v
        }
        let lo = try number(0, "lo"), hi = try number(1, "hi"), count = try number(2, "n")
        guard lo > 0 else { throw LanguageError(positions[0], "geom's lo must be positive (a log-spaced grid), found \(formatNumber(lo))", kind: .runtime) }
        guard hi > 0 else { throw LanguageError(positions[1], "geom's hi must be positive (a log-spaced grid), found \(formatNumber(hi))", kind: .runtime) }
        guard lo < hi else { throw LanguageError(positions[1], "geom needs lo < hi, found lo = \(formatNumber(lo)) and hi = \(formatNumber(hi))", kind: .runtime) }
        guard let n = exactInt(count), n >= 2, n <= 1000 else {
            throw LanguageError(positions[2], "geom's n must be a whole number from 2 to 1000, found \(formatNumber(count))", kind: .runtime)
        }
        let ratio = hi / lo
        return .list((0..<n).map { i in
            guard i > 0 && i < n - 1 else { return .number(i == 0 ? lo : hi) }
            // To 15 significant digits, so a point the grid names exactly is that number (geom(8, 64, 4) gives 32,
            // not 31.999999999999996; geom(1e-4, 1e-2, 3) gives 0.001): a change far below Float, which SAEs hold.
            let v = lo * pow(ratio, Double(i) / Double(n - 1))
            return .number(Double(String(format: "%.15g", v)) ?? v)
        })
    }
}
