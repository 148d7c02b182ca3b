import COpenSSL

/// HMAC-SHA256 signatures of the wire protocol: lowercase hex over header | parent_header | metadata | content,
/// keyed by the connection file's `key` (its UTF-8 bytes). An empty key means signing is off, as in jupyter_client.
public struct MessageSigner: Sendable {
    public let key: [UInt8]

    public init(key: String) { self.key = Array(key.utf8) }
    public init(keyBytes: [UInt8]) { self.key = keyBytes }

    public var isEnabled: Bool { !key.isEmpty }

    /// The signature frame for these four JSON frames ("" when signing is off).
    public func signature(of parts: [[UInt8]]) -> String {
        guard isEnabled else { return "" }
        return MessageSigner.hex(MessageSigner.hmacSHA256(key: key, parts: parts))
    }

    /// Constant-time check of a received signature frame. With signing off every message is accepted.
    public func verify(signature: [UInt8], parts: [[UInt8]]) -> Bool {
        guard isEnabled else { return true }
        let expected = Array(self.signature(of: parts).utf8)
        guard signature.count == expected.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<expected.count { difference |= expected[i] ^ signature[i] }
        return difference == 0
    }

    public static func hmacSHA256(key: [UInt8], parts: [[UInt8]]) -> [UInt8] {
        // One-shot HMAC over the concatenation: the frames are small, and the one-shot call is the
        // non-deprecated OpenSSL 3 API (the HMAC_CTX_* family is deprecated).
        var message: [UInt8] = []
        message.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { message.append(contentsOf: part) }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = key.withUnsafeBufferPointer { keyBuffer in
            message.withUnsafeBufferPointer { messageBuffer in
                digest.withUnsafeMutableBufferPointer { out in
                    HMAC(EVP_sha256(), keyBuffer.baseAddress, Int32(keyBuffer.count),
                         messageBuffer.baseAddress, messageBuffer.count, out.baseAddress, &length) != nil
                }
            }
        }
        precondition(ok && length == 32, "libcrypto HMAC-SHA256 failed")
        return Array(digest.prefix(Int(length)))
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
