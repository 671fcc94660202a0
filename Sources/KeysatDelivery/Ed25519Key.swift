internal import CCryptoShim
import KeysatCore

/// An Ed25519 key (RFC 8032) in libcrypto, for Standard Webhooks `v1a` signatures: a private key
/// signs (an endpoint's signing key), a public key verifies (`verify`, `listen`).
///
/// The `EVP_PKEY` is made once and freed in `deinit`: a run signs thousands of bodies with a
/// few keys (`SigningKeys` keeps one per key per run). Not `Sendable`: used by one thread.
public final class Ed25519Key {
    private let key: UnsafeMutableRawPointer
    /// The 32 bytes of the public key.
    public let publicKey: [UInt8]
    /// Whether this key holds the private half.
    public let canSign: Bool

    /// A signing key from its 32-byte seed (RFC 8032's private key).
    /// - Throws: `KeysatError` (unavailable) when libcrypto cannot be loaded, (data) when the
    ///   seed is not 32 bytes.
    public init(seed: [UInt8]) throws {
        try Signature.load()
        guard seed.count == 32, let key = seed.withUnsafeBufferPointer({ keysat_ed25519_private_key($0.baseAddress) })
        else { throw KeysatError(.data, "an Ed25519 private key is 32 bytes, not \(seed.count)") }
        var publicKey = [UInt8](repeating: 0, count: 32)
        guard publicKey.withUnsafeMutableBufferPointer({ keysat_ed25519_raw_public_key(key, $0.baseAddress) }) == 0
        else {
            keysat_ed25519_free(key)
            throw KeysatError(.internal, "libcrypto could not give an Ed25519 key's public half")
        }
        self.key = key
        self.publicKey = publicKey
        canSign = true
    }

    /// A verifying key from its 32 bytes.
    /// - Throws: `KeysatError` (unavailable) when libcrypto cannot be loaded, (data) when the
    ///   bytes are not a public key.
    public init(publicKey: [UInt8]) throws {
        try Signature.load()
        guard publicKey.count == 32,
            let key = publicKey.withUnsafeBufferPointer({ keysat_ed25519_public_key($0.baseAddress) })
        else { throw KeysatError(.data, "an Ed25519 public key is 32 bytes, not \(publicKey.count)") }
        self.key = key
        self.publicKey = publicKey
        canSign = false
    }

    deinit { keysat_ed25519_free(key) }

    /// The 64-byte signature of `prefix` followed by `message`.
    public func sign(_ message: [UInt8], prefix: [UInt8] = []) -> [UInt8] {
        precondition(canSign, "an Ed25519 public key cannot sign")
        var signature = [UInt8](repeating: 0, count: 64)
        let result = prefix.withUnsafeBufferPointer { head in
            message.withUnsafeBufferPointer { body in
                signature.withUnsafeMutableBufferPointer { out in
                    keysat_ed25519_sign(
                        key, head.baseAddress, head.count, body.baseAddress, body.count, out.baseAddress)
                }
            }
        }
        // It fails only when libcrypto cannot allocate or sign with a key it made: not a state
        // to send anything in.
        precondition(result == 0, "libcrypto's Ed25519 signing failed")
        return signature
    }

    /// Whether `signature` is `message`'s under this key. A signature of the wrong length is not.
    public func verify(_ signature: [UInt8], message: [UInt8]) -> Bool {
        guard signature.count == 64 else { return false }
        return message.withUnsafeBufferPointer { body in
            signature.withUnsafeBufferPointer { sig in
                keysat_ed25519_verify(key, body.baseAddress, body.count, sig.baseAddress, sig.count) == 1
            }
        }
    }
}
