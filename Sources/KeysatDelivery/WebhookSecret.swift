import KeysatCore

/// Secrets as people give them: an endpoint's, to store and sign with, and a receiver's, to
/// verify with (`listen`, `verify`). Both accept the plain text form and Standard Webhooks'
/// `whsec_` + base64 form; neither ever quotes the secret in an error.
public enum WebhookSecret {
    private static let prefix = Array("whsec_".utf8)

    /// The text to store as an endpoint's secret, from `bytes` (a file's content).
    ///
    /// The stored secret is HMAC key *text*: its UTF-8 bytes key `X-Keysat-Signature` (here and
    /// in Keysat's own daemon, which reads the same column) and `webhook-signature` alike. A
    /// `whsec_` secret stands for the key bytes its base64 encodes, so it is decoded, and
    /// stored when those bytes are themselves a valid secret text (a `whsec_` line this tool
    /// printed, given back): both schemes then sign with exactly the key receivers hold. A key
    /// of other bytes (Svix generates 24 random ones) cannot be stored as text without every
    /// `X-Keysat-Signature` becoming meaningless to Keysat's daemon and receivers, so it is
    /// refused with advice rather than stored literally, which made every Standard Webhooks
    /// signature fail (issue 20).
    /// - Throws: `KeysatError` (data, 65).
    public static func endpointSecret(_ bytes: [UInt8], source: String) throws -> String {
        let trimmed = Array(Envelope.trimmed(bytes))
        guard trimmed.starts(with: prefix) else { return try EndpointSecret.parse(bytes, source: source) }
        let key = try decodedKey(trimmed, source: source)
        guard isSecretText(key) else {
            throw KeysatError(
                .data,
                "the secret in \(source) is a Standard Webhooks (whsec_) secret whose key is \(key.count) binary bytes; "
                    + "Keysat's X-Keysat-Signature uses the stored secret as text, so it cannot sign with it: "
                    + "leave out --secret-file to generate a secret and give receivers its whsec_ form, "
                    + "or give a secret of 16 to 512 printable ASCII characters")
        }
        return String(decoding: key, as: UTF8.self)
    }

    /// The HMAC key a receiver verifies with, from `bytes` (a file's or variable's content):
    /// a `whsec_` secret's decoded bytes, or the text's UTF-8 bytes.
    /// - Throws: `KeysatError` (data, 65) saying the secret is malformed: never "bad signature".
    public static func receiverKey(_ bytes: [UInt8], source: String) throws -> [UInt8] {
        let trimmed = Array(Envelope.trimmed(bytes))
        guard trimmed.starts(with: prefix) else {
            return Array(try EndpointSecret.parse(bytes, source: source).utf8)
        }
        return try decodedKey(trimmed, source: source)
    }

    /// Whether a stored secret (perhaps written by another program) can sign as receivers
    /// expect: not empty, no control byte (a NUL cuts it short in C receivers, a line end in
    /// a configuration file).
    public static func canSign(_ secret: String) -> Bool {
        !secret.isEmpty && !secret.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    private static func decodedKey(_ trimmed: [UInt8], source: String) throws -> [UInt8] {
        let text = String(decoding: trimmed.dropFirst(prefix.count), as: UTF8.self)
        guard let key = Base64.decode(text), key.count >= 16, key.count <= 512 else {
            throw KeysatError(
                .data,
                "the secret in \(source) is malformed: after whsec_ must come the base64 of a 16- to 512-byte key"
            )
        }
        return key
    }

    private static func isSecretText(_ key: [UInt8]) -> Bool {
        key.count >= 16 && key.count <= 512 && key.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}
