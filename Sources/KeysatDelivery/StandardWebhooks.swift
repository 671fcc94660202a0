public import KeysatCore
import KeysatStore

/// The Standard Webhooks signature scheme (<https://www.standardwebhooks.com>), which Svix's
/// and Standard Webhooks' own libraries verify.
///
/// The key is the same as for `X-Keysat-Signature`, the UTF-8 bytes of the endpoint secret, so
/// one secret serves both schemes; in Standard Webhooks form it is written `whsec_` + base64.
public enum StandardWebhooks {
    /// The secret in the form the standard libraries take.
    public static func whsec(_ secret: String) -> String { "whsec_" + Base64.encode(Array(secret.utf8)) }

    /// The key bytes of a secret given in hex (Keysat) or `whsec_` form.
    public static func key(from secret: String) -> [UInt8]? {
        if secret.hasPrefix("whsec_") { return Base64.decode(String(secret.dropFirst(6))) }
        return Array(secret.utf8)
    }

    /// `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`.
    public static func signature(key: [UInt8], id: String, timestamp: Int64, body: [UInt8]) -> String {
        let message = Array("\(id).\(timestamp).".utf8) + body
        return "v1," + Base64.encode(Signature.hmacSHA256(key: key, message: message))
    }

    /// Why a verification failed.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case missingHeader(String)
        case badTimestamp
        case timestampOutsideTolerance
        case badSignature

        public var description: String {
            switch self {
            case .missingHeader(let name): "missing header \(name)"
            case .badTimestamp: "webhook-timestamp is not a number of seconds"
            case .timestampOutsideTolerance: "timestamp outside tolerance"
            case .badSignature: "bad signature"
            }
        }
    }

    /// Verifies a received webhook: any `v1` signature in `signatures` made with `key` passes.
    public static func verify(
        key: [UInt8], id: String, timestamp: String, signatures: String, body: [UInt8], now: Timestamp,
        toleranceSeconds: Int64
    ) throws(Failure) {
        let seconds = try checkTimestamp(timestamp, now: now, toleranceSeconds: toleranceSeconds)
        let expected = Array(signature(key: key, id: id, timestamp: seconds, body: body).utf8)
        let candidates = signatures.split(separator: " ").map { Array($0.utf8) }
        var matched = false
        for candidate in candidates where Signature.constantTimeEqual(candidate, expected) { matched = true }
        if !matched { throw .badSignature }
    }

    /// Verifies a received webhook with an Ed25519 public key: any `v1a` signature in
    /// `signatures` that verifies passes; other schemes' signatures are skipped. The timestamp
    /// is checked as for `v1`.
    public static func verify(
        publicKey: Ed25519Key, id: String, timestamp: String, signatures: String, body: [UInt8], now: Timestamp,
        toleranceSeconds: Int64
    ) throws(Failure) {
        let seconds = try checkTimestamp(timestamp, now: now, toleranceSeconds: toleranceSeconds)
        let message = Array("\(id).\(seconds).".utf8) + body
        for candidate in signatures.split(separator: " ") where candidate.hasPrefix("v1a,") {
            if let signature = Base64.decode(String(candidate.dropFirst(4))),
                publicKey.verify(signature, message: message)
            {
                return
            }
        }
        throw .badSignature
    }

    /// The seconds of `webhook-timestamp`, if within `toleranceSeconds` of `now`.
    private static func checkTimestamp(_ timestamp: String, now: Timestamp, toleranceSeconds: Int64) throws(Failure)
        -> Int64
    {
        guard let seconds = Int64(timestamp) else { throw .badTimestamp }
        // The header is the sender's: any Int64 must give an answer, never an overflow.
        let (difference, overflow) = now.seconds.subtractingReportingOverflow(seconds)
        guard !overflow, difference.magnitude <= UInt64(max(0, toleranceSeconds)) else {
            throw .timestampOutsideTolerance
        }
        return seconds
    }
}
