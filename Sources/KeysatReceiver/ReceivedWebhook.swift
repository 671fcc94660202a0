public import KeysatCore
public import KeysatDelivery

/// Verifying a received webhook with either scheme: what `keysat-webhooks verify` does for
/// receivers written in shell.
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
        case keysat
    }

    /// Verifies with the Standard Webhooks headers when present (they bind a timestamp, so a
    /// replay is caught), else with `X-Keysat-Signature`.
    ///
    /// - Parameter secret: hex (the endpoint secret as stored) or `whsec_` form.
    /// - Throws: `StandardWebhooks.Failure` saying why it is not valid.
    @discardableResult
    public func verify(secret: String, now: Timestamp, toleranceSeconds: Int64) throws(StandardWebhooks
        .Failure)
        -> Scheme
    {
        guard let key = StandardWebhooks.key(from: secret) else { throw .badSignature }
        if let signatures = header("webhook-signature") {
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
            throw .missingHeader("webhook-signature or X-Keysat-Signature")
        }
        guard Signature.verifyKeysatHeader(keysat, key: key, body: body) else {
            throw .badSignature
        }
        return .keysat
    }
}
