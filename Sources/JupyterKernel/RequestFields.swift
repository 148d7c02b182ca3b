import Workbench

/// The fields each request the kernel handles must carry, checked before it is handled: a missing or mistyped
/// field gets an error reply naming it, instead of a silently defaulted value. Optional fields may also be null.
/// The requirements follow the messaging spec; `cursor_pos` stays optional (a missing one means the end of the
/// code), and history_request's fields all have defaults.
enum RequestFields {
    enum Kind: String {
        case string = "a string"
        case bool = "a boolean"
        case integer = "an integer"
        case stringsObject = "an object of strings"
    }

    struct Rule {
        var name: String
        var kind: Kind
        var required: Bool
    }

    static func required(_ name: String, _ kind: Kind) -> Rule { Rule(name: name, kind: kind, required: true) }
    static func optional(_ name: String, _ kind: Kind) -> Rule { Rule(name: name, kind: kind, required: false) }

    static let rules: [String: [Rule]] = [
        "execute_request": [required("code", .string), optional("silent", .bool), optional("store_history", .bool),
                            optional("user_expressions", .stringsObject), optional("allow_stdin", .bool),
                            optional("stop_on_error", .bool)],
        "complete_request": [required("code", .string), optional("cursor_pos", .integer)],
        "inspect_request": [required("code", .string), optional("cursor_pos", .integer),
                            optional("detail_level", .integer)],
        "is_complete_request": [required("code", .string)],
        "history_request": [optional("output", .bool), optional("raw", .bool), optional("hist_access_type", .string),
                            optional("session", .integer), optional("start", .integer), optional("stop", .integer),
                            optional("n", .integer), optional("pattern", .string), optional("unique", .bool)],
        "comm_info_request": [optional("target_name", .string)],
        "shutdown_request": [optional("restart", .bool)],
    ]

    /// Why `content` does not fit what `msgType` needs, or nil when it does (or the type has no rules).
    static func problem(msgType: String, content: JSON) -> String? {
        for rule in rules[msgType] ?? [] {
            guard let value = content[rule.name], value != .null else {
                if rule.required { return "\(msgType) needs the field '\(rule.name)' (\(rule.kind.rawValue))" }
                continue
            }
            if !fits(value, rule.kind) {
                return "\(msgType): the field '\(rule.name)' must be \(rule.kind.rawValue), found \(excerpt(value))"
            }
        }
        if msgType == "history_request", let access = content["hist_access_type"]?.stringValue,
           !["tail", "range", "search"].contains(access) {
            return "history_request: hist_access_type must be tail, range or search, found \(excerpt(.string(access)))"
        }
        return nil
    }

    static func fits(_ value: JSON, _ kind: Kind) -> Bool {
        switch kind {
        case .string: return value.stringValue != nil
        case .bool: return value.boolValue != nil
        case .integer: return value.intValue != nil
        case .stringsObject: return value.objectValue?.allSatisfy { $0.1.stringValue != nil } ?? false
        }
    }

    static func excerpt(_ value: JSON) -> String {
        let text = value.serialized
        return text.count <= 60 ? text : String(text.prefix(60)) + "…"
    }
}

extension RequestFields {
    /// Why a received request cannot be handled as sent: an unreadable frame (ename MalformedMessage) or a missing
    /// or mistyped field (InvalidRequest). nil when it can.
    static func refusal(_ message: WireMessage) -> (ename: String, evalue: String)? {
        if let problem = message.problem { return ("MalformedMessage", "\(message.msgType): \(problem)") }
        if let problem = problem(msgType: message.msgType, content: message.content) { return ("InvalidRequest", problem) }
        return nil
    }

    /// Requests get replies; other messages (comm_*, a stray input_reply) do not, per the spec.
    static func expectsReply(_ msgType: String) -> Bool { msgType.hasSuffix("_request") }
}

extension KernelMessenger {
    /// Refuses `message` when it cannot be handled as sent (see `RequestFields.refusal`): an error reply for a
    /// request, a log line for anything else. True when it was refused.
    func refuseIfUnreadable(_ message: WireMessage, on channel: KernelChannel, extra: [(String, JSON)] = []) -> Bool {
        guard let (ename, evalue) = RequestFields.refusal(message) else { return false }
        if RequestFields.expectsReply(message.msgType) {
            refuse(message, ename: ename, evalue: evalue, on: channel, extra: extra)
        } else {
            KernelLog.warning("\(channel.rawValue): ignoring \(message.msgType) that cannot be read: \(evalue)")
        }
        return true
    }

    /// A message type the channel does not handle: an error reply for a request, a log line for anything else.
    func refuseUnknown(_ message: WireMessage, on channel: KernelChannel) {
        let type = message.msgType
        guard RequestFields.expectsReply(type) else {
            return KernelLog.warning("\(channel.rawValue): ignoring unknown message type '\(type)'")
        }
        refuse(message, ename: "UnknownMessageType",
               evalue: "the nsae kernel does not handle \(type) on the \(channel.rawValue) channel", on: channel)
    }

    /// Answers a request the kernel cannot handle: status "error" with ename, evalue and a one-line traceback, on
    /// the request's channel and parented to it, inside busy/idle like every reply. `extra` adds reply fields
    /// (execute_reply's execution_count).
    public func refuse(_ request: WireMessage, ename: String, evalue: String, on channel: KernelChannel,
                       extra: [(String, JSON)] = []) {
        KernelLog.warning("\(channel.rawValue): answering \(request.msgType) with \(ename): \(evalue)")
        whileBusy(request) {
            let error: [(String, JSON)] = [("ename", .string(ename)), ("evalue", .string(evalue)),
                                           ("traceback", [.string("\(ename): \(evalue)")])]
            if request.msgType == "execute_request" { publish("error", .object(error), parent: request.header) }
            reply(to: request, .object([("status", "error")] + error + extra), on: channel)
        }
    }
}
