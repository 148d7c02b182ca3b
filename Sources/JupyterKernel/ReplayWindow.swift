import Synchronization

/// Remembers the signatures of the last `capacity` signed messages, so a captured message sent again is refused
/// (a valid signature proves who wrote a message, not that it is new). It is the signature, not the msg_id, that
/// must be new, as in jupyter_client's and ipykernel's "Duplicate Signature" check: jupyter_client numbers msg_ids
/// per Session object (`{session}_{pid}_{n}`), and a KernelManager and its client are two objects with the same
/// session id, so the manager's shutdown_request carries the msg_id of the client's first request; its signature
/// (over a header with its own type and date) differs. Memory is bounded: each signature is kept as a 16-byte
/// keyed digest in a ring that forgets the oldest; jupyter_client keeps the same number of signatures. Shared by
/// the shell, control and stdin threads.
final class ReplayWindow: Sendable {
    struct Digest: Hashable { var high: UInt64; var low: UInt64 }

    private struct Ring {
        var seen = Set<Digest>()
        var order: [Digest] = []
        var next = 0
    }

    static let defaultCapacity = 65_536
    let capacity: Int
    private let signer: MessageSigner
    private let ring = Mutex(Ring())

    init(signer: MessageSigner, capacity: Int = ReplayWindow.defaultCapacity) {
        precondition(capacity > 0)
        self.signer = signer
        self.capacity = capacity
    }

    /// Records a verified message's signature frame; false when it is already in the window (a replay).
    func admit(signature: [UInt8]) -> Bool {
        let bytes = MessageSigner.hmacSHA256(key: signer.key, parts: [signature])
        let digest = bytes.withUnsafeBytes { raw in
            Digest(high: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                   low: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
        return ring.withLock { ring in
            guard ring.seen.insert(digest).inserted else { return false }
            if ring.order.count < capacity {
                ring.order.append(digest)
            } else {
                ring.seen.remove(ring.order[ring.next])
                ring.order[ring.next] = digest
                ring.next = (ring.next + 1) % capacity
            }
            return true
        }
    }

    var count: Int { ring.withLock { $0.seen.count } }
}
