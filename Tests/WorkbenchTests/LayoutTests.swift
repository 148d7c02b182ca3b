import Foundation
import XCTest

/// The terminal's code (progress bar, SIGINT, terminal sink, script runner) lives with the front ends that own a
/// terminal (the REPL module, used by the `nsae` executable), not in Workbench, which the Jupyter kernel links.
final class LayoutTests: XCTestCase {
    func testTerminalCodeLivesInTheTerminalFrontEndsOnly() throws {
        let root = Fixtures.repoRoot
        let terminalCode = ["final class ProgressBar", "class TerminalSink", "class ScriptRunner", "sigaction(SIGINT"]
        func sources(_ module: String) -> [(String, String)] {
            let folder = root.appendingPathComponent("Sources/\(module)")
            let files = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String } ?? []
            return files.filter { $0.hasSuffix(".swift") }.compactMap { file in
                (try? String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)).map { (file, $0) }
            }
        }
        let workbench = sources("Workbench")
        XCTAssertGreaterThan(workbench.count, 20)
        for (file, text) in workbench {
            for marker in terminalCode { XCTAssertFalse(text.contains(marker), "Workbench/\(file) holds terminal code (\(marker))") }
        }
        let repl = sources("REPL").map(\.1).joined()
        for marker in terminalCode { XCTAssertTrue(repl.contains(marker), "the REPL module holds \(marker)") }
        // The kernel links Workbench, never the terminal front end.
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let kernel = try XCTUnwrap(manifest.split(separator: "\n").first { $0.contains(".target(name: \"JupyterKernel\"") })
        XCTAssertFalse(kernel.contains("\"REPL\""), String(kernel))
    }
}
