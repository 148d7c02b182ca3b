import Workbench
import XCTest
@testable import JupyterKernel

/// Hostile input for the wire decoder: random multipart messages and mutations of valid ones (bad JSON, wrong
/// frame counts, huge frames, bad UTF-8). The decoder must answer every one with a message or a WireError.
final class WireFuzzTests: XCTestCase {
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func bytes(_ count: Int) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: count)
            var word: UInt64 = 0
            for i in 0..<count {
                if i % 8 == 0 { word = next() }
                out[i] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(i % 8)))
            }
            return out
        }
    }

    let keyed = MessageSigner(key: "fuzz-key")
    let unkeyed = MessageSigner(key: "")

    func validMessage(_ rng: inout SplitMix64) -> WireMessage {
        WireMessage(identities: [rng.bytes(rng.below(6))],
                    header: ["msg_id": .string("id\(rng.next())"), "msg_type": "execute_request", "session": "s",
                             "username": "u", "date": "2026-01-01T00:00:00Z", "version": "5.3"],
                    content: ["code": .string("echo \(rng.next())"), "silent": false, "n": .int(rng.below(1000))])
    }

    static let jsonFragments: [[UInt8]] = ["{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "d83d", "null", "true",
                                           "1e9999", "-", "0.", "{\"msg_type\":", "\"msg_id\"", "\u{0}", "é"]
        .map { Array($0.utf8) } + [[0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]]

    func mutate(_ frames: [[UInt8]], _ rng: inout SplitMix64) -> [[UInt8]] {
        var frames = frames
        for _ in 0..<(1 + rng.below(3)) {
            switch rng.below(9) {
            case 0 where !frames.isEmpty: frames.remove(at: rng.below(frames.count))
            case 1 where !frames.isEmpty: frames.insert(frames[rng.below(frames.count)], at: rng.below(frames.count + 1))
            case 2: frames.append(rng.bytes(rng.below(40)))
            case 3 where !frames.isEmpty:
                let i = rng.below(frames.count)
                if !frames[i].isEmpty { frames[i][rng.below(frames[i].count)] = UInt8(truncatingIfNeeded: rng.next()) }
            case 4 where !frames.isEmpty:
                let i = rng.below(frames.count)
                frames[i] = Array(frames[i].prefix(rng.below(frames[i].count + 1)))
            case 5 where !frames.isEmpty:
                let i = rng.below(frames.count)
                frames[i].insert(contentsOf: Self.jsonFragments[rng.below(Self.jsonFragments.count)],
                                 at: rng.below(frames[i].count + 1))
            case 6: frames.insert(WireMessage.delimiter, at: rng.below(frames.count + 1))
            case 7 where !frames.isEmpty: frames[rng.below(frames.count)] = []
            default: frames.shuffle(using: &rng)
            }
        }
        return frames
    }

    /// Re-signs the four frames after the first delimiter so mutated JSON gets past the signature check.
    func resign(_ frames: [[UInt8]]) -> [[UInt8]] {
        guard let d = frames.firstIndex(of: WireMessage.delimiter), frames.count >= d + 6 else { return frames }
        var out = frames
        out[d + 1] = Array(keyed.signature(of: Array(frames[(d + 2)..<(d + 6)])).utf8)
        return out
    }

    func testHundredThousandHostileMessagesNeverCrashTheDecoder() {
        var rng = SplitMix64(state: 7)
        var decoded = 0, rejected = 0, forgedAccepted = 0, untyped = 0
        let total = 100_000
        // A pool of signed valid messages to mutate: serializing a fresh one per case would dominate the runtime.
        let pool = (0..<64).map { _ in validMessage(&rng).frames(signer: keyed) }
        for i in 0..<total {
            let frames: [[UInt8]]
            let signer: MessageSigner
            var mustFailSignature = false
            switch i % 6 {
            case 0:  // pure noise, any frame count
                frames = (0..<rng.below(12)).map { _ in rng.bytes(rng.below(48)) }
                signer = rng.below(2) == 0 ? keyed : unkeyed
            case 1:  // valid message, mutated, not re-signed: must never be accepted if a JSON frame changed
                let original = pool[rng.below(pool.count)]
                frames = mutate(original, &rng)
                signer = keyed
                mustFailSignature = frames.count == original.count && frames[0] == original[0]
                    && frames[1] == original[1] && frames[2...5] != original[2...5]
            case 2, 3:  // mutated and re-signed: exercises the JSON parser on broken frames
                frames = resign(mutate(pool[rng.below(pool.count)], &rng))
                signer = keyed
            case 4:  // random JSON-ish token soup in each JSON frame, no key
                var f: [[UInt8]] = [[1], WireMessage.delimiter, []]
                for _ in 0..<4 {
                    f.append((0..<rng.below(20)).flatMap { _ in Self.jsonFragments[rng.below(Self.jsonFragments.count)] })
                }
                frames = f
                signer = unkeyed
            default:  // huge frames now and then, otherwise a valid message
                var f = pool[rng.below(pool.count)]
                if i % 3000 == 5 { f[f.count - 1] = Array(repeating: UInt8(ascii: "["), count: 4_000_000) }
                if i % 3000 == 11 { f.append(Array(repeating: 0x41, count: 8_000_000)) }
                frames = i % 3000 == 5 ? resign(f) : f
                signer = keyed
            }
            do {
                let message = try WireMessage.decode(frames, signer: signer)
                decoded += 1
                if message.msgType.isEmpty { untyped += 1 }
                if mustFailSignature { forgedAccepted += 1 }
            } catch {
                rejected += 1
                _ = error.description
            }
        }
        XCTAssertEqual(decoded + rejected, total)
        XCTAssertEqual(untyped, 0, "a decoded message always has a msg_type")
        XCTAssertEqual(forgedAccepted, 0, "a mutated JSON frame passed the signature check")
        XCTAssertGreaterThan(decoded, total / 10, "valid messages must still decode")
        XCTAssertGreaterThan(rejected, total / 3)
    }
}
