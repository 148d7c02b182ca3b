import Foundation
import Tensor
import Workbench
import XCTest
@testable import JupyterKernel

final class KernelCoreTests: XCTestCase {
    var transport: RecordingTransport!
    var interpreter: ScriptedInterpreter!
    var state: KernelState!
    var core: KernelCore!

    override func setUp() {
        transport = RecordingTransport()
        interpreter = ScriptedInterpreter()
        state = KernelState()
        core = KernelCore(interpreter: interpreter,
                          messenger: KernelMessenger(transport: transport, headers: HeaderFactory(session: "k")),
                          state: state)
    }

    /// The iopub message types parented to `request`, and its replies.
    func trace(_ request: WireMessage) -> [String] {
        transport.sent.filter { $0.message.parentHeader["msg_id"] == request.header["msg_id"] }.map { sent in
            sent.message.msgType == "status"
                ? "status:" + (sent.message.content["execution_state"]?.stringValue ?? "?")
                : sent.message.msgType
        }
    }

    func reply(to request: WireMessage) -> WireMessage? {
        transport.sent.first {
            $0.channel != "iopub" && $0.message.parentHeader["msg_id"] == request.header["msg_id"]
                && $0.message.msgType.hasSuffix("_reply")
        }?.message
    }

    func execute(_ code: String, _ extra: [String: JSON] = [:]) -> WireMessage {
        var content: [String: JSON] = ["code": .string(code), "silent": false, "store_history": true,
                                            "allow_stdin": false, "stop_on_error": true]
        content.merge(extra) { _, new in new }
        let message = request("execute_request", .object(content.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
        core.handleShell(message)
        return message
    }

    func testExecuteSequenceIsBusyInputOutputsReplyIdle() throws {
        let r = execute("echo hello, world\nsum 1 2 3")
        XCTAssertEqual(trace(r), ["status:busy", "execute_input", "stream", "execute_result", "execute_reply", "status:idle"])
        let stream = try XCTUnwrap(transport.published.first { $0.msgType == "stream" })
        XCTAssertEqual(stream.content, ["name": "stdout", "text": "hello, world\n"])
        let result = try XCTUnwrap(transport.published.first { $0.msgType == "execute_result" })
        XCTAssertEqual(result.content["data"], ["text/plain": "6"])
        XCTAssertEqual(result.content["execution_count"], 1)
        let reply = try XCTUnwrap(reply(to: r))
        XCTAssertEqual(reply.content["status"], "ok")
        XCTAssertEqual(reply.content["execution_count"], 1)
        XCTAssertEqual(reply.identities, r.identities, "replies are routed back to the requester")
        XCTAssertEqual(reply.header["version"], "5.3")
        XCTAssertEqual(core.history.tail(1).first?.output, "6")
    }

    func testErrorPublishesOneErrorAndAbortsQueuedExecutes() throws {
        let queued = request("execute_request", ["code": "echo never", "stop_on_error": true])
        let queuedInfo = request("kernel_info_request")
        transport.queueShell(queued)
        transport.queueShell(queuedInfo)
        let r = execute("fail")
        XCTAssertEqual(trace(r), ["status:busy", "execute_input", "error", "execute_reply", "status:idle"])
        let error = try XCTUnwrap(reply(to: r))
        XCTAssertEqual(error.content["status"], "error")
        XCTAssertEqual(error.content["ename"], "TestError")
        XCTAssertEqual(error.content["traceback"], ["line 1: fail", "  fail", "  ^", "failed on purpose"])
        let aborted = try XCTUnwrap(reply(to: queued))
        XCTAssertEqual(aborted.content["status"], "abort")
        XCTAssertEqual(aborted.content["execution_count"], 1)
        XCTAssertEqual(trace(queued), ["status:busy", "execute_reply", "status:idle"])
        XCTAssertEqual(reply(to: queuedInfo)?.content["status"], "ok", "non-execute requests still run")
        XCTAssertEqual(interpreter.executed, ["fail"], "the aborted request never ran")
        // The next request after the abort window runs normally.
        XCTAssertEqual(reply(to: execute("sum 2 2"))?.content["status"], "ok")
    }

    func testWithoutStopOnErrorQueuedRequestsStayQueued() {
        transport.queueShell(request("execute_request", ["code": "echo later"]))
        _ = execute("fail", ["stop_on_error": false])
        XCTAssertEqual(interpreter.executed, ["fail"])
        XCTAssertEqual(transport.drainShell(windowMs: 0).count, 1, "left on the socket for the main loop")
    }

    func testSilentPublishesOnlyStatusAndDoesNotCount() throws {
        let r = execute("echo quiet\nsum 1 1", ["silent": true])
        XCTAssertEqual(trace(r), ["status:busy", "execute_reply", "status:idle"])
        XCTAssertEqual(reply(to: r)?.content["execution_count"], 0)
        let noHistory = execute("sum 1", ["store_history": false])
        XCTAssertEqual(reply(to: noHistory)?.content["execution_count"], 0)
        XCTAssertTrue(trace(noHistory).contains("execute_result"))
        XCTAssertEqual(core.history.entries.count, 0)
        XCTAssertEqual(reply(to: execute("sum 1"))?.content["execution_count"], 1)
    }

    func testUserExpressionsAreEvaluatedSilently() throws {
        let r = execute("echo a", ["user_expressions": ["answer": "x", "broken": "nonsense"]])
        let expressions = try XCTUnwrap(reply(to: r)?.content["user_expressions"])
        // application/json is dropped: JupyterLab would prefer its JSON viewer to the HTML and text views.
        XCTAssertEqual(expressions["answer"], ["status": "ok", "data": ["text/plain": "42"], "metadata": [:]])
        XCTAssertEqual(expressions["broken"]?["status"], "error")
        XCTAssertEqual(transport.published.filter { $0.msgType == "stream" }.count, 1)
    }

    func testProgressIsOneDisplayUpdatedInPlace() throws {
        let r = execute("sleep 100")
        let bars = transport.published.filter { $0.msgType.hasSuffix("display_data") }
        let first = try XCTUnwrap(bars.first)
        XCTAssertEqual(first.msgType, "display_data")
        let id = try XCTUnwrap(first.content["transient"]?["display_id"]?.stringValue)
        XCTAssertTrue(bars.dropFirst().allSatisfy { $0.msgType == "update_display_data" })
        XCTAssertTrue(bars.allSatisfy { $0.content["transient"]?["display_id"]?.stringValue == id })
        XCTAssertLessThan(bars.count, 10, "throttled: 10 steps in ~100 ms are not 10 redraws")
        XCTAssertEqual(bars.last?.content["data"]?["text/plain"]?.stringValue?.contains("100% 10/10"), true)
        XCTAssertEqual(reply(to: r)?.content["status"], "ok")
    }

    /// jupyter console prints a display_data's text/plain once and ignores updates: the opening display says what
    /// started (no percentage to go stale), and even a bar whose first update was its last gets an update with the
    /// final state, which notebooks keep.
    func testProgressOpensWithoutAStaleStateAndAlwaysEndsWithItsFinalOne() throws {
        _ = execute("sleep 10")
        let bars = transport.published.filter { $0.msgType.hasSuffix("display_data") }
        XCTAssertEqual(bars.map(\.msgType), ["display_data", "update_display_data"])
        XCTAssertEqual(bars[0].content["data"]?["text/plain"]?.stringValue, "sleep: started (1 steps)")
        XCTAssertEqual(bars[0].content["data"]?["text/html"]?.stringValue?.contains("100%"), true, "notebooks get the bar at once")
        XCTAssertEqual(bars[1].content["data"]?["text/plain"]?.stringValue?.contains("100% 1/1"), true)
    }

    func testInterruptCancelsTheRunningCommandAndKeepsTheSession() throws {
        let state = self.state!
        let interrupter = Thread {
            usleep(100_000)
            state.interrupt(source: "test")
        }
        interrupter.start()
        let started = Date()
        let r = execute("sleep 10000")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        let reply = try XCTUnwrap(reply(to: r))
        XCTAssertEqual(reply.content["status"], "error")
        XCTAssertEqual(reply.content["ename"], "Interrupted")
        let lastBar = try XCTUnwrap(transport.published.last { $0.msgType == "update_display_data" })
        XCTAssertEqual(lastBar.content["data"]?["text/plain"]?.stringValue?.hasSuffix("(stopped)"), true)
        XCTAssertFalse(state.interrupt(source: "idle"), "an interrupt while idle cancels nothing")
        XCTAssertEqual(self.reply(to: execute("sum 5"))?.content["status"], "ok")
    }

    func testInputRequestUsesTheExecuteIdentitiesAndReturnsTheAnswer() throws {
        transport.inputAnswer.withLock { $0 = "forty-two" }
        let r = execute("ask name?", ["allow_stdin": true])
        let inputRequest = try XCTUnwrap(transport.replies(on: "stdin").first)
        XCTAssertEqual(inputRequest.msgType, "input_request")
        XCTAssertEqual(inputRequest.identities, r.identities)
        XCTAssertEqual(inputRequest.content, ["prompt": "name?", "password": false])
        XCTAssertEqual(transport.published.first { $0.msgType == "stream" }?.content["text"], "got forty-two\n")
        // Without allow_stdin the command is told no input is available.
        let denied = execute("ask again?")
        XCTAssertEqual(reply(to: denied)?.content["ename"], "InputError")
        XCTAssertEqual(transport.replies(on: "stdin").count, 1)
    }

    func testCompletionUsesCodePointOffsetsAndAlwaysHasMetadata() throws {
        let code = "é😀 s"
        let r = request("complete_request", ["code": .string(code), "cursor_pos": 4])
        core.handleShell(r)
        let reply = try XCTUnwrap(reply(to: r))
        XCTAssertEqual(reply.content["matches"], ["show", "sleep", "sum"])
        XCTAssertEqual(reply.content["cursor_start"], 3)
        XCTAssertEqual(reply.content["cursor_end"], 4)
        XCTAssertEqual(reply.content["metadata"], [:])
        XCTAssertEqual(trace(r), ["status:busy", "complete_reply", "status:idle"])
        // A cursor beyond the end (or missing) means the end of the code.
        for cursor: JSON in [99, nil] {
            let far = request("complete_request", ["code": "ec", "cursor_pos": cursor])
            core.handleShell(far)
            XCTAssertEqual(self.reply(to: far)?.content["cursor_end"], 2)
        }
    }

    func testIsCompleteInspectHistoryCommAndKernelInfo() throws {
        func replyContent(_ type: String, _ content: JSON) -> JSON? {
            let r = request(type, content)
            core.handleShell(r)
            return reply(to: r)?.content
        }
        XCTAssertEqual(replyContent("is_complete_request", ["code": "echo \"abc"]), ["status": "incomplete", "indent": ""])
        XCTAssertEqual(replyContent("is_complete_request", ["code": "sum 1"]), ["status": "complete"])
        XCTAssertEqual(replyContent("is_complete_request", ["code": "bogus"]), ["status": "invalid"])
        XCTAssertEqual(replyContent("inspect_request", ["code": "sum", "cursor_pos": 1, "detail_level": 0]),
                       ["status": "ok", "found": true, "data": ["text/plain": "sum: a test verb"], "metadata": [:]])
        XCTAssertEqual(replyContent("inspect_request", ["code": "zzz", "cursor_pos": 1])?["found"], false)
        _ = execute("sum 1 2")
        _ = execute("sum 10 20")
        XCTAssertEqual(replyContent("history_request", ["hist_access_type": "tail", "n": 1, "output": true]),
                       ["status": "ok", "history": [[1, 2, ["sum 10 20", "30"]]]])
        XCTAssertEqual(replyContent("history_request", ["hist_access_type": "search", "pattern": "sum 1 *"])?["history"],
                       [[1, 1, "sum 1 2"]])
        XCTAssertEqual(replyContent("comm_info_request", [:]), ["status": "ok", "comms": [:]])
        let info = try XCTUnwrap(replyContent("kernel_info_request", [:]))
        XCTAssertEqual(info["protocol_version"], "5.3")
        XCTAssertEqual(info["language_info"]?["name"], "nsae")
        XCTAssertEqual(info["language_info"]?["file_extension"], ".nsae")
        XCTAssertEqual(info["banner"], "scripted test interpreter")
    }

    func testCommOpenIsClosedAndUnknownRequestsAreRefused() throws {
        let open = request("comm_open", ["comm_id": "c1", "target_name": "jupyter.widget", "data": [:]])
        core.handleShell(open)
        XCTAssertEqual(trace(open), ["status:busy", "comm_close", "status:idle"])
        // An unknown request gets an error reply; an unknown message that is not a request is ignored.
        let unknown = request("no_such_request", [:])
        core.handleShell(unknown)
        XCTAssertEqual(trace(unknown), ["status:busy", "no_such_reply", "status:idle"])
        XCTAssertEqual(reply(to: unknown)?.content["ename"], "UnknownMessageType")
        let before = transport.sent.count
        core.handleShell(request("no_such_message", [:]))
        XCTAssertEqual(transport.sent.count, before)
    }

    func testShutdownAndInterruptOnControl() throws {
        let control = ControlHandler(messenger: core.messenger, state: state, kernelInfo: core.kernelInfo)
        let interrupt = request("interrupt_request")
        control.handle(interrupt)
        XCTAssertEqual(reply(to: interrupt)?.content, ["status": "ok"])
        XCTAssertFalse(state.isStopping)
        let shutdown = request("shutdown_request", ["restart": true])
        control.handle(shutdown)
        XCTAssertEqual(trace(shutdown), ["status:busy", "shutdown_reply", "status:idle"])
        XCTAssertEqual(reply(to: shutdown)?.content, ["status": "ok", "restart": true])
        XCTAssertEqual(transport.sent.first { $0.message.msgType == "shutdown_reply" }?.channel, "control")
        XCTAssertTrue(state.isStopping)
        XCTAssertTrue(state.restartWasRequested)
    }
}
