import CZMQ
import Foundation
import Workbench
import XCTest
@testable import JupyterKernel

/// The server moves to the thread that runs it; the test thread only reads its Sendable state afterwards.
struct ServerHandoff: @unchecked Sendable { let server: KernelServer }

/// A real kernel (KernelServer over the Workbench Session) on free loopback ports, and a client with its own
/// zmq sockets, for tests of what goes over the wire. Stopped through its state, not shutdown_request, so the
/// control thread's last-resort exit timer never runs inside the test process.
final class LiveKernel {
    let server: KernelServer
    let signer: MessageSigner
    let context = ZMQContext()
    let shell: ZMQSocket
    let control: ZMQSocket
    let iopub: ZMQSocket
    private let finished = DispatchSemaphore(value: 0)
    private var stopped = false

    init(key: String = "live-test-key-\(UUID().uuidString)", maxMessageBytes: Int = KernelServer.defaultMaxMessageBytes,
         interpreter: any Interpreter = Session()) throws {
        let connection = ConnectionInfo(ip: "127.0.0.1", shellPort: 0, iopubPort: 0, stdinPort: 0, controlPort: 0,
                                        hbPort: 0, key: key)
        server = try KernelServer(connection: connection, interpreter: interpreter, maxMessageBytes: maxMessageBytes)
        signer = MessageSigner(key: key)
        shell = try Self.connect(context, ZMQ_DEALER, server.boundEndpoints["shell"]!)
        control = try Self.connect(context, ZMQ_DEALER, server.boundEndpoints["control"]!)
        iopub = try Self.connect(context, ZMQ_SUB, server.boundEndpoints["iopub"]!)
        try iopub.setOption(ZMQ_SUBSCRIBE, bytes: [])
        let server = ServerHandoff(server: self.server), finished = self.finished
        let thread = Thread {
            server.server.run()
            finished.signal()
        }
        thread.name = "live-kernel"
        thread.start()
    }

    static func connect(_ context: ZMQContext, _ type: Int32, _ endpoint: String) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: type)
        try socket.setOption(ZMQ_LINGER, Int32(0))
        try socket.connect(endpoint)
        return socket
    }

    /// Another client socket on a channel (a fresh identity), e.g. for hostile traffic.
    func newSocket(_ channel: String, type: Int32 = ZMQ_DEALER) throws -> ZMQSocket {
        try Self.connect(context, type, server.boundEndpoints[channel]!)
    }

    func stop() {
        guard !stopped else { return }
        stopped = true
        server.state.requestStop()
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success, "the kernel did not stop")
        shell.close(); control.close(); iopub.close()
        context.terminate()
    }

    deinit { stop() }

    static func header(_ type: String, id: String = UUID().uuidString) -> JSON {
        ["msg_id": .string(id), "msg_type": .string(type), "session": "live-test", "username": "t",
         "date": "2026-01-01T00:00:00Z", "version": "5.3"]
    }

    /// Signed frames of a request (for a DEALER socket: no identity frames).
    func frames(_ type: String, _ content: JSON = [:], id: String = UUID().uuidString) -> [[UInt8]] {
        WireMessage(header: Self.header(type, id: id), content: content).frames(signer: signer)
    }

    /// Frames with the four JSON frames given as raw bytes, correctly signed.
    func rawFrames(header: [UInt8], parent: [UInt8] = Array("{}".utf8), metadata: [UInt8] = Array("{}".utf8),
                   content: [UInt8]) -> [[UInt8]] {
        let parts = [header, parent, metadata, content]
        return [WireMessage.delimiter, Array(signer.signature(of: parts).utf8)] + parts
    }

    /// Waits for the reply whose parent is `msgID` on `socket`; nil after `timeout` seconds.
    func reply(to msgID: String, on socket: ZMQSocket, timeout: Double = 20) -> WireMessage? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard socket.waitReadable(timeoutMs: 50), let frames = try? socket.receiveMultipart(dontWait: true)
            else { continue }
            guard let message = try? WireMessage.decode(frames, signer: signer) else {
                XCTFail("the kernel sent a message that does not decode with its key")
                continue
            }
            if message.parentHeader["msg_id"]?.stringValue == msgID { return message }
        }
        return nil
    }

    /// Sends and waits for the reply.
    func request(_ type: String, _ content: JSON = [:], on socket: ZMQSocket? = nil, timeout: Double = 20) -> WireMessage? {
        let id = UUID().uuidString
        let socket = socket ?? shell
        try? socket.sendMultipart(frames(type, content, id: id))
        return reply(to: id, on: socket, timeout: timeout)
    }

    /// The iopub messages parented to `msgID` up to its idle status.
    func iopubTrace(_ msgID: String, timeout: Double = 10) -> [WireMessage] {
        var seen: [WireMessage] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard iopub.waitReadable(timeoutMs: 50), let frames = try? iopub.receiveMultipart(dontWait: true),
                  let message = try? WireMessage.decode(frames, signer: signer),
                  message.parentHeader["msg_id"]?.stringValue == msgID else { continue }
            seen.append(message)
            if message.msgType == "status", message.content["execution_state"] == "idle" { break }
        }
        return seen
    }

    /// kernel_info answered on shell, with the reply's banner.
    func assertAnswersKernelInfo(_ context: String = "", file: StaticString = #filePath, line: UInt = #line) {
        let reply = request("kernel_info_request")
        XCTAssertEqual(reply?.msgType, "kernel_info_reply", "kernel_info not answered \(context)", file: file, line: line)
        XCTAssertEqual(reply?.content["status"], "ok", file: file, line: line)
    }

    /// The text/plain result of `code`, or the error's evalue. Sent again when it was aborted (an execute from
    /// another client failed just before it was taken off the queue: stop_on_error aborts every queued execute).
    func evaluate(_ code: String) -> String? {
        for _ in 0..<5 {
            let id = UUID().uuidString
            try? shell.sendMultipart(frames("execute_request", ["code": .string(code), "silent": false], id: id))
            guard let reply = reply(to: id, on: shell) else { return nil }
            if reply.content["status"] == "abort" { continue }
            return outcome(of: reply, id: id)
        }
        return "aborted five times"
    }

    private func outcome(of reply: WireMessage, id: String) -> String? {
        if reply.content["status"] != "ok" { return "error: " + (reply.content["evalue"]?.stringValue ?? "?") }
        let result = iopubTrace(id).first { $0.msgType == "execute_result" }
        return result?.content["data"]?["text/plain"]?.stringValue
    }
}
