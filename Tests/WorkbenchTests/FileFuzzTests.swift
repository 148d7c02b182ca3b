import Foundation
import GPT2
import Tensor
import XCTest
@testable import Workbench

/// Mutated files of every format nsae reads, each loaded by the verb a user would type, all in one long-lived
/// session: nothing may crash, every failure must be an error, and the session's bound values must survive.
/// `NSAE_FILE_FUZZ_ITERATIONS=N` (per format; default 60) runs a longer fuzz by hand, `NSAE_FUZZ_SEED` picks the
/// seed. Before each load the input is copied to `$TMPDIR/nsae-file-fuzz-last-input` so a crash can be replayed.
/// Crashes it found became the cases of CraftedFileTests and CraftedStoreTests.
final class FileFuzzTests: XCTestCase {
    var iterations: Int { Int(ProcessInfo.processInfo.environment["NSAE_FILE_FUZZ_ITERATIONS"] ?? "") ?? 60 }
    var seed: UInt64 { UInt64(ProcessInfo.processInfo.environment["NSAE_FUZZ_SEED"] ?? "") ?? 20_261_201 }

    /// Numbers that make size arithmetic go wrong when written over a number of a JSON or text header.
    static let hostileNumbers = ["-1", "0", "2147483647", "4294967296", "4611686018427387905", "18446744073709551616",
                                 "1180591620717411303424", "1e30", "16.7", "-0", "NaN", "9007199254740993"]

    /// One mutation of `bytes`: flipped bytes, a cut, a hostile number written over a number (for text parts), an
    /// 8-byte little-endian length overwritten, or a duplicated slice.
    static func mutate(_ bytes: [UInt8], _ rng: inout RNG) -> [UInt8] {
        var b = bytes
        guard !b.isEmpty else { return b }
        switch rng.int(below: 5) {
        case 0:
            for _ in 0...rng.int(below: 8) { b[rng.int(below: b.count)] = UInt8(truncatingIfNeeded: rng.next()) }
        case 1:
            b = Array(b.prefix(rng.int(below: b.count)))
        case 2:
            // Numbers inside the first 64 KiB (headers, JSON): replace one whole digit run.
            let window = min(b.count, 1 << 16)
            let digits = (0..<window).filter { (48...57).contains(b[$0]) && ($0 == 0 || !(48...57).contains(b[$0 - 1])) }
            if let start = digits.isEmpty ? nil : digits[rng.int(below: digits.count)] {
                var end = start
                while end < b.count && (48...57).contains(b[end]) { end += 1 }
                b.replaceSubrange(start..<end, with: Array(hostileNumbers[rng.int(below: hostileNumbers.count)].utf8))
            }
        case 3:
            let at = rng.int(below: max(1, min(b.count - 8, 1024)))
            let values: [UInt64] = [0, 1, 7, UInt64(b.count), UInt64(b.count) + 1, 1 << 31, 1 << 40, .max, rng.next()]
            let v = values[rng.int(below: values.count)]
            for k in 0..<8 where at + k < b.count { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
        default:
            let lo = rng.int(below: b.count), hi = min(b.count, lo + rng.int(below: 256))
            b.insert(contentsOf: b[lo..<hi], at: rng.int(below: b.count))
        }
        return b
    }

    struct Target { let name: String; let file: String; let load: String }

    func testEveryReaderSurvivesMutatedFiles() throws {
        let root = Fixtures.temporaryDirectory("file-fuzz")
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.path
        let session = Session()
        session.mustRun("keep = [1, \"two\", 3]")

        // Valid seeds of every format, made the way users make them.
        session.mustRun("toy = synth d=8 features=16 active=2 norms=[1,3] tokens=300 seed=1 out=\"\(dir)/store\"")
        session.mustRun("s = sae relu toy expansion=2")
        session.mustRun("train s toy steps=2 batch=32")
        session.mustRun("save s \"\(dir)/sae\"")
        let saeLayer = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: dir + "/sae").sorted().first)
        try Npy.write(Matrix(rows: 40, cols: 6, data: (0..<240).map { Float($0) / 9 }), to: dir + "/acts.npy")
        try SafeTensors.write([TensorToWrite(name: "blocks.0.hook_mlp_out", dtype: .f16, shape: [40, 6], floats: (0..<240).map { Float($0) }),
                               TensorToWrite(name: "token_ids", dtype: .i32, shape: [40], ints: (0..<40).map { Int64($0) })],
                              to: dir + "/acts.safetensors")
        let tiny = Fixtures.data.appendingPathComponent("gpt2-tiny").path
        let model = try GPT2Model.load(path: tiny)
        try model.writeLLMC(to: dir + "/llmc/model.bin")
        try FileManager.default.createDirectory(atPath: dir + "/hf", withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors", "vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(atPath: tiny + "/" + f, toPath: dir + "/hf/" + f)
        }

        let targets = [
            Target(name: "activations .npy", file: dir + "/acts.npy", load: "x = load acts \"\(dir)/acts.npy\""),
            Target(name: "activations .safetensors", file: dir + "/acts.safetensors", load: "x = load acts \"\(dir)/acts.safetensors\""),
            Target(name: "store manifest.json", file: dir + "/store/manifest.json", load: "x = load acts \"\(dir)/store\""),
            Target(name: "store shard", file: dir + "/store/shard-00000.safetensors", load: "x = load acts \"\(dir)/store\"\nstats x"),
            Target(name: "store ground truth", file: dir + "/store/ground_truth.safetensors", load: "x = load acts \"\(dir)/store\"\nrecovery s x"),
            Target(name: "SAELens cfg.json", file: "\(dir)/sae/\(saeLayer)/cfg.json", load: "x = load sae \"\(dir)/sae\""),
            Target(name: "SAELens weights", file: "\(dir)/sae/\(saeLayer)/sae_weights.safetensors", load: "x = load sae \"\(dir)/sae\""),
            Target(name: "llm.c checkpoint", file: dir + "/llmc/model.bin", load: "x = load gpt2 \"\(dir)/llmc/model.bin\""),
            Target(name: "HF config.json", file: dir + "/hf/config.json", load: "x = load gpt2 \"\(dir)/hf\""),
            Target(name: "vocab.json", file: dir + "/hf/vocab.json", load: "x = load gpt2 \"\(dir)/hf\""),
            Target(name: "merges.txt", file: dir + "/hf/merges.txt", load: "x = load gpt2 \"\(dir)/hf\""),
        ]
        let replay = NSTemporaryDirectory() + "nsae-file-fuzz-last-input"
        var rng = RNG(seed: seed)
        var report: [String] = []
        for target in targets {
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: target.file)))
            // The slow parsers (a 50257-entry vocabulary, a 6 MB checkpoint) get fewer rounds.
            let rounds = original.count > 200_000 ? max(3, iterations / 10) : iterations
            var loaded = 0, refused = 0
            for _ in 0..<rounds {
                let mutated = Self.mutate(original, &rng)
                try Data(mutated).write(to: URL(fileURLWithPath: replay))
                try Data(mutated).write(to: URL(fileURLWithPath: target.file))
                switch session.execute(target.load, sink: RecordingSink(), cancellation: CancellationFlag()) {
                case .ok: loaded += 1
                case .error(_, let message, _):
                    refused += 1
                    XCTAssertFalse(message.isEmpty, "\(target.name): an error without a message")
                case .interrupted: XCTFail("\(target.name): interrupted with no interrupt")
                }
            }
            try Data(original).write(to: URL(fileURLWithPath: target.file))
            report.append("\(target.name): \(rounds) inputs, \(loaded) loaded, \(refused) refused, 0 crashes")
            XCTAssertGreaterThan(refused, 0, "\(target.name): no mutation was refused, so the fuzz reached nothing")
        }
        XCTAssertEqual(session.mustRun("keep")?.plain, "[1, \"two\", 3]", "bound values survive every bad file")
        print("file fuzz (seed \(seed)):\n  " + report.joined(separator: "\n  "))
        try? FileManager.default.removeItem(atPath: replay)
    }
}
