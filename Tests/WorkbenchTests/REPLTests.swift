import Foundation
import Tensor
import Workbench
import XCTest
@testable import REPL

/// The REPL's pieces that need no terminal (the pty tests in Tests/python/test_repl.py drive the whole loop):
/// the continuation rule, the completion glue between readline's bytes and the completer's scalars, and the
/// history file.
final class REPLTests: XCTestCase {
    func testContinuedLinesJoinIntoOneStatement() {
        let session = Session()
        var buffer = StatementBuffer(isComplete: session.isComplete)
        XCTAssertEqual(buffer.add("echo \"a"), nil, "an open string continues")
        XCTAssertEqual(buffer.precedingText, "echo \"a\n")
        XCTAssertTrue(buffer.isContinuing)
        buffer.clear()
        XCTAssertFalse(buffer.isContinuing)
        XCTAssertEqual(buffer.add("x = 2k \\"), nil, "a trailing backslash continues")
        XCTAssertEqual(buffer.add("  "), "x = 2k \\\n  ", "a blank continuation line ends the statement")
        XCTAssertEqual(buffer.add("x = \\"), nil)
        buffer.clear()
        XCTAssertEqual(buffer.add("vars"), "vars", "cleared (Ctrl-C): the next line starts a statement")
        XCTAssertEqual(buffer.add("echo )"), "echo )", "invalid is not incomplete: it runs and reports its error")
        XCTAssertEqual(buffer.add(""), "")
        // The joined statement runs as the script would.
        var joined = StatementBuffer(isComplete: session.isComplete)
        _ = joined.add("y = \\")
        XCTAssertEqual(session.mustRun(joined.add("3") ?? "")?.plain, nil)
        XCTAssertEqual(session.mustRun("y")?.plain, "3")
    }

    func testCompletionMatchesAreRebasedOntoReadlinesWord() {
        let session = Session()
        // Start of a line: readline's word and the completer's coincide.
        let line = "tra"
        let verb = session.complete(line, cursor: 3)
        XCTAssertEqual(CompletionGlue.readlineMatches(verb, precedingText: "", line: line, wordStartByte: 0).matches,
                       ["train"])
        // readline breaks words at `=`; the completer's word is the whole option `thr`: it starts where readline's
        // word does, so nothing changes, and the lone `threads=` suppresses the trailing space.
        let option = session.complete("set thr", cursor: 7)
        XCTAssertEqual(option, Completion(matches: ["threads="], start: 4, end: 7))
        let mapped = CompletionGlue.readlineMatches(option, precedingText: "", line: "set thr", wordStartByte: 4)
        XCTAssertEqual(mapped.matches, ["threads="])
        XCTAssertTrue(mapped.suppressAppend)
        // A completer word that starts before readline's (readline broke at `=`) loses the part readline keeps.
        let earlier = Completion(matches: ["field=\"text\""], start: 0, end: 8)
        XCTAssertEqual(CompletionGlue.readlineMatches(earlier, precedingText: "", line: "field=\"t", wordStartByte: 7).matches,
                       ["text\""])
        // One that starts after it gains the part in between.
        let later = Completion(matches: ["ab"], start: 2, end: 3)
        XCTAssertEqual(CompletionGlue.readlineMatches(later, precedingText: "", line: "x/a", wordStartByte: 0).matches,
                       ["x/ab"])
        XCTAssertFalse(CompletionGlue.readlineMatches(later, precedingText: "", line: "x/a", wordStartByte: 0).suppressAppend)
    }

    func testContinuationLinesAndNonASCIITextShiftTheCursor() {
        let session = Session()
        // Second line of a continued statement: the completer sees both lines; readline only the second.
        let preceding = "set seed=1 \\\n"
        let line = "é😀 thr"
        let cursor = CompletionGlue.statementCursor(precedingText: preceding, line: line, pointByte: line.utf8.count)
        XCTAssertEqual(cursor, preceding.unicodeScalars.count + 6)
        let completion = session.complete("set seed=1 \\\n thr", cursor: preceding.unicodeScalars.count + 4)
        XCTAssertEqual(completion.matches, ["threads="])
        // Shift that answer onto a line whose non-ASCII start makes bytes and scalars differ (readline's word
        // starts at byte 8, after "é😀 ", which is scalar 3).
        let shifted = Completion(matches: completion.matches, start: preceding.unicodeScalars.count + 3, end: cursor)
        XCTAssertEqual(CompletionGlue.readlineMatches(shifted, precedingText: preceding, line: line, wordStartByte: 7).matches,
                       ["threads="])
        XCTAssertEqual(CompletionGlue.readlineMatches(shifted, precedingText: preceding, line: line, wordStartByte: 0).matches,
                       ["é😀 threads="], "readline's word starting at the line start keeps the text before ours")
        // Bytes to scalars: é is 2 bytes, 😀 is 4; a byte offset inside a character counts what decodes before it.
        XCTAssertEqual(CompletionGlue.scalarCount("é😀x", bytes: 6), 2)
        XCTAssertEqual(CompletionGlue.scalarCount("é😀x", bytes: 7), 3)
        XCTAssertEqual(CompletionGlue.scalarCount("é😀x", bytes: 99), 3)
        XCTAssertEqual(CompletionGlue.commonPrefix(["😀ab", "😀ac"]), "😀a")
        XCTAssertEqual(CompletionGlue.commonPrefix([]), "")
        XCTAssertTrue(CompletionGlue.readlineMatches(Completion(matches: [], start: 0, end: 0), precedingText: "",
                                                     line: "zz", wordStartByte: 0).matches.isEmpty)
    }

    func testHistoryIsWrittenToItsFileAndReadBack() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-history-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("history").path
        setenv("NSAE_HISTORY", path, 1)
        defer { unsetenv("NSAE_HISTORY") }
        XCTAssertEqual(InteractiveLoop.historyPath, path)
        Readline.clearHistory()
        Readline.configure(historyPath: path, interrupt: CancellationFlag())
        Readline.addHistory("x = 2k")
        Readline.addHistory("vars")
        let written = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(written.split(separator: "\n"), ["x = 2k", "vars"], "each entry is saved as it is added")
        Readline.clearHistory()
        XCTAssertEqual(Readline.historyEntries(), [])
        Readline.configure(historyPath: path, interrupt: CancellationFlag())
        XCTAssertEqual(Readline.historyEntries(), ["x = 2k", "vars"], "a new session starts with the saved history")
        Readline.clearHistory()
        unsetenv("NSAE_HISTORY")
        XCTAssertTrue(InteractiveLoop.historyPath.hasSuffix("/.nsae_history"))
    }
}
