// The one JSON value of nsae: `--json` lines, results.json, saved tables, and every frame of the Jupyter kernel.
// Objects keep their members in order, so `--json` lines read `{"line": …, "name": …, "type": …, "value": …}` as
// written; equality ignores member order, as JSON does. Integers that fit 64 bits stay `.int` and round-trip
// exactly (execution counts, ports, cursor offsets); every other number is a `.number` Double.

public indirect enum JSON: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    /// The member named `key` (the first one: parsed and literal objects never repeat a key).
    public subscript(key: String) -> JSON? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [(String, JSON)]? { if case .object(let o) = self { return o }; return nil }
    public var isObject: Bool { objectValue != nil }

    /// Integers, and doubles that hold an integer exactly (some clients send `1.0`).
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .number(let d) where d.rounded() == d && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }

    /// Any number as a Double.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }

    /// An object of strings, members sorted by key so the bytes are reproducible.
    public static func strings(_ values: [String: String]) -> JSON {
        .object(values.keys.sorted().map { ($0, .string(values[$0]!)) })
    }

    /// This object with `key` set to `value` (replaced in place, or appended).
    public func setting(_ key: String, _ value: JSON) -> JSON {
        guard case .object(var members) = self else { return self }
        if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
        return .object(members)
    }
}

extension JSON: Equatable {
    /// Numbers compare by value (`.int(1) == .number(1)`); objects compare as sets of members.
    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.int(let x), .number(let y)), (.number(let y), .int(let x)):
            return Double(x) == y && y.magnitude < 0x1p63 && Int(y) == x
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            if x.count <= 8 {
                return x.allSatisfy { key, value in y.first { $0.0 == key }.map { $0.1 == value } ?? false }
            }
            let index = Dictionary(y, uniquingKeysWith: { first, _ in first })
            return x.allSatisfy { key, value in index[key].map { $0 == value } ?? false }
        default: return false
        }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
    /// Members in literal order; a repeated key keeps its last value, as JSON readers do.
    public init(dictionaryLiteral elements: (String, JSON)...) {
        var members: [(String, JSON)] = []
        for (key, value) in elements {
            if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
        }
        self = .object(members)
    }
}

// MARK: - Serialization

extension JSON {
    /// One line, with Python's default separators (`", "`, `": "`). Non-ASCII text is written as-is; control
    /// characters are escaped; non-finite numbers become null (JSON has no NaN); integral doubles print without
    /// a fraction, the way the language prints them.
    public var serialized: String {
        var out = ""
        write(into: &out)
        return out
    }

    /// The UTF-8 bytes of `serialized` (what the kernel signs and sends).
    public var utf8Bytes: [UInt8] { Array(serialized.utf8) }

    /// Indented, one member or item per line (for files people read, such as kernel.json).
    public var prettyPrinted: String {
        var out = ""
        writePretty(into: &out, indent: "")
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .number(let v): out += v.isFinite ? formatNumber(v) : "null"
        case .string(let s): out += jsonQuote(s)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += ", " }
                out += jsonQuote(key) + ": "
                value.write(into: &out)
            }
            out += "}"
        }
    }

    private func writePretty(into out: inout String, indent: String) {
        let inner = indent + "  "
        switch self {
        case .array(let items) where !items.isEmpty:
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += inner
                item.writePretty(into: &out, indent: inner)
                out += i < items.count - 1 ? ",\n" : "\n"
            }
            out += indent + "]"
        case .object(let members) where !members.isEmpty:
            out += "{\n"
            for (i, (key, value)) in members.enumerated() {
                out += inner + jsonQuote(key) + ": "
                value.writePretty(into: &out, indent: inner)
                out += i < members.count - 1 ? ",\n" : "\n"
            }
            out += indent + "}"
        default:
            write(into: &out)
        }
    }
}

func jsonQuote(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if c.value < 0x20 {
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(c)
            }
        }
    }
    return out + "\""
}
