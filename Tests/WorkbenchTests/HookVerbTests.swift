import XCTest
@testable import Workbench

/// `harvest … hook=` with TransformerLens names: within a block with layers=, full names, model-level hooks; each
/// stored at its own width; bad names refused by name.
final class HookVerbTests: XCTestCase {
    func testHarvestTakesEveryTransformerLensSpelling() throws {
        let tmp = Fixtures.temporaryDirectory("hooks")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let text = (0..<30).map { "Line \($0) of a small corpus for hook names." }.joined(separator: "\n\n")
        try text.write(to: tmp.appendingPathComponent("c.txt"), atomically: true, encoding: .utf8)
        let session = Session()
        session.mustRun("gpt2 = load gpt2 \"\(Fixtures.data.path)/gpt2-tiny\"")
        session.mustRun("c = load text \"\(tmp.path)/c.txt\"")
        func hooks(_ name: String) throws -> [(String, Int)] {
            guard case .object(let object)? = session.value(named: name), let store = object as? StoreObject else {
                XCTFail("\(name) is not a store"); return []
            }
            return store.store.hooks.map { ($0.name, $0.d) }
        }
        let common = "tokens=64 context=16"
        session.mustRun("z = harvest gpt2 c hook=attn.hook_z layers=0..1 \(common) out=\"\(tmp.path)/z\"")
        XCTAssertEqual(try hooks("z").map(\.0), ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"])
        XCTAssertEqual(try hooks("z").map(\.1), [32, 32])
        session.mustRun("post = harvest gpt2 c hook=blocks.1.mlp.hook_post \(common) out=\"\(tmp.path)/post\"")
        XCTAssertEqual(try hooks("post").map(\.0), ["blocks.1.mlp.hook_post"])
        XCTAssertEqual(try hooks("post").map(\.1), [128])
        session.mustRun("scale = harvest gpt2 c hook=\"ln2.hook_scale\" layers=0 \(common) out=\"\(tmp.path)/scale\"")
        XCTAssertEqual(try hooks("scale").map(\.1), [1])
        session.mustRun("e = harvest gpt2 c hook=hook_embed \(common) out=\"\(tmp.path)/e\"")
        XCTAssertEqual(try hooks("e").map(\.0), ["hook_embed"])
        session.mustRun("m = harvest gpt2 c hook=mlp_out layers=1 \(common) out=\"\(tmp.path)/m\"")
        XCTAssertEqual(try hooks("m").map(\.0), ["blocks.1.hook_mlp_out"])

        XCTAssert(session.mustFail("harvest gpt2 c hook=attn.hook_zz \(common) out=\"\(tmp.path)/x\"").message.contains("unknown hook `attn.hook_zz`"))
        XCTAssert(session.mustFail("harvest gpt2 c hook=blocks.0.attn.hook_z layers=1 \(common) out=\"\(tmp.path)/x\"").message.contains("names layer 0 itself"))
        XCTAssert(session.mustFail("harvest gpt2 c hook=hook_embed layers=1 \(common) out=\"\(tmp.path)/x\"").message.contains("not in a block"))
        XCTAssert(session.mustFail("harvest gpt2 c hook=blocks.7.hook_z \(common) out=\"\(tmp.path)/x\"").message.contains("unknown hook"))
        XCTAssert(session.mustFail("harvest gpt2 c hook=blocks.7.attn.hook_z \(common) out=\"\(tmp.path)/x\"").message.contains("out of range"))
        // A name followed by `..` still ends the name (a range), and a dotted name is one name.
        XCTAssert(session.mustFail("x = gpt2.weights").message.contains("gpt2.weights"))
    }

    /// `special=true` reads the literal <|endoftext|> as 50256 in tokenize, run and a corpus; the default reads text.
    func testSpecialTrueMapsTheEndOfTextLiteral() throws {
        let tmp = Fixtures.temporaryDirectory("special")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let session = Session()
        session.mustRun("gpt2 = load gpt2 \"\(Fixtures.data.path)/gpt2-tiny\"")
        func ids(_ code: String) throws -> [Int] {
            let json = try XCTUnwrap(session.mustRun(code)?.data["application/json"])
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            if let tokens = object["tokens"] as? [Int] { return tokens }
            return try XCTUnwrap(object["rows"] as? [[Any]]).map { $0[1] as! Int }
        }
        XCTAssertEqual(try ids("tokenize gpt2 \"a<|endoftext|>b\" special=true"), [64, 50256, 65])
        XCTAssertEqual(try ids("tokenize gpt2 \"a<|endoftext|>b\""), [64, 27, 91, 437, 1659, 5239, 91, 29, 65])
        XCTAssertEqual(try ids("run gpt2 \"a<|endoftext|>b\" special=true"), [50256, 64, 50256, 65])
        let text = (0..<20).map { "Part \($0) of one file<|endoftext|>and the next part." }.joined(separator: "\n\n")
        try text.write(to: tmp.appendingPathComponent("c.txt"), atomically: true, encoding: .utf8)
        session.mustRun("plain = load text \"\(tmp.path)/c.txt\"")
        session.mustRun("marked = load text \"\(tmp.path)/c.txt\" special=true")
        for (name, expectInside) in [("plain", false), ("marked", true)] {
            session.mustRun("\(name)_acts = harvest gpt2 \(name) hook=resid_pre layers=0 tokens=128 context=16 out=\"\(tmp.path)/\(name)\"")
            guard case .object(let object)? = session.value(named: "\(name)_acts"), let store = (object as? StoreObject)?.store else {
                return XCTFail("no store")
            }
            let tokens = try store.tokenIds(0..<store.tokenCount), docs = try store.documentIndex(0..<store.tokenCount)
            // A 50256 that comes from the text itself belongs to its document (separators and BOS have index −1).
            XCTAssertEqual(zip(tokens, docs).contains { $0 == 50256 && $1 >= 0 }, expectInside, name)
        }
        XCTAssert(session.mustFail("load acts \"\(tmp.path)/plain\" special=true").message.contains("applies only to `load text`"))
    }
}
