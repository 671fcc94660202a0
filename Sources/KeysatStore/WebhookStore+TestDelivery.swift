public import KeysatCore

/// The delivery `keysat-webhooks endpoint test` sends: a real row of one endpoint, so that it
/// shows in `deliveries list` and is retried like any other if it fails.
extension WebhookStore {
    /// Writes one delivery of `eventType` to `endpointID` alone (subscriptions aside), held back
    /// from runs (`next_attempt_at` NULL) until its own attempt is recorded; returns its id.
    /// - Throws: `KeysatError` (data, 65) when the endpoint does not exist or is disabled.
    ///
    /// The row is pending, due once `sendingSeconds` (the test's own time limit, and a margin)
    /// have passed: the test sends it at once, and if the test is interrupted (Ctrl-C, a kill)
    /// a later run sends it as any delivery, so that no row is left that no run sends, no purge
    /// deletes and `stats` does not count.
    public func writeTestDelivery(
        endpointID: String, eventType: String, data: [UInt8], sendingSeconds: Double,
        using generator: inout some RandomNumberGenerator
    ) throws -> String {
        try database.writeTransaction {
            let endpoint = try endpoint(id: endpointID)
            guard endpoint.active else { throw Self.testOfDisabledEndpoint(endpointID) }
            let now = clock.now()
            let id = Identifiers.uuid4(using: &generator)
            try database.prepare(
                """
                INSERT INTO webhook_deliveries
                    (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, 0, ?, ?)
                """
            ).run([
                .text(id), .text(endpointID), .text(eventType),
                .bytes(Envelope.make(eventType: eventType, timestamp: now, data: data)),
                .text(now.adding(seconds: Int64(sendingSeconds.rounded(.up))).rfc3339), .text(now.rfc3339),
            ])
            return id
        }
    }

    /// The error for a test of a disabled endpoint, the same from every backend.
    public static func testOfDisabledEndpoint(_ id: String) -> KeysatError {
        KeysatError(.data, "endpoint \(id) is disabled: enable it to test it ('endpoint enable')", errno: nil)
    }

    /// One delivery as a run sends it (its endpoint's URL and secrets joined in).
    public func dueDelivery(id: String) throws -> DueDelivery? {
        try database.prepare(Self.dueColumns + "\nWHERE d.id = ?2").first([
            .text(clock.now().rfc3339), .text(id),
        ]) {
            Self.dueDelivery($0)
        }
    }
}
