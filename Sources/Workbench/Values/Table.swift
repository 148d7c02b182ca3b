import Foundation

// Tables: the result of most commands. Cells stay typed so JSON keeps numbers as numbers.

/// A token shown in context with its activation (top-activating tokens, feature cards).
public struct HighlightedToken: Sendable, Equatable {
    public var text: String
    public var activation: Double
    /// The position the row is about (the max-activating token).
    public var isFocus: Bool
    public init(text: String, activation: Double, isFocus: Bool = false) {
        self.text = text; self.activation = activation; self.isFocus = isFocus
    }
}

public enum Cell: Sendable, Equatable {
    case number(Double)
    case text(String)
    case bool(Bool)
    case null
    /// Tokens in context, each highlighted by its activation; `scale` is the activation that maps to full colour.
    case tokens([HighlightedToken], scale: Double)

    /// The plain text of a cell (terminal tables, CSV).
    public var plain: String {
        switch self {
        case .number(let v): return formatTableNumber(v)
        case .text(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .null: return ""
        case .tokens(let tokens, _):
            return tokens.map { $0.isFocus ? "[[\($0.text)]]" : $0.text }.joined()
                .replacingOccurrences(of: "\n", with: "⏎")
        }
    }
}

public struct Table: Sendable, Equatable {
    public var title: String?
    public var columns: [String]
    public var rows: [[Cell]]
    /// The figures the command that made this table showed on the way (`fit`, `stats`, `norms`, …), kept so
    /// `save RESULT "PATH.svg"` (or .png) can write them; they are not part of the table's text, HTML or JSON.
    public var figures: [Figure] = []

    public init(title: String? = nil, columns: [String], rows: [[Cell]] = []) {
        self.title = title
        self.columns = columns
        self.rows = rows
    }

    /// The cells of one named column (tests and `compare` read tables back).
    public func column(_ name: String) -> [Cell]? {
        guard let index = columns.firstIndex(of: name) else { return nil }
        return rows.map { index < $0.count ? $0[index] : .null }
    }
}

/// Table numbers: integers as integers, others with 6 significant digits (the JSON form keeps full precision).
func formatTableNumber(_ value: Double) -> String {
    if let int = exactInt(value) { return String(int) }
    if !value.isFinite { return formatNumber(value) }
    let magnitude = abs(value)
    if magnitude != 0, magnitude < 1e-4 || magnitude >= 1e9 {
        return scientific(value, digits: 4)
    }
    return fixedSignificant(value, digits: 6)
}

/// `value` rounded to `digits` significant digits in plain decimal form, trailing zeros removed.
func fixedSignificant(_ value: Double, digits: Int) -> String {
    if value == 0 { return "0" }
    let exponent = Int((log10(abs(value))).rounded(.down))
    let decimals = max(0, digits - 1 - exponent)
    var text = fixed(value, decimals: decimals)
    if text.contains(".") {
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
    }
    return text
}

/// Fixed-point formatting without Foundation's String(format:), which allocates through NSString.
func fixed(_ value: Double, decimals: Int) -> String {
    let scale = pow10(decimals)
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9.0e15 else { return formatNumber(value) }
    let whole = Int(scaled)
    let unit = Int(scale)
    var text = String(whole / unit)
    if decimals > 0 {
        var fraction = String(whole % unit)
        fraction = String(repeating: "0", count: decimals - fraction.count) + fraction
        text += "." + fraction
    }
    return (value < 0 && whole != 0 ? "-" : "") + text
}

func scientific(_ value: Double, digits: Int) -> String {
    let exponent = Int((log10(abs(value))).rounded(.down))
    var mantissa = value / pow10(exponent)
    var e = exponent
    if abs((mantissa * pow10(digits - 1)).rounded()) >= pow10(digits) { mantissa /= 10; e += 1 }
    return fixedSignificant(mantissa, digits: digits) + "e" + (e < 0 ? "-" : "") + String(abs(e))
}

func pow10(_ n: Int) -> Double {
    var result = 1.0
    for _ in 0..<abs(n) { result *= 10 }
    return n < 0 ? 1 / result : result
}
