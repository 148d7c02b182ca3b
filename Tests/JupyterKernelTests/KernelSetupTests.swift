import Workbench
import Foundation
import XCTest
@testable import JupyterKernel

final class KernelSetupTests: XCTestCase {
    func testConnectionFileFromTheJupyterDocs() throws {
        let text = #"{"control_port": 50160, "shell_port": 57503, "transport": "tcp", "signature_scheme": "hmac-sha256", "stdin_port": 52597, "hb_port": 42540, "ip": "127.0.0.1", "iopub_port": 40885, "key": "a0436f6c-1916-498b-8eb9-e81ab9368e84", "kernel_name": "nsae"}"#
        let info = try ConnectionInfo.parse(Array(text.utf8))
        XCTAssertEqual(info, ConnectionInfo(shellPort: 57503, iopubPort: 40885, stdinPort: 52597, controlPort: 50160,
                                            hbPort: 42540, key: "a0436f6c-1916-498b-8eb9-e81ab9368e84"))
        XCTAssertEqual(info.endpoint(port: info.shellPort), "tcp://127.0.0.1:57503")
        var ipc = info
        ipc.transport = "ipc"
        ipc.ip = "/tmp/k"
        XCTAssertEqual(ipc.endpoint(port: 3), "ipc:///tmp/k-3")
    }

    func testBadConnectionFilesNameTheProblem() {
        func message(_ text: String) -> String {
            do { _ = try ConnectionInfo.parse(Array(text.utf8)); return "parsed" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(#"{"shell_port": 1}"#).contains("missing 'iopub_port'"))
        XCTAssertTrue(message(#"{"shell_port": "x", "iopub_port": 1, "stdin_port": 1, "control_port": 1, "hb_port": 1}"#)
            .contains("'shell_port' must be a port number"))
        XCTAssertTrue(message(#"{"shell_port": 1, "iopub_port": 1, "stdin_port": 1, "control_port": 1, "hb_port": 1, "key": "k", "signature_scheme": "hmac-md5"}"#)
            .contains("unsupported signature_scheme"))
        XCTAssertTrue(message("[1]").contains("expected a JSON object"))
        XCTAssertTrue(message("{").contains("invalid JSON"))
        XCTAssertThrowsError(try ConnectionInfo.load(path: "/nonexistent/kernel-1.json")) {
            XCTAssertTrue("\($0)".contains("/nonexistent/kernel-1.json"))
        }
    }

    func testInstallWritesAKernelJSONJupyterCanRead() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-spec-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try KernelSpec.install(executable: "/opt/nsae/bin/nsae", kernelsDirectory: directory, name: "nsae-dev")
        XCTAssertEqual(path, directory + "/nsae-dev/kernel.json")
        let spec = try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        XCTAssertEqual(spec["argv"], ["/opt/nsae/bin/nsae", "kernel", "-f", "{connection_file}"])
        XCTAssertEqual(spec["display_name"], "NSAE")
        XCTAssertEqual(spec["language"], "nsae")
        XCTAssertEqual(spec["interrupt_mode"], "signal")
        XCTAssertThrowsError(try KernelSpec.install(executable: "/x", kernelsDirectory: directory, name: "bad name/.."))
        XCTAssertTrue(KernelSpec.prefixKernelsDirectory("/usr/local/").hasSuffix("/usr/local/share/jupyter/kernels"))
        XCTAssertTrue(KernelSpec.currentExecutable().hasPrefix("/"))
    }

    /// The launcher icons Jupyter looks for beside kernel.json, as committed in kernelspec/ (PNG sizes from IHDR).
    func testInstallWritesTheLogos() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nsae-logo-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try KernelSpec.install(executable: "/opt/nsae/bin/nsae", kernelsDirectory: directory, name: "nsae-dev")
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for (name, side) in [("logo-32x32.png", 32), ("logo-64x64.png", 64)] {
            let png = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/nsae-dev/\(name)"))
            XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], name)
            let be = { (o: Int) in png[o..<o + 4].reduce(0) { $0 << 8 | Int($1) } }
            XCTAssertEqual([be(16), be(20)], [side, side], name)
            XCTAssertEqual(png, try Data(contentsOf: repo.appendingPathComponent("kernelspec/\(name)")), "\(name) is the committed one")
        }
        let svg = try String(contentsOfFile: "\(directory)/nsae-dev/logo-svg.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    }

    func testShippedKernelspecMatchesTheGeneratedOne() throws {
        // The repository's kernelspec/kernel.json is the generated one for an `nsae` on PATH.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let shipped = try JSON.parse(Array(try Data(contentsOf: root.appendingPathComponent("kernelspec/kernel.json"))))
        XCTAssertEqual(shipped, KernelSpec.json(executable: "nsae"))
    }
}
