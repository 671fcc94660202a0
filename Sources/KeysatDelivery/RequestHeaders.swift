public import KeysatStore

/// The headers of a webhook request.
public enum RequestHeaders {
    /// `Content-Type`, the Keysat signature (and the previous secret's during a rotation),
    /// event and delivery id (stable across retries), and the Standard Webhooks headers.
    ///
    /// - Parameter timestamp: the attempt's time, signed into `webhook-signature`.
    public static func make(for delivery: DueDelivery, secret: String, timestamp: Timestamp) -> [String] {
        let id = headerSafe(delivery.id)
        var headers = [
            "Content-Type: application/json",
            "X-Keysat-Signature: " + Signature.keysatHeaderValue(secret: secret, body: delivery.payload),
        ]
        if let previous = delivery.previousSecret {
            headers.append(
                "X-Keysat-Previous-Signature: "
                    + Signature.keysatHeaderValue(secret: previous, body: delivery.payload))
        }
        headers += [
            "X-Keysat-Event: " + headerSafe(delivery.eventType),
            "X-Keysat-Delivery: " + id,
            "webhook-id: " + id,
            "webhook-timestamp: " + String(timestamp.seconds),
        ]
        // The new secret's signature first, as the specification asks during a rotation.
        let signatures = ([secret] + (delivery.previousSecret.map { [$0] } ?? [])).map {
            StandardWebhooks.signature(
                key: Array($0.utf8), id: id, timestamp: timestamp.seconds, body: delivery.payload)
        }
        headers.append("webhook-signature: " + signatures.joined(separator: " "))
        return headers
    }

    /// A value without control characters: rows written by other programs cannot add header lines.
    static func headerSafe(_ value: String) -> String {
        String(String.UnicodeScalarView(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
    }
}
