import Synchronization

/// Remembers the msg_ids of the last `capacity` signed messages, so a captured message sent again is refused
/// (a valid signature proves who wrote a message, not that it is new). Memory is bounded: each id is kept as a
/// 16-byte keyed digest, whatever its length, in a ring that forgets the oldest. jupyter_client keeps the same
/// number of signatures for its "Duplicate Signature" check. Shared by the shell, control and stdin threads.
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

    /// Records `msgID`; false when it is already in the window (a replay).
    func admit(msgID: String) -> Bool {
        let bytes = MessageSigner.hmacSHA256(key: signer.key, parts: [Array(msgID.utf8)])
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
