import Foundation
import Synchronization
import Tensor
import Workbench

/// Records everything a session sends to its front end.
final class RecordingSink: OutputSink {
    struct Record {
        var streams: [String] = []
        var displays: [MimeBundle] = []
        var progress: [ProgressUpdate] = []
        var finishedProgress: [String] = []
    }
    private let record = Mutex(Record())
    var streams: [String] { record.withLock { $0.streams } }
    var displays: [MimeBundle] { record.withLock { $0.displays } }
    var progressUpdates: [ProgressUpdate] { record.withLock { $0.progress } }
    /// Set to cancel the flag once this many progress updates arrived (simulates Ctrl-C mid-command).
    let cancelAfter: (Int, CancellationFlag)?

    init(cancelAfter: (Int, CancellationFlag)? = nil) { self.cancelAfter = cancelAfter }

    func stream(_ text: String, name: StreamName) { record.withLock { $0.streams.append(text) } }
    func display(_ bundle: MimeBundle) { record.withLock { $0.displays.append(bundle) } }
    func progress(_ update: ProgressUpdate, id: String) {
        let count = record.withLock { r -> Int in r.progress.append(update); return r.progress.count }
        if let (limit, flag) = cancelAfter, count >= limit { flag.cancel() }
    }
    func progressDone(id: String) { record.withLock { $0.finishedProgress.append(id) } }
    func input(prompt: String, password: Bool) -> String? { nil }
}

/// Paths of the repository and the shared fixtures, found from this file (CI puts `shared/` beside the repo).
enum Fixtures {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let data = repoRoot.appendingPathComponent("../shared/data").standardized
    static let scripts = repoRoot.appendingPathComponent("Tests/scripts")

    static func temporaryDirectory(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-wb-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

extension Session {
    /// Runs code that must succeed and returns the result bundle.
    @discardableResult
    func mustRun(_ code: String, sink: OutputSink = RecordingSink(), file: StaticString = #filePath, line: UInt = #line) -> MimeBundle? {
        switch execute(code, sink: sink, cancellation: CancellationFlag()) {
        case .ok(let result): return result
        case .error(_, let message, _):
            XCTFail("unexpected error: \(message)", file: file, line: line)
        case .interrupted(let message):
            XCTFail("unexpected interruption: \(message)", file: file, line: line)
        }
        return nil
    }

    /// Runs code that must fail and returns the error message.
    func mustFail(_ code: String, file: StaticString = #filePath, line: UInt = #line) -> (message: String, line: Int) {
        switch execute(code, sink: RecordingSink(), cancellation: CancellationFlag()) {
        case .error(_, let message, let errorLine): return (message, errorLine)
        case .ok: XCTFail("expected an error from: \(code)", file: file, line: line)
        case .interrupted: XCTFail("expected an error, got an interruption", file: file, line: line)
        }
        return ("", 0)
    }
}

import XCTest
