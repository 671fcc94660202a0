internal import CCryptoShim
import KeysatCore
import KeysatStore

/// An HMAC-SHA256 key made ready once, to sign many messages (the endpoint secret's UTF-8 bytes).
public final class SigningKey {
    private let state: UnsafeMutablePointer<keysat_hmac_key>

    /// - Throws: `KeysatError` (unavailable) when libcrypto cannot be loaded.
    public init(_ key: [UInt8]) throws {
        try Signature.load()
        state = .allocate(capacity: 1)
        guard key.withUnsafeBytes({ keysat_hmac_key_init(state, $0.baseAddress, $0.count) }) == 0 else {
            state.deallocate()
            throw KeysatError(.internal, "libcrypto's SHA-256 failed to prepare a signing key")
        }
    }

    deinit { state.deallocate() }

    /// HMAC-SHA256 of `prefix` followed by `message`.
    public func sign(_ message: [UInt8], prefix: [UInt8] = []) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        prefix.withUnsafeBufferPointer { head in
            message.withUnsafeBufferPointer { body in
                digest.withUnsafeMutableBufferPointer { out in
                    // It fails only if libcrypto's SHA-256 does, on a key it prepared: not a state
                    // to sign anything in.
                    let result = keysat_hmac_key_sign(
                        state, head.baseAddress, head.count, body.baseAddress, body.count, out.baseAddress)
                    precondition(result == 0, "libcrypto's SHA-256 failed")
                }
            }
        }
        return digest
    }
}

/// Signing keys by secret, made on first use: a run signs thousands of bodies with a few secrets.
final class SigningKeys {
    private var keys: [String: SigningKey] = [:]
    /// Ed25519 keys by their whsk_ text (`nil`: not a key, warned about once).
    private var ed25519Keys: [String: Ed25519Key?] = [:]
    private let logger: Logger?

    /// - Parameter logger: where a secret that cannot sign as receivers expect is warned about.
    init(logger: Logger? = nil) { self.logger = logger }

    /// - Parameter endpointID: whose secret it is, named in the warning.
    func key(_ secret: String, endpointID: String = "") throws -> SigningKey {
        if let key = keys[secret] { return key }
        // A secret another program wrote (these tools refuse such input) is still used: the
        // receiver may hold the same bytes. Warned about once per run, as a key is made once.
        if !WebhookSecret.canSign(secret) {
            logger?.log(
                .warn,
                "endpoint secret is empty or holds control bytes; receivers may not verify its signatures: replace it with 'keysat-webhooks endpoint rotate-secret'",
                ["endpoint_id": endpointID])
        }
        let key = try SigningKey(Array(secret.utf8))
        keys[secret] = key
        return key
    }

    /// The Ed25519 key of a stored signing key (`whsk_…`), made once per run; `nil` when the
    /// text is not one (another program wrote it): the request then carries no v1a signature
    /// of it, which a receiver holding the public key rejects, and the run warns once with the
    /// repair.
    func ed25519(_ text: String, endpointID: String = "") throws -> Ed25519Key? {
        if let key = ed25519Keys[text] { return key }
        var key: Ed25519Key?
        if let parts = AsymmetricKey.parts(ofSigningKey: text) { key = try Ed25519Key(seed: parts.seed) }
        if key == nil {
            logger?.log(
                .warn,
                "endpoint signing key is not a whsk_ key; requests carry no v1a signature of it: replace it with 'keysat-webhooks endpoint rotate-secret'",
                ["endpoint_id": endpointID])
        }
        ed25519Keys[text] = .some(key)
        return key
    }
}
