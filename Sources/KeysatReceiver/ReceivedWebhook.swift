public import KeysatCore
public import KeysatDelivery

/// Verifying a received webhook: what `keysat-webhooks verify` does for receivers written in
/// shell, and `listen` for each request.
public struct ReceivedWebhook {
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(headers: [(name: String, value: String)], body: [UInt8]) {
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The scheme that was checked.
    public enum Scheme: String, Sendable {
        case standardWebhooks = "standard-webhooks"
        /// Standard Webhooks' `v1a` (Ed25519), checked with a public key.
        case standardWebhooksEd25519 = "standard-webhooks-v1a"
        case keysat

        /// Whether a captured request sent again later is caught: only Standard Webhooks signs
        /// a timestamp (and an id a receiver can remember); `X-Keysat-Signature` covers the
        /// body alone, so the same request verifies for ever.
        public var replayProtected: Bool { self != .keysat }
    }

    /// The schemes a receiver accepts (`--scheme`).
    public enum Accepted: String, Sendable, CaseIterable {
        /// Standard Webhooks only: the default, since every secret can check it.
        case standard
        /// `X-Keysat-Signature` only (no replay protection).
        case keysat
        /// Standard Webhooks when its headers are there, else `X-Keysat-Signature`.
        case either
    }

    /// Verifies with the schemes `accepted` allows.
    ///
    /// Falling back to `X-Keysat-Signature` whenever the `webhook-*` headers were missing let
    /// anyone strip them from a captured request and replay it past the tolerance (issue 20):
    /// the fallback is now only taken when asked for.
    ///
    /// - Parameter key: the HMAC key (`WebhookSecret.receiverKey`).
    /// - Throws: `StandardWebhooks.Failure` saying why it is not valid.
    @discardableResult
    public func verify(key: [UInt8], accepting accepted: Accepted, now: Timestamp, toleranceSeconds: Int64)
        throws(StandardWebhooks.Failure) -> Scheme
    {
        let standard = header("webhook-signature")
        if accepted == .standard || (accepted == .either && standard != nil) {
            guard let signatures = standard else {
                throw .missingHeader(
                    header("X-Keysat-Signature") == nil
                        ? "webhook-signature"
                        : "webhook-signature (X-Keysat-Signature alone carries no timestamp: accept it with --scheme keysat or either)"
                )
            }
            guard let id = header("webhook-id") else { throw .missingHeader("webhook-id") }
            guard let timestamp = header("webhook-timestamp") else {
                throw .missingHeader("webhook-timestamp")
            }
            try StandardWebhooks.verify(
                key: key, id: id, timestamp: timestamp, signatures: signatures, body: body, now: now,
                toleranceSeconds: toleranceSeconds)
            return .standardWebhooks
        }
        guard let keysat = header("X-Keysat-Signature") else {
            throw .missingHeader(
                accepted == .either ? "webhook-signature or X-Keysat-Signature" : "X-Keysat-Signature")
        }
        guard Signature.verifyKeysatHeader(keysat, key: key, body: body) else { throw .badSignature }
        return .keysat
    }

    /// Verifies the `v1a` signatures of the Standard Webhooks headers with an Ed25519 public
    /// key (`--public-key-file`); `X-Keysat-Signature`, an HMAC, cannot be checked with one.
    /// - Throws: `StandardWebhooks.Failure` saying why it is not valid.
    @discardableResult
    public func verify(publicKey: Ed25519Key, now: Timestamp, toleranceSeconds: Int64)
        throws(StandardWebhooks.Failure) -> Scheme
    {
        guard let signatures = header("webhook-signature") else { throw .missingHeader("webhook-signature") }
        guard let id = header("webhook-id") else { throw .missingHeader("webhook-id") }
        guard let timestamp = header("webhook-timestamp") else { throw .missingHeader("webhook-timestamp") }
        try StandardWebhooks.verify(
            publicKey: publicKey, id: id, timestamp: timestamp, signatures: signatures, body: body, now: now,
            toleranceSeconds: toleranceSeconds)
        return .standardWebhooksEd25519
    }
}
