import Foundation
import Tensor
import Workbench
import XCTest

/// `load gpt2 builtin` finds the model that ships in the repository (models/builtin-gpt2) by name.
final class BuiltinModelVerbTests: XCTestCase {
    func testLoadsTheBuiltinModelByName() throws {
        let session = Session()
        session.mustRun("lm = load gpt2 builtin")
        let summary = try XCTUnwrap(session.mustRun("lm")).plain
        XCTAssertTrue(summary.contains("4 layers, d_model 128"), summary)
        let run = try XCTUnwrap(session.mustRun("run lm \"import os\\nos.path.join(a, b)\"")).plain
        // A trained model: far below the ln(50257) ≈ 10.8 nats of an untrained one on Python-docs-like text.
        let ce = try XCTUnwrap(run.firstMatch(of: /CE loss ([0-9.]+)/).flatMap { Double($0.1) }, run)
        XCTAssertLessThan(ce, 6, run)
    }

    func testAMissingBuiltinFolderIsNamedInTheError() {
        setenv("NSAE_BUILTIN_GPT2", "/nonexistent/builtin-gpt2", 1)
        defer { unsetenv("NSAE_BUILTIN_GPT2") }
        let session = Session()
        session.mustRun("x = 1")
        let (message, _) = session.mustFail("lm = load gpt2 builtin")
        XCTAssertTrue(message.contains("/nonexistent/builtin-gpt2") && message.contains("NSAE_BUILTIN_GPT2"), message)
        XCTAssertEqual(session.mustRun("x")?.plain, "1", "the session keeps its values after the error")
    }
}
