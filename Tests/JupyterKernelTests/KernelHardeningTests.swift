import CZMQ
import Foundation
import Workbench
import XCTest
@testable import JupyterKernel

/// What a live kernel on loopback does with correctly signed requests it cannot handle, with replays, oversized
/// messages and an unsigned connection. Every case checks the reply (or its absence) and that kernel_info is
/// still answered afterwards.
final class KernelHardeningTests: XCTestCase {
    var kernel: LiveKernel!

    override func setUpWithError() throws {
        kernel = try LiveKernel()
        kernel.assertAnswersKernelInfo("at start")
    }

    override func tearDown() {
        kernel?.stop()
        kernel = nil
    }

    /// Sends raw signed frames and returns the one reply, checking it is an error parented to `header` and
    /// framed by busy/idle on iopub.
    func errorReply(header: JSON, parent: String = "{}", metadata: String = "{}", content: String,
                    on socket: ZMQSocket? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> WireMessage {
        let socket = socket ?? kernel.shell
        try socket.sendMultipart(kernel.rawFrames(header: header.utf8Bytes, parent: Array(parent.utf8),
                                                  metadata: Array(metadata.utf8), content: Array(content.utf8)))
        let id = try XCTUnwrap(header["msg_id"]?.stringValue, file: file, line: line)
        let reply = try XCTUnwrap(kernel.reply(to: id, on: socket), "no reply", file: file, line: line)
        let type = try XCTUnwrap(header["msg_type"]?.stringValue)
        XCTAssertEqual(reply.msgType, String(type.dropLast("_request".count)) + "_reply", file: file, line: line)
        XCTAssertEqual(reply.parentHeader, header, "the reply's parent is the request's header", file: file, line: line)
        XCTAssertEqual(reply.content["status"], "error", file: file, line: line)
        XCTAssertEqual(reply.content["traceback"]?.arrayValue?.count, 1, file: file, line: line)
        let states = kernel.iopubTrace(id).filter { $0.msgType == "status" }.compactMap { $0.content["execution_state"]?.stringValue }
        XCTAssertEqual(states, ["busy", "idle"], file: file, line: line)
        return reply
    }

    func testContentThatIsNotJSONGetsAnErrorReply() throws {
        let reply = try errorReply(header: LiveKernel.header("complete_request"), content: #"{"code": "ech"#)
        XCTAssertEqual(reply.content["ename"], "MalformedMessage")
        XCTAssertEqual(reply.content["evalue"], "complete_request: content frame: invalid JSON at byte 13: unterminated string")
        kernel.assertAnswersKernelInfo()
    }

    func testContentThatIsNotAnObjectGetsAnErrorReply() throws {
        let reply = try errorReply(header: LiveKernel.header("execute_request"), content: #"["echo 1"]"#)
        XCTAssertEqual(reply.content["ename"], "MalformedMessage")
        XCTAssertEqual(reply.content["evalue"], "execute_request: content frame is not a JSON object")
        XCTAssertEqual(reply.content["execution_count"], 0, "execute_reply always carries execution_count")
        kernel.assertAnswersKernelInfo()
    }

    func testBrokenParentHeaderOrMetadataGetAnErrorReply() throws {
        let parent = try errorReply(header: LiveKernel.header("kernel_info_request"), parent: "{\"a\": tru}", content: "{}")
        XCTAssertEqual(parent.content["evalue"], "kernel_info_request: parent_header frame: invalid JSON at byte 6: invalid literal")
        let metadata = try errorReply(header: LiveKernel.header("is_complete_request"), metadata: "null",
                                      content: #"{"code": "x"}"#)
        XCTAssertEqual(metadata.content["evalue"], "is_complete_request: metadata frame is not a JSON object")
        kernel.assertAnswersKernelInfo()
    }

    func testAHeaderWithoutMsgIDGetsAnErrorReplyParentedToIt() throws {
        let header: JSON = ["msg_type": "kernel_info_request", "session": "s", "username": "u", "version": "5.3"]
        let socket = try kernel.newSocket("shell")
        defer { socket.close() }
        try socket.sendMultipart(kernel.rawFrames(header: header.utf8Bytes, content: Array("{}".utf8)))
        XCTAssertTrue(socket.waitReadable(timeoutMs: 20_000))
        let reply = try WireMessage.decode(XCTUnwrap(socket.receiveMultipart()), signer: kernel.signer)
        XCTAssertEqual(reply.msgType, "kernel_info_reply")
        XCTAssertEqual(reply.parentHeader, header)
        XCTAssertEqual(reply.content["status"], "error")
        XCTAssertEqual(reply.content["evalue"], "kernel_info_request: bad header: no msg_id")
        kernel.assertAnswersKernelInfo()
    }

    func testUnknownRequestTypesGetAnErrorReplyOnTheirChannel() throws {
        let shell = try errorReply(header: LiveKernel.header("frobnicate_request"), content: "{}")
        XCTAssertEqual(shell.content["ename"], "UnknownMessageType")
        XCTAssertEqual(shell.content["evalue"], "the nsae kernel does not handle frobnicate_request on the shell channel")
        let control = try errorReply(header: LiveKernel.header("debug_request"), content: "{}", on: kernel.control)
        XCTAssertEqual(control.content["evalue"], "the nsae kernel does not handle debug_request on the control channel")
        // A message that is not a request expects no reply (messaging spec, "Compatibility").
        let id = UUID().uuidString
        try kernel.shell.sendMultipart(kernel.frames("frobnicate", [:], id: id))
        XCTAssertNil(kernel.reply(to: id, on: kernel.shell, timeout: 0.5))
        kernel.assertAnswersKernelInfo()
    }

    func testMissingAndMistypedFieldsAreNamed() throws {
        let missing = try errorReply(header: LiveKernel.header("execute_request"), content: #"{"silent": false}"#)
        XCTAssertEqual(missing.content["ename"], "InvalidRequest")
        XCTAssertEqual(missing.content["evalue"], "execute_request needs the field 'code' (a string)")
        XCTAssertEqual(missing.content["execution_count"], 0)
        let mistyped = try errorReply(header: LiveKernel.header("execute_request"), content: #"{"code": "x = 1", "silent": "no"}"#)
        XCTAssertEqual(mistyped.content["evalue"], #"execute_request: the field 'silent' must be a boolean, found "no""#)
        let cursor = try errorReply(header: LiveKernel.header("complete_request"), content: #"{"code": "ech", "cursor_pos": "end"}"#)
        XCTAssertEqual(cursor.content["evalue"], #"complete_request: the field 'cursor_pos' must be an integer, found "end""#)
        let history = try errorReply(header: LiveKernel.header("history_request"), content: #"{"hist_access_type": "sideways"}"#)
        XCTAssertEqual(history.content["evalue"], #"history_request: hist_access_type must be tail, range or search, found "sideways""#)
        let shutdown = try errorReply(header: LiveKernel.header("shutdown_request"), content: #"{"restart": "yes"}"#,
                                      on: kernel.control)
        XCTAssertEqual(shutdown.content["evalue"], #"shutdown_request: the field 'restart' must be a boolean, found "yes""#)
        XCTAssertFalse(kernel.server.state.isStopping, "a refused shutdown_request does not stop the kernel")
        XCTAssertEqual(kernel.evaluate("x")?.hasPrefix("error: "), true, "the refused `x = 1` bound nothing")
        kernel.assertAnswersKernelInfo()
    }

    func testAReplayedSignedMessageIsDroppedAndAFreshOneAnswered() throws {
        let id = UUID().uuidString
        let frames = kernel.frames("execute_request", ["code": "n = 1"], id: id)
        try kernel.shell.sendMultipart(frames)
        XCTAssertEqual(kernel.reply(to: id, on: kernel.shell)?.content["status"], "ok")
        XCTAssertEqual(kernel.evaluate("n = 2\nn"), "2")
        // The captured execute sent again, and on the control channel: neither runs.
        try kernel.shell.sendMultipart(frames)
        try kernel.control.sendMultipart(frames)
        XCTAssertNil(kernel.reply(to: id, on: kernel.shell, timeout: 1), "a replayed message was answered")
        XCTAssertNil(kernel.reply(to: id, on: kernel.control, timeout: 0.2))
        XCTAssertEqual(kernel.evaluate("n"), "2", "the replayed `n = 1` did not run")
        // A new message that reuses the msg_id is not a replay: jupyter_client's KernelManager numbers its msg_ids
        // like its client's, so its shutdown_request carries the id of the client's first request.
        try kernel.control.sendMultipart(kernel.frames("kernel_info_request", id: id))
        XCTAssertEqual(kernel.reply(to: id, on: kernel.control)?.msgType, "kernel_info_reply")
        kernel.assertAnswersKernelInfo()
    }

    func testTheReplayWindowIsBounded() {
        let window = ReplayWindow(signer: MessageSigner(key: "k"), capacity: 4)
        func signature(_ s: String) -> [UInt8] { Array(s.utf8) }
        XCTAssertTrue(window.admit(signature: signature("a")))
        XCTAssertFalse(window.admit(signature: signature("a")))
        for s in ["b", "c", "d", "e"] { XCTAssertTrue(window.admit(signature: signature(s))) }
        XCTAssertEqual(window.count, 4)
        XCTAssertTrue(window.admit(signature: signature("a")), "the oldest signature leaves the window")
        XCTAssertFalse(window.admit(signature: signature("e")))
        XCTAssertTrue(window.admit(signature: signature(String(repeating: "x", count: 1_000_000))), "long frames are kept as digests")
        XCTAssertEqual(window.count, 4)
    }

    func testOversizedMessagesAreDroppedAndTheSenderKeepsBeingAnswered() throws {
        kernel.stop()
        let limit = 1 << 20
        kernel = try LiveKernel(maxMessageBytes: limit)
        kernel.assertAnswersKernelInfo("with a 1 MiB limit")
        let hostile = try kernel.newSocket("shell")
        defer { hostile.close() }
        // One frame over the limit: libzmq disconnects the sender before buffering it.
        let bigID = UUID().uuidString
        try hostile.sendMultipart(kernel.frames("execute_request", ["code": .string("echo \"" + String(repeating: "a", count: 2 * limit) + "\"")], id: bigID))
        // Frames under the limit whose sum is over it: read and dropped without being kept.
        let sumID = UUID().uuidString
        let chunk = [UInt8](repeating: 0x41, count: limit / 2)
        try hostile.sendMultipart(kernel.frames("kernel_info_request", [:], id: sumID) + [chunk, chunk, chunk])
        // Just under the limit: answered.
        let fitID = UUID().uuidString
        try hostile.sendMultipart(kernel.frames("kernel_info_request", [:], id: fitID) + [Array(chunk.prefix(limit - 4096))])
        XCTAssertNotNil(kernel.reply(to: fitID, on: hostile), "a message under the limit is answered")
        XCTAssertNil(kernel.reply(to: bigID, on: hostile, timeout: 0.3))
        XCTAssertNil(kernel.reply(to: sumID, on: hostile, timeout: 0.3))
        kernel.assertAnswersKernelInfo()
    }

    func testAnUnsignedConnectionIsAnnouncedInTheBanner() throws {
        let banner = kernel.request("kernel_info_request")?.content["banner"]?.stringValue ?? ""
        XCTAssertFalse(banner.contains("WARNING"), banner)
        kernel.stop()
        kernel = try LiveKernel(key: "")
        kernel.assertAnswersKernelInfo("unsigned")
        let unsigned = kernel.request("kernel_info_request")?.content["banner"]?.stringValue ?? ""
        XCTAssertTrue(unsigned.hasSuffix("\n\n" + KernelServer.unsignedWarning), unsigned)
        XCTAssertTrue(unsigned.contains("messages are not signed"))
        // Unsigned messages carry no proof of origin, so there is nothing to replay-check: a resent one runs.
        let frames = kernel.frames("kernel_info_request")
        try kernel.shell.sendMultipart(frames)
        try kernel.shell.sendMultipart(frames)
        var replies = 0
        while kernel.shell.waitReadable(timeoutMs: 2000), (try? kernel.shell.receiveMultipart()) != nil {
            replies += 1
            if replies == 2 { break }
        }
        XCTAssertEqual(replies, 2)
    }
}
