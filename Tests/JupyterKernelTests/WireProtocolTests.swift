import Workbench
import XCTest
@testable import JupyterKernel

final class WireProtocolTests: XCTestCase {
    let signer = MessageSigner(key: "a0436f6c-1916-498b-8eb9-e81ab9368e84")

    // Vectors computed with Python: hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest()
    func testHMACMatchesPythonHmac() {
        let parts: [[UInt8]] = [Array(#"{"msg_id":"1","msg_type":"kernel_info_request"}"#.utf8), Array("{}".utf8),
                                Array("{}".utf8), Array(#"{"code":"echo é"}"#.utf8)]
        XCTAssertEqual(signer.signature(of: parts), "91da195690f5c3eb0fcbfef44f059d73e6ed5b2875495e4d7ff527c5077c7757")
        XCTAssertEqual(MessageSigner.hex(MessageSigner.hmacSHA256(
            key: Array("key".utf8), parts: [Array("The quick brown fox ".utf8), Array("jumps over the lazy dog".utf8)])),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    }

    func testEmptyKeyDisablesSigning() {
        let off = MessageSigner(key: "")
        XCTAssertEqual(off.signature(of: [[1], [2], [3], [4]]), "")
        XCTAssertTrue(off.verify(signature: Array("anything".utf8), parts: [[1], [2], [3], [4]]))
    }

    func sampleMessage() -> WireMessage {
        WireMessage(identities: [[0, 1, 2, 255], Array("second".utf8)],
                    header: ["msg_id": "abc", "msg_type": "execute_request", "session": "s", "username": "u",
                             "date": "2026-01-01T00:00:00.000000Z", "version": "5.3"],
                    parentHeader: [:], metadata: ["k": [1, 2.5, nil, true]],
                    content: ["code": "echo \"héllo\" \\ \n\t\u{1}😀", "silent": false],
                    buffers: [[9, 9, 9]])
    }

    func testRoundTripPreservesEverything() throws {
        let message = sampleMessage()
        let frames = message.frames(signer: signer)
        XCTAssertEqual(frames[2], WireMessage.delimiter)
        XCTAssertEqual(frames[3].count, 64, "lowercase hex SHA-256")
        let decoded = try WireMessage.decode(frames, signer: signer)
        XCTAssertEqual(decoded, message)
        XCTAssertEqual(decoded.msgType, "execute_request")
    }

    func testSignatureCoversEachJSONFrame() {
        let frames = sampleMessage().frames(signer: signer)
        for index in 4..<8 {
            var tampered = frames
            tampered[index].append(UInt8(ascii: " "))
            XCTAssertThrowsError(try WireMessage.decode(tampered, signer: signer)) {
                XCTAssertEqual($0 as? WireError, .badSignature)
            }
        }
        var unsigned = frames
        unsigned[3] = []
        XCTAssertThrowsError(try WireMessage.decode(unsigned, signer: signer)) {
            XCTAssertEqual($0 as? WireError, .missingSignature)
        }
        // Buffers are not signed, as in jupyter_client.
        var withBuffer = frames
        withBuffer.append([1, 2, 3])
        XCTAssertNoThrow(try WireMessage.decode(withBuffer, signer: signer))
    }

    func testStructuralErrorsAreNamed() {
        XCTAssertThrowsError(try WireMessage.decode([[1], [2]], signer: signer)) {
            XCTAssertEqual($0 as? WireError, .missingDelimiter)
        }
        XCTAssertThrowsError(try WireMessage.decode([WireMessage.delimiter, [], [], []], signer: signer)) {
            XCTAssertEqual($0 as? WireError, .tooFewFrames(3))
        }
        let off = MessageSigner(key: "")
        func frames(_ header: String, content: String = "{}") -> [[UInt8]] {
            [WireMessage.delimiter, [], Array(header.utf8), Array("{}".utf8), Array("{}".utf8), Array(content.utf8)]
        }
        XCTAssertThrowsError(try WireMessage.decode(frames("[]"), signer: off)) {
            XCTAssertEqual($0 as? WireError, .notAnObject(frame: "header"))
        }
        XCTAssertThrowsError(try WireMessage.decode(frames(#"{"msg_id":"1"}"#), signer: off)) {
            XCTAssertEqual($0 as? WireError, .badHeader("no msg_type"))
        }
        XCTAssertThrowsError(try WireMessage.decode(frames(#"{"msg_id":"1","msg_type":"x"}"#, content: "{"), signer: off)) {
            guard case .badJSON(frame: "content", _)? = $0 as? WireError else { return XCTFail("\($0)") }
        }
    }

    func testHeaderHasFreshIdsVersionAndParsableDate() throws {
        let factory = HeaderFactory()
        let a = factory.header(msgType: "status"), b = factory.header(msgType: "status")
        XCTAssertNotEqual(a["msg_id"], b["msg_id"])
        XCTAssertEqual(a["version"], "5.3")
        XCTAssertEqual(a["session"], b["session"])
        let date = try XCTUnwrap(a["date"]?.stringValue)
        // jupyter_client's ISO8601_PAT
        let pattern = #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})?$"#
        XCTAssertNotNil(date.range(of: pattern, options: .regularExpression), date)
    }
}
