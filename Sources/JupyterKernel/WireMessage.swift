import Workbench
import Foundation

/// One Jupyter message as it travels on a socket:
/// `[identity…, "<IDS|MSG>", signature, header, parent_header, metadata, content, buffer…]`.
public struct WireMessage: Sendable, Equatable {
    /// Routing prefix: zmq identities on ROUTER sockets, the topic on iopub. Echoed verbatim in replies.
    public var identities: [[UInt8]]
    public var header: JSON
    public var parentHeader: JSON
    public var metadata: JSON
    public var content: JSON
    public var buffers: [[UInt8]]
    /// Why this received request cannot be handled as sent (see `decodeRequest`); the kernel answers it with an
    /// error reply. nil for every message the kernel builds.
    public var problem: WireError?

    public init(identities: [[UInt8]] = [], header: JSON, parentHeader: JSON = [:], metadata: JSON = [:],
                content: JSON = [:], buffers: [[UInt8]] = []) {
        self.identities = identities
        self.header = header
        self.parentHeader = parentHeader
        self.metadata = metadata
        self.content = content
        self.buffers = buffers
    }

    public var msgType: String { header["msg_type"]?.stringValue ?? "" }
    public var msgID: String { header["msg_id"]?.stringValue ?? "" }

    public static let delimiter: [UInt8] = Array("<IDS|MSG>".utf8)

    /// Frames ready for zmq, signed over the exact bytes that are sent.
    public func frames(signer: MessageSigner) -> [[UInt8]] {
        let parts = [header.utf8Bytes, parentHeader.utf8Bytes, metadata.utf8Bytes, content.utf8Bytes]
        var frames = identities
        frames.append(WireMessage.delimiter)
        frames.append(Array(signer.signature(of: parts).utf8))
        frames.append(contentsOf: parts)
        frames.append(contentsOf: buffers)
        return frames
    }

    /// Decodes and authenticates received frames, strictly: any unreadable frame is an error.
    public static func decode(_ frames: [[UInt8]], signer: MessageSigner) throws(WireError) -> WireMessage {
        let message = try decodeRequest(frames, signer: signer)
        if let problem = message.problem { throw problem }
        return message
    }

    /// Decodes and authenticates received frames for the kernel. The signature is checked before any JSON is
    /// parsed, so a forged message costs one HMAC and never reaches the parser. A message without a usable header
    /// throws: nobody can be answered (the reply's name and parent come from the header). A usable header with a
    /// broken parent_header, metadata or content frame, or without a msg_id, decodes with `problem` set and those
    /// frames empty, so the kernel can answer it with an error reply.
    public static func decodeRequest(_ frames: [[UInt8]], signer: MessageSigner) throws(WireError) -> WireMessage {
        guard let delimiterIndex = frames.firstIndex(of: delimiter) else { throw .missingDelimiter }
        let rest = frames.count - delimiterIndex - 1
        guard rest >= 5 else { throw .tooFewFrames(rest) }
        let signature = frames[delimiterIndex + 1]
        let parts = Array(frames[(delimiterIndex + 2)..<(delimiterIndex + 6)])
        guard signer.verify(signature: signature, parts: parts) else {
            throw signature.isEmpty ? .missingSignature : .badSignature
        }
        let header = try parseObject(parts[0], frame: "header")
        guard let type = header["msg_type"]?.stringValue, !type.isEmpty else { throw .badHeader("no msg_type") }
        var message = WireMessage(identities: Array(frames[..<delimiterIndex]), header: header,
                                  buffers: Array(frames[(delimiterIndex + 6)...]))
        do throws(WireError) {
            message.parentHeader = try parseObject(parts[1], frame: "parent_header")
            message.metadata = try parseObject(parts[2], frame: "metadata")
            message.content = try parseObject(parts[3], frame: "content")
            guard header["msg_id"]?.stringValue != nil else { throw WireError.badHeader("no msg_id") }
        } catch {
            message.problem = error
            (message.parentHeader, message.metadata, message.content) = ([:], [:], [:])
        }
        return message
    }

    private static func parseObject(_ bytes: [UInt8], frame: String) throws(WireError) -> JSON {
        let value: JSON
        do { value = try JSON.parse(bytes) } catch { throw .badJSON(frame: frame, error.description) }
        guard value.isObject else { throw .notAnObject(frame: frame) }
        return value
    }
}

public enum WireError: Error, Equatable, CustomStringConvertible, Sendable {
    case missingDelimiter
    case tooFewFrames(Int)
    case missingSignature
    case badSignature
    case badJSON(frame: String, String)
    case notAnObject(frame: String)
    case badHeader(String)

    public var description: String {
        switch self {
        case .missingDelimiter: return "no <IDS|MSG> delimiter frame"
        case .tooFewFrames(let n): return "expected 5 frames after <IDS|MSG> (signature and four JSON dicts), found \(n)"
        case .missingSignature: return "missing signature"
        case .badSignature: return "invalid signature"
        case .badJSON(let frame, let why): return "\(frame) frame: \(why)"
        case .notAnObject(let frame): return "\(frame) frame is not a JSON object"
        case .badHeader(let why): return "bad header: \(why)"
        }
    }
}

/// Builds headers for messages the kernel sends: a fresh msg_id every time (jupyter_client rejects a repeated
/// signature as "Duplicate Signature"), one session id per kernel process, protocol version 5.3.
public struct HeaderFactory: Sendable {
    public static let protocolVersion = "5.3"
    public let session: String
    public let username: String

    public init(session: String = UUID().uuidString.lowercased(), username: String = "nsae") {
        self.session = session
        self.username = username
    }

    public func header(msgType: String) -> JSON {
        [
            "msg_id": .string(UUID().uuidString.lowercased()),
            "session": .string(session),
            "username": .string(username),
            "date": .string(HeaderFactory.isoDate()),
            "msg_type": .string(msgType),
            "version": .string(HeaderFactory.protocolVersion),
        ]
    }

    /// `2026-11-26T06:13:14.123456Z`, the form jupyter_client's date pattern parses.
    public static func isoDate() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(spec.tv_nsec / 1000), 6))Z"
    }
}
