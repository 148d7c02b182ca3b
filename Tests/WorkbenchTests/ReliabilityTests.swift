import Foundation
import Tensor
import Workbench
import XCTest

/// Inputs that once killed a session (the process, or a kernel with every bound value) or lost a user's files.
/// Each must now be an error naming the problem, with the session still holding what it had.
final class ReliabilityTests: XCTestCase {
    var tmp: URL!

    override func setUp() { tmp = Fixtures.temporaryDirectory("reliability") }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    /// A session with one bound value, to check after each bad input that it survived.
    func session() -> Session {
        let s = Session()
        s.mustRun("keep = 42")
        return s
    }

    func assertSurvived(_ s: Session, file: StaticString = #filePath, line: UInt = #line) {
        let result = s.mustRun("keep", file: file, line: line)
        XCTAssertEqual(result?.plain, "42", file: file, line: line)
    }

    func testDeeplyNestedListsAreASyntaxErrorNotAStackOverflow() {
        let s = session()
        for depth in [65, 20_000, 100_000] {
            let text = "x = " + String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
            let (message, _) = s.mustFail(text)
            XCTAssertTrue(message.contains("nest more than 64"), message)
        }
        s.mustRun("ok = " + String(repeating: "[", count: 64) + "1" + String(repeating: "]", count: 64))
        assertSurvived(s)
    }

    func testHugeRangesAreRefusedWhereTheyAreWritten() {
        let s = session()
        let (message, _) = s.mustFail("x = 0..1000000000000")
        XCTAssertTrue(message.contains("too long") && message.contains("1000000"), message)
        s.mustRun("y = 0..999")
        assertSurvived(s)
    }

    func testSizesBeyondTheMachineAreErrorsThatSayHowMuch() {
        let s = session()
        var (message, _) = s.mustFail("a = synth d=64 features=1e15 tokens=10 out=\"\(tmp.path)/a\"")
        XCTAssertTrue(message.contains("features") && message.contains("memory") && message.contains("available"), message)
        (message, _) = s.mustFail("a = synth d=8 tokens=1e15 out=\"\(tmp.path)/a\"")
        XCTAssertTrue(message.contains("disk") && message.contains("free"), message)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.path + "/a"), "nothing written for a refused size")
        s.mustRun("toy = synth d=8 features=16 active=2 norms=[1,2] tokens=500 out=\"\(tmp.path)/toy\"")
        (message, _) = s.mustFail("big = sae relu toy expansion=1e9")
        XCTAssertTrue(message.contains("expansion") && message.contains("memory"), message)
        s.mustRun("small = sae relu toy expansion=2")
        (message, _) = s.mustFail("train small toy steps=1 batch=1e12")
        XCTAssertTrue(message.contains("batch") && message.contains("memory"), message)
        // A k larger than the store is what the store has, not an allocation of k entries.
        let top = s.mustRun("top small toy layer=0 feature=0 k=1e12")
        XCTAssertNotNil(top)
        assertSurvived(s)
    }

    func testSyntheticDataWithAsManyActiveAsFeaturesFinishes() {
        let s = session()
        s.mustRun("t = synth d=8 features=100000 active=100000 layers=1 norms=[1] tokens=20 out=\"\(tmp.path)/t\"")
        assertSurvived(s)
    }

    func testMoreThreadsThanRowsInTheLossIsFine() throws {
        let s = session()
        s.mustRun("m = load gpt2 \"\(Fixtures.data.path)/gpt2-tiny\"")
        s.mustRun("set threads=4")
        let run = s.mustRun("run m \"The cat sat on\"")
        XCTAssertNotNil(run)
        s.mustRun("set threads=2")
        assertSurvived(s)
    }

    func testSynthNeverDeletesAFolderItDidNotWrite() throws {
        let s = session()
        let user = tmp.appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: user, withIntermediateDirectories: true)
        try "thesis".write(to: user.appendingPathComponent("thesis.tex"), atomically: true, encoding: .utf8)
        try "{\"not\": \"a store\"}".write(to: user.appendingPathComponent("manifest.json"), atomically: true, encoding: .utf8)
        let (message, _) = s.mustFail("t = synth d=8 features=16 active=2 norms=[1] tokens=100 out=\"\(user.path)\" overwrite=true")
        XCTAssertTrue(message.contains("not an nsae store"), message)
        XCTAssertEqual(try String(contentsOf: user.appendingPathComponent("thesis.tex"), encoding: .utf8), "thesis")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: user.path).sorted(), ["manifest.json", "thesis.tex"])
        assertSurvived(s)
    }

    func testReplacingAStoreNeedsOverwriteAndHappensOnlyWhenTheNewOneIsComplete() throws {
        let s = session()
        let out = tmp.appendingPathComponent("toy").path
        s.mustRun("a = synth d=8 features=16 active=2 norms=[1] tokens=300 out=\"\(out)\"")
        let (message, _) = s.mustFail("b = synth d=8 features=16 active=2 norms=[1] tokens=600 out=\"\(out)\"")
        XCTAssertTrue(message.contains("already exists") && message.contains("overwrite=true"), message)
        // Interrupted while replacing: the old store stays whole.
        let flag = CancellationFlag()
        let sink = RecordingSink(cancelAfter: (1, flag))
        if case .ok = s.execute("c = synth d=8 features=16 active=2 norms=[1] tokens=400000 out=\"\(out)\" overwrite=true", sink: sink, cancellation: flag) {
            XCTFail("expected the synth to be interrupted")
        }
        s.mustRun("old = load acts \"\(out)\"")
        XCTAssertEqual(s.mustRun("old")?.plain.contains("300 tokens"), true)
        s.mustRun("d = synth d=8 features=16 active=2 norms=[1] tokens=600 out=\"\(out)\" overwrite=true")
        s.mustRun("new = load acts \"\(out)\"")
        XCTAssertEqual(s.mustRun("new")?.plain.contains("600 tokens"), true)
        let siblings = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
        XCTAssertEqual(siblings, ["toy"], "no staging folders left behind: \(siblings)")
        assertSurvived(s)
    }

    func testActivationsFromAUserFileAreReadInPlaceAndNothingIsWrittenBesideIt() throws {
        let s = session()
        let values = (0..<(50 * 6)).map { Float(($0 * 37) % 11) - 5 }
        let npy = tmp.appendingPathComponent("acts.npy").path
        try Npy.write(floats: values, shape: [50, 6], to: npy)
        s.mustRun("a = load acts \"\(npy)\"")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), ["acts.npy"])
        s.mustRun("e = sae relu a expansion=2")
        s.mustRun("train e a steps=2 batch=16")
        s.mustRun("stats a")
        // NaN in the file: an error naming the file, tensor and the first bad row.
        var bad = values
        bad[6 * 17 + 3] = .nan
        try Npy.write(floats: bad, shape: [50, 6], to: tmp.appendingPathComponent("nan.npy").path)
        let (message, _) = s.mustFail("b = load acts \"\(tmp.path)/nan.npy\"")
        XCTAssertTrue(message.contains("nan.npy") && message.contains("row 17") && message.contains("column 3"), message)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path).sorted(), ["acts.npy", "nan.npy"])
        assertSurvived(s)
    }
}
