import CZMQ
import Glibc

public struct ZMQError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var code: Int32
    public var description: String { "\(operation): \(String(cString: zmq_strerror(code)))" }
    static func last(_ operation: String) -> ZMQError { ZMQError(operation: operation, code: zmq_errno()) }
}

/// A zmq context. libzmq contexts are thread-safe, hence Sendable.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() {
        handle = zmq_ctx_new()
    }

    /// Waits until every socket is closed and its pending messages are flushed (bounded by each socket's linger).
    public func terminate() {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}

/// One zmq socket. zmq sockets are not thread-safe: each is used by one thread at a time (the iopub socket sits
/// behind a lock in `IOPubPublisher`).
public final class ZMQSocket {
    let handle: UnsafeMutableRawPointer
    private var closed = false

    public init(context: ZMQContext, type: Int32) throws(ZMQError) {
        guard let socket = zmq_socket(context.handle, type) else { throw .last("zmq_socket") }
        handle = socket
        // Flush the last replies (shutdown_reply, the final idle) on close, but never hang on exit for long.
        try setOption(ZMQ_LINGER, Int32(1000))
    }

    deinit { close() }

    public func close() {
        if !closed { closed = true; zmq_close(handle) }
    }

    public func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else { throw .last("zmq_setsockopt") }
    }

    public func setOption(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) == 0 else { throw .last("zmq_setsockopt") }
    }

    public func option64(_ option: Int32) throws(ZMQError) -> Int64 {
        var v: Int64 = 0
        var size = MemoryLayout<Int64>.size
        guard zmq_getsockopt(handle, option, &v, &size) == 0 else { throw .last("zmq_getsockopt") }
        return v
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, bytes.count) }
        guard rc == 0 else { throw .last("zmq_setsockopt") }
    }

    public func bind(_ endpoint: String) throws(ZMQError) {
        guard zmq_bind(handle, endpoint) == 0 else { throw .last("bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw .last("connect \(endpoint)") }
    }

    /// The endpoint actually bound (resolves a `:*` wildcard port).
    public func lastEndpoint() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        _ = zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size)
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Waits up to `timeoutMs` (-1: forever) for a message; false on timeout or interruption.
    public func waitReadable(timeoutMs: Int) -> Bool {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let rc = zmq_poll(&item, 1, timeoutMs)
        return rc > 0 && (item.revents & Int16(ZMQ_POLLIN)) != 0
    }

    /// Receives all frames of one multipart message; nil when `dontWait` and nothing is queued. A message whose
    /// frames add up to more than `byteLimit` is received to its end without being kept, then refused with
    /// EMSGSIZE, so its bytes are never copied out of zmq (ZMQ_MAXMSGSIZE bounds single frames, not their sum).
    public func receiveMultipart(dontWait: Bool = false, byteLimit: Int = .max) throws(ZMQError) -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        var total = 0
        var frameCount = 0
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            var rc: Int32
            repeat {
                rc = zmq_msg_recv(&message, handle, dontWait && frames.isEmpty ? ZMQ_DONTWAIT : 0)
            } while rc < 0 && zmq_errno() == EINTR
            if rc < 0 {
                if zmq_errno() == EAGAIN && frameCount == 0 { return nil }
                throw .last("zmq_msg_recv")
            }
            frameCount += 1
            let size = zmq_msg_size(&message)
            let (sum, overflow) = total.addingReportingOverflow(size)
            total = overflow ? .max : sum
            if total > byteLimit {
                frames.removeAll()
            } else if let data = zmq_msg_data(&message), size > 0 {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
            if zmq_msg_more(&message) == 0 {
                guard total <= byteLimit else {
                    throw ZMQError(operation: "a \(frameCount)-frame message of \(total) bytes is over the "
                                   + "\(byteLimit)-byte limit and was dropped", code: EMSGSIZE)
                }
                return frames
            }
        }
    }

    public func sendMultipart(_ frames: [[UInt8]]) throws(ZMQError) {
        for (i, frame) in frames.enumerated() {
            let flags = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            var rc: Int32
            repeat {
                rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, frame.count, flags) }
            } while rc < 0 && zmq_errno() == EINTR
            if rc < 0 { throw .last("zmq_send") }
        }
    }
}

/// Moves a socket to the thread that will own it from then on. zmq allows migrating a socket between threads
/// across a full memory barrier, which starting the thread provides; only that thread touches it afterwards.
struct SocketHandoff: @unchecked Sendable {
    let socket: ZMQSocket
}
