public import KeysatCore
public import KeysatStore

/// The headers of a webhook request.
public enum RequestHeaders {
    /// `Content-Type`, the Keysat signature (and the previous secret's during a rotation) unless
    /// the endpoint turned it off, event and delivery id (stable across retries), and the
    /// Standard Webhooks headers.
    ///
    /// - Parameter timestamp: the attempt's time, signed into `webhook-signature`.
    public static func make(for delivery: DueDelivery, secret: String, timestamp: Timestamp) throws
        -> [String]
    {
        try make(for: delivery, secret: secret, timestamp: timestamp, keys: SigningKeys())
    }

    static func make(for delivery: DueDelivery, secret: String, timestamp: Timestamp, keys: SigningKeys)
        throws
        -> [String]
    {
        let id = headerSafe(delivery.id)
        let body = delivery.payload
        let current = try keys.key(secret, endpointID: delivery.endpointID)
        let previous = try delivery.previousSecret.map { try keys.key($0, endpointID: delivery.endpointID) }
        var headers = ["Content-Type: application/json"]
        if delivery.keysatSignature {
            headers.append("X-Keysat-Signature: sha256=" + Identifiers.lowercaseHex(current.sign(body)))
            if let previous {
                headers.append(
                    "X-Keysat-Previous-Signature: sha256=" + Identifiers.lowercaseHex(previous.sign(body)))
            }
        }
        let seconds = String(timestamp.seconds)
        headers += [
            "X-Keysat-Event: " + headerSafe(delivery.eventType),
            "X-Keysat-Delivery: " + id,
            "webhook-id: " + id,
            "webhook-timestamp: " + seconds,
        ]
        // Its number within its ordering key (issue 23): a receiver sees a gap or a replay.
        if let sequence = delivery.sequence { headers.append("X-Keysat-Sequence: " + String(sequence)) }
        // Standard Webhooks signs "{id}.{timestamp}.{body}"; the new secret's signature comes first.
        // An endpoint with a signing key sends its v1a signatures (new key first) before the
        // HMAC ones: a receiver holding only the public key verifies v1a, one holding the secret
        // v1, and the standard's libraries try every signature of their scheme and skip others.
        let prefix = Array("\(id).\(seconds).".utf8)
        var signatures = ""
        if let signingKey = delivery.signingKey,
            let key = try keys.ed25519(signingKey, endpointID: delivery.endpointID)
        {
            signatures = "v1a," + Base64.encode(key.sign(body, prefix: prefix)) + " "
            if let old = delivery.previousSigningKey,
                let previousKey = try keys.ed25519(old, endpointID: delivery.endpointID)
            {
                signatures += "v1a," + Base64.encode(previousKey.sign(body, prefix: prefix)) + " "
            }
        }
        signatures += "v1," + Base64.encode(current.sign(body, prefix: prefix))
        if let previous { signatures += " v1," + Base64.encode(previous.sign(body, prefix: prefix)) }
        headers.append("webhook-signature: " + signatures)
        // The operator's, after this project's own, which they cannot name (`CustomHeaders`).
        headers += delivery.settings.customHeaders.headers.map(\.line)
        return headers
    }

    /// A value without control characters: rows written by other programs cannot add header lines.
    static func headerSafe(_ value: String) -> String {
        var value = value
        // On the contiguous bytes (a native string's): the generic UTF8View walk cost ~40
        // instructions a byte, on every request's id and event type.
        let clean = value.withUTF8 { HeaderLine.isSafeValue($0) }
        if clean { return value }
        return String(
            String.UnicodeScalarView(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
    }
}
