public import KeysatCore

/// The events `keysat-webhooks trigger` enqueues: samples, marked as tests.
extension WebhookStore {
    /// Writes one pending delivery of `eventType` per active endpoint subscribed to it (by the
    /// rule keysat-enqueue's events go by, `subscribes`: `*` and `PREFIX.*` included), or to
    /// `endpointID` alone whatever it subscribes to, in one transaction, each with the envelope
    /// around `data` marked `"test":true`. Otherwise an event as any: due now, signed and
    /// retried as keysat-enqueue's, in the endpoints' order, and to subscribers only where
    /// their filters take it (`EventFilter.receivers`; the one endpoint named gets it whatever
    /// its filter says).
    /// - Throws: `KeysatError` (data, 65) when `endpointID` names a disabled endpoint.
    public func enqueueSample(
        eventType: String, data: [UInt8], endpointID: String?,
        using generator: inout some RandomNumberGenerator
    ) throws -> EnqueueResult {
        try database.writeTransaction {
            let now = clock.now()
            var endpoints: [String]
            if let endpointID {
                guard try endpoint(id: endpointID).active else {
                    throw Self.testOfDisabledEndpoint(endpointID)
                }
                endpoints = [endpointID]
            } else {
                var filters = EventFilter.Stored()
                var row = 0
                let subscribed = try database.prepare(
                    """
                    SELECT id, event_filter FROM webhook_endpoints
                    WHERE \(Self.isActive("")) AND \(Self.subscribes) ORDER BY created_at, id
                    """
                ).rows([.text(eventType)]) { columns -> String in
                    defer { row += 1 }
                    if let filter = columns.text(1) { filters.add(filter, at: row) }
                    return columns.string(0)
                }
                endpoints = EventFilter.receivers(
                    subscribed, filters: filters, eventType: eventType, timestamp: now, data: data, test: true)
            }
            let payload = Envelope.make(eventType: eventType, timestamp: now, data: data, test: true)
            let insert = try database.prepare(
                """
                INSERT INTO webhook_deliveries
                    (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, 0, ?, ?)
                """)
            var written: [EnqueueResult.Delivery] = []
            for endpointID in endpoints {
                let id = Identifiers.uuid4(using: &generator)
                try insert.run([
                    .text(id), .text(endpointID), .text(eventType), .bytes(payload), .text(now.rfc3339),
                    .text(now.rfc3339),
                ])
                written.append(.init(id: id, endpointID: endpointID))
            }
            return EnqueueResult(eventType: eventType, deliveries: written, replayed: false)
        }
    }
}
