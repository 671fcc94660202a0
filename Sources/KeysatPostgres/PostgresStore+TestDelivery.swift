public import KeysatCore
public import KeysatStore

/// The delivery `keysat-webhooks endpoint test` sends, on PostgreSQL: a real row of one
/// endpoint, written already claimed by this session.
extension PostgresStore {
    /// Writes one delivery of `eventType` to `endpointID` alone (subscriptions aside) and
    /// returns its id; `dueDelivery(id:)` then gives it with its claim token.
    /// - Throws: `KeysatError` (data, 65) when the endpoint does not exist or is disabled.
    ///
    /// As on SQLite the row is pending and due once `sendingSeconds` have passed, so that an
    /// interrupted test leaves a row a later run sends. Here runs on other hosts may be
    /// running now, so the row is born claimed, in the statement that writes it: a random
    /// `claim_token` and a lease that ends when it becomes due. No run takes it meanwhile
    /// (`keysat_claim` and the due pages skip live leases), the test's request counts against
    /// the endpoint's in-flight cap across runs as a run's would, and its outcome is written
    /// through `record` fenced by the token like any claimed attempt: were the test still
    /// sending when the lease ends and a run took the row, the test's late outcome would go
    /// to the history only. (Holding the row unclaimable by `next_attempt_at` alone, as
    /// SQLite does, would leave the outcome unfenced and the request outside the cap.)
    public func writeTestDelivery(
        endpointID: String, eventType: String, data: [UInt8], sendingSeconds: Double,
        using generator: inout some RandomNumberGenerator
    ) throws -> String {
        let id = Identifiers.uuid4(using: &generator)
        let token = Identifiers.uuid4(using: &generator)
        try transaction {
            let active = try rows("SELECT active = 1 FROM webhook_endpoints WHERE id = $1", [endpointID])
            guard let row = active.first else { throw WebhookStore.noSuchEndpoint(endpointID) }
            guard row[0] == "t" else { throw WebhookStore.testOfDisabledEndpoint(endpointID) }
            // The envelope's time is the database's, the row's `created_at` (now() is fixed
            // for the transaction).
            guard let text = try value("SELECT keysat_rfc3339(now())"), let now = Timestamp(rfc3339: text)
            else {
                throw KeysatError(.internal, "PostgreSQL: now() did not read as a time")
            }
            try run(
                """
                INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count,
                    next_attempt_at, created_at, claim_token, lease_expires_at)
                VALUES ($1, $2, $3, $4, 0, now() + $5 * interval '1 second', now(), $6::uuid,
                    now() + $5 * interval '1 second')
                """,
                [
                    id, endpointID, eventType,
                    String(
                        decoding: Envelope.make(eventType: eventType, timestamp: now, data: data),
                        as: UTF8.self),
                    String(Int64(sendingSeconds.rounded(.up))), token,
                ])
        }
        testClaims[id] = token
        return id
    }

    /// One delivery as a run sends it (its endpoint's URL and secrets joined in), with this
    /// session's claim token when it is a test delivery this store wrote.
    public func dueDelivery(id: String) throws -> DueDelivery? {
        guard var delivery = try rows(Self.dueColumns + "\nWHERE d.id = $1", [id]).first.map(Self.dueDelivery)
        else {
            return nil
        }
        delivery.claimToken = testClaims[id]
        return delivery
    }
}
