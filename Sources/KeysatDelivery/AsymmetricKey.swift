import KeysatCore

/// Standard Webhooks' asymmetric key texts, as Svix writes them: a signing key is `whsk_` and
/// the base64 of the 32-byte Ed25519 seed followed by the 32-byte public key; a public key is
/// `whpk_` and the base64 of its 32 bytes. An endpoint's signing key is stored in this text
/// form (`webhook_endpoints.signing_key`); receivers are given the public key.
public enum AsymmetricKey {
    public static let signingPrefix = "whsk_"
    public static let publicPrefix = "whpk_"

    /// A new signing key: 32 bytes from `generator` (`SystemRandomNumberGenerator`: getrandom(2))
    /// as the seed, and the public key libcrypto derives from it.
    /// - Throws: `KeysatError` (unavailable) when libcrypto cannot be loaded.
    public static func generate(using generator: inout some RandomNumberGenerator) throws -> String {
        var seed = [UInt8](repeating: 0, count: 32)
        for index in seed.indices { seed[index] = UInt8.random(in: 0...255, using: &generator) }
        return try signingKeyText(seed: seed)
    }

    /// The `whsk_` text of the key with this seed.
    public static func signingKeyText(seed: [UInt8]) throws -> String {
        let key = try Ed25519Key(seed: seed)
        return signingPrefix + Base64.encode(seed + key.publicKey)
    }

    /// The seed and public key of a `whsk_` text, or `nil` if it is not one (64 bytes).
    public static func parts(ofSigningKey text: String) -> (seed: [UInt8], publicKey: [UInt8])? {
        guard text.hasPrefix(signingPrefix), let bytes = Base64.decode(String(text.dropFirst(signingPrefix.count))),
            bytes.count == 64
        else { return nil }
        return (Array(bytes[..<32]), Array(bytes[32...]))
    }

    /// The `whpk_` text of a public key.
    public static func publicKeyText(_ publicKey: [UInt8]) -> String { publicPrefix + Base64.encode(publicKey) }

    /// The `whpk_` text of a stored signing key's public half (no libcrypto needed), or `nil`
    /// if the stored text is not a signing key.
    public static func publicKeyText(ofSigningKey text: String) -> String? {
        parts(ofSigningKey: text).map { publicKeyText($0.publicKey) }
    }

    /// A signing key given in a file (`--signing-key-file`): one `whsk_` line whose public half
    /// is the seed's, returned as text to store.
    /// - Throws: `KeysatError` (data, 65) saying what is wrong, never quoting the key.
    public static func signingKey(_ bytes: [UInt8], source: String) throws -> String {
        let text = String(decoding: Envelope.trimmed(bytes), as: UTF8.self)
        if text.hasPrefix(publicPrefix) {
            throw KeysatError(
                .data,
                "\(source) holds a public key (whpk_); a signing key is whsk_ and the base64 of 64 bytes (seed and public key)")
        }
        guard let parts = parts(ofSigningKey: text) else {
            throw KeysatError(
                .data,
                "the signing key in \(source) must be whsk_ and the base64 of 64 bytes (the Ed25519 seed and public key)")
        }
        let derived = try Ed25519Key(seed: parts.seed).publicKey
        guard Signature.constantTimeEqual(derived, parts.publicKey) else {
            throw KeysatError(
                .data, "the signing key in \(source) is inconsistent: its last 32 bytes are not its seed's public key")
        }
        return text
    }

    /// A public key given in a file (`--public-key-file`): one `whpk_` line of 32 bytes.
    /// - Throws: `KeysatError` (data, 65) saying what is wrong; a private key is refused, so
    ///   that it is not copied to receivers.
    public static func publicKey(_ bytes: [UInt8], source: String) throws -> [UInt8] {
        let text = String(decoding: Envelope.trimmed(bytes), as: UTF8.self)
        if text.hasPrefix(signingPrefix) {
            throw KeysatError(
                .data,
                "\(source) holds a signing key (whsk_), which can forge webhooks: give receivers the public key (whpk_), which 'keysat-webhooks endpoint show' prints")
        }
        guard text.hasPrefix(publicPrefix), let key = Base64.decode(String(text.dropFirst(publicPrefix.count))),
            key.count == 32
        else {
            throw KeysatError(
                .data, "the public key in \(source) must be whpk_ and the base64 of 32 bytes (an Ed25519 public key)")
        }
        return key
    }
}
