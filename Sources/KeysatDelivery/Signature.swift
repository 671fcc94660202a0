internal import CCryptoShim
import KeysatCore
import KeysatStore

/// HMAC-SHA256 signatures of webhook bodies.
///
/// The key is the endpoint secret's UTF-8 bytes (the hex text itself, not decoded), as Keysat
/// and BTCPay do, so existing receivers verify unchanged.
public enum Signature {
    /// Loads libcrypto, once; the paths that sign or verify call this first, so that a missing
    /// library is one clear error rather than a crash.
    /// - Throws: `KeysatError` (unavailable) when the library cannot be loaded.
    public static func load() throws {
        try KeysatError.load("libcrypto", package: "libssl3") { keysat_crypto_load($0, $1) }
    }

    /// HMAC-SHA256 of `message` with `key`.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        guard let signer = try? SigningKey(key) else {
            preconditionFailure("libcrypto could not be loaded; call Signature.load() first")
        }
        return signer.sign(message)
    }

    /// The `X-Keysat-Signature` value: `sha256=` and the lowercase hex HMAC of the body.
    public static func keysatHeaderValue(secret: String, body: [UInt8]) -> String {
        "sha256=" + Identifiers.lowercaseHex(hmacSHA256(key: Array(secret.utf8), message: body))
    }

    /// Compares two byte strings in time that depends only on their length.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

extension Signature {
    /// Whether `header` (an `X-Keysat-Signature` value) signs `body` with `secret`.
    public static func verifyKeysatHeader(_ header: String, secret: String, body: [UInt8]) -> Bool {
        verifyKeysatHeader(header, key: Array(secret.utf8), body: body)
    }

    /// Whether `header` (an `X-Keysat-Signature` value) signs `body` with the key bytes `key`.
    public static func verifyKeysatHeader(_ header: String, key: [UInt8], body: [UInt8]) -> Bool {
        let expected = Array(("sha256=" + Identifiers.lowercaseHex(hmacSHA256(key: key, message: body))).utf8)
        return constantTimeEqual(expected, Array(header.lowercased().utf8))
    }
}
