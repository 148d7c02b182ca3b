import Workbench
import XCTest
@testable import JupyterKernel

/// The kernel core over the real Workbench session: what Jupyter clients see for is_complete, completion and
/// results of the command language.
final class KernelSessionTests: XCTestCase {
    var transport: RecordingTransport!
    var core: KernelCore!

    override func setUp() {
        transport = RecordingTransport()
        core = KernelCore(interpreter: Session(),
                          messenger: KernelMessenger(transport: transport, headers: HeaderFactory()),
                          state: KernelState())
    }

    func replyContent(_ type: String, _ content: JSON) -> JSON? {
        let r = request(type, content)
        core.handleShell(r)
        return transport.sent.first {
            $0.channel == "shell" && $0.message.parentHeader["msg_id"] == r.header["msg_id"]
        }?.message.content
    }

    func testIsCompleteForOpenStringsContinuationsAndNonsense() {
        XCTAssertEqual(replyContent("is_complete_request", ["code": "echo \"abc"])?["status"], "incomplete")
        XCTAssertEqual(replyContent("is_complete_request", ["code": "echo \"a\" \\"])?["status"], "incomplete")
        XCTAssertEqual(replyContent("is_complete_request", ["code": "echo \"a\""])?["status"], "complete")
        XCTAssertEqual(replyContent("is_complete_request", ["code": "x = 2k\nvars"])?["status"], "complete")
        XCTAssertEqual(replyContent("is_complete_request", ["code": "echo )"])?["status"], "invalid")
    }

    func testCompletionRangesForVerbsOptionsAndAfterNonASCIIText() {
        XCTAssertEqual(replyContent("complete_request", ["code": "set thr", "cursor_pos": 7]),
                       ["status": "ok", "matches": ["threads="], "cursor_start": 4, "cursor_end": 7, "metadata": [:]])
        let code = "echo \"é😀\"\nech"
        let end = code.unicodeScalars.count
        let reply = replyContent("complete_request", ["code": .string(code), "cursor_pos": .int(end)])
        XCTAssertEqual(reply?["matches"], ["echo"])
        XCTAssertEqual(reply?["cursor_start"], .int(end - 3))
        // The cursor in the middle of the code completes the word before it, not the end of the cell.
        let middle = replyContent("complete_request", ["code": "ech\nvars", "cursor_pos": 3])
        XCTAssertEqual(middle?["matches"], ["echo"])
        XCTAssertEqual(middle?["cursor_end"], 3)
    }

    func testResultsAndErrorsOfTheLanguage() throws {
        let run = request("execute_request", ["code": "x = 2k\nx", "silent": false])
        core.handleShell(run)
        let result = try XCTUnwrap(transport.published.first { $0.msgType == "execute_result" })
        XCTAssertEqual(result.content["data"], ["text/plain": "2000"])
        let failing = request("execute_request", ["code": "echo \"a\"\nnosuchverb 1", "silent": false])
        core.handleShell(failing)
        let error = try XCTUnwrap(transport.published.first { $0.msgType == "error" })
        let traceback = (error.content["traceback"]?.arrayValue ?? []).compactMap(\.stringValue)
        XCTAssertTrue(traceback.contains { $0.contains("line 2") }, "\(traceback)")
        XCTAssertTrue(traceback.contains { $0.trimmingCharacters(in: .whitespaces) == "^" }, "\(traceback)")
        XCTAssertEqual(core.executionCount, 2)
    }
}
