public import KeysatCore
public import KeysatStore

/// What a run needs: due pages, claims, outcomes fenced by the claim token.
extension PostgresStore: DeliveryStore {
    /// The columns of a due delivery and its endpoint, times as the programs write them.
    static let dueColumns = """
        SELECT d.id, d.endpoint_id, d.event_type,
               CASE WHEN length(d.payload_json) <= \(DueDelivery.inlinePayloadCharacters) THEN d.payload_json END,
               d.attempt_count, keysat_rfc3339(d.next_attempt_at),
               e.url, e.secret, coalesce(e.active = 1, false),
               CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END,
               coalesce(e.ordered, 0), keysat_rfc3339(d.created_at), d.seq, d.next_attempt_at <= now(),
               e.retry_schedule, e.retry_jitter, e.custom_headers, e.client_cert, e.client_key,
               e.signing_key,
               CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_signing_key END,
               coalesce(e.keysat_signature, 1), e.rate_limit,
               d.keysat_webhooks_ordering_key, d.keysat_webhooks_sequence, e.order_on_dead, e.event_filter
        FROM webhook_deliveries AS d LEFT JOIN webhook_endpoints AS e ON e.id = d.endpoint_id
        """

    /// No run holds the row: never claimed, or its claim's lease ended.
    static let unleased = "(d.lease_expires_at IS NULL OR d.lease_expires_at <= now())"

    static func dueDelivery(_ row: [String?]) -> DueDelivery {
        var delivery = DueDelivery(
            id: row[0] ?? "", endpointID: row[1] ?? "", eventType: row[2] ?? "",
            payload: Array((row[3] ?? "").utf8), attemptCount: Int(row[4] ?? "") ?? 0,
            nextAttemptAt: row[5] ?? "", url: row[6], secret: row[7], endpointActive: row[8] == "t",
            previousSecret: row[9])
        delivery.ordered = row[10] == "1"
        delivery.createdAt = row[11] ?? ""
        delivery.rowID = Int64(row[12] ?? "") ?? 0
        delivery.payloadDeferred = row[3] == nil
        delivery.isDue = row[13] == "t"
        (delivery.settings, delivery.settingsProblem) = EndpointSettings.fromStored(
            retrySchedule: row[14], retryJitter: row[15], customHeaders: row[16],
            clientCert: row[17], clientKey: row[18], rateLimit: row[22], filter: row[26], orderOnDead: row[25])
        if let key = row[23], let sequence = row[24].flatMap({ Int64($0) }) {
            delivery.orderingKey = key
            delivery.sequence = sequence
        }
        delivery.signingKey = row[19]
        delivery.previousSigningKey = row[20]
        delivery.keysatSignature = row[21] != "0"
        // What the column types cannot rule out: ids a header cannot carry, counts another
        // program wrote out of range (the next attempt's count would not fit). Dead-lettered
        // without a request, matched by `seq` and id (`record`).
        if let defect = DeliveryRowCheck.defect(id: delivery.id, attemptCount: delivery.attemptCount) {
            delivery.defect = defect
            delivery.fingerprint = "seq \(delivery.rowID)"
        }
        return delivery
    }

    public func dueDeliveries(dueBy: Timestamp, retries: Bool, after cursor: DueCursor?, limit: Int) throws
        -> [DueDelivery]
    {
        // Due by the database's clock, not the host's `dueBy` (hosts' clocks differ), at the
        // round's start: the database's `now()` of its first page, kept for the round's later
        // pages, so that a run is bounded as on SQLite (a retry whose time comes during the
        // run is the next run's, and a steady stream of new events cannot keep a run going).
        if cursor == nil && !retries || roundStart == nil {
            roundStart = try value("SELECT keysat_rfc3339(now())")
        }
        let after = cursor == nil ? "" : "AND (d.next_attempt_at, d.seq) > ($4::timestamptz, $5::bigint)"
        return try rows(
            Self.dueColumns + "\n" + """
                WHERE \(DeliveryRecord.State.due.condition("d", now: "$3::timestamptz")) AND \(Self.unleased)
                  AND (d.attempt_count > 0) = $2::boolean \(after)
                ORDER BY d.next_attempt_at, d.seq
                LIMIT $1
                """,
            [String(limit), retries ? "true" : "false", roundStart]
                + (cursor.map { [$0.nextAttemptAt, String($0.rowID)] } ?? [])
        ).map(Self.dueDelivery)
    }

    /// Every pending row has a time here: the column is a `timestamptz`.
    public func unschedulable(limit: Int) throws -> [DueDelivery] { [] }

    public func oldestPending(endpointID: String) throws -> DueDelivery? {
        try rows(
            Self.dueColumns + "\n" + """
                WHERE d.endpoint_id = $1 AND \(DeliveryRecord.State.pending.condition())
                ORDER BY d.seq LIMIT 1
                """, [endpointID]
        ).first.map(Self.dueDelivery)
    }

    public func keyHead(endpointID: String, key: String, hold: Bool) throws -> DueDelivery? {
        try rows(
            Self.dueColumns + "\n" + """
                WHERE d.endpoint_id = $1 AND d.keysat_webhooks_ordering_key = $2
                  AND d.keysat_webhooks_sequence IS NOT NULL AND \(DeliveryRecord.State.pending.condition("d"))
                  AND (NOT $3::boolean OR NOT EXISTS (
                      SELECT 1 FROM webhook_deliveries AS o
                      WHERE o.endpoint_id = d.endpoint_id
                        AND o.keysat_webhooks_ordering_key = d.keysat_webhooks_ordering_key
                        AND o.delivered_at IS NULL AND o.keysat_webhooks_sequence < d.keysat_webhooks_sequence))
                ORDER BY d.keysat_webhooks_sequence LIMIT 1
                """, [endpointID, key, hold ? "true" : "false"]
        ).first.map(Self.dueDelivery)
    }

    public func payload(of delivery: DueDelivery) throws -> [UInt8]? {
        try rows("SELECT payload_json FROM webhook_deliveries WHERE seq = $1 AND id = $2", [
            String(delivery.rowID), delivery.id,
        ]).first.map { Array(($0[0] ?? "").utf8) }
    }

    /// Claims cost a round trip: up to this many of one endpoint's deliveries in one.
    public var claimBatch: Int { 32 }

    public func claim(_ deliveries: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
        -> [Claim]
    {
        guard let first = deliveries.first else { return [] }
        if first.orderingKey != nil && !first.ordered && deliveries.count == 1 {
            return [try claimKeyed(first, perEndpoint: perEndpoint, inFlight: inFlight, leaseSeconds: leaseSeconds)]
        }
        var generator = SystemRandomNumberGenerator()
        let tokens = deliveries.map { _ in Identifiers.uuid4(using: &generator) }
        let answer = try value(
            "SELECT keysat_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [
                PostgresArray.literal(deliveries.map { String($0.rowID) }), PostgresArray.literal(deliveries.map(\.id)),
                PostgresArray.literal(deliveries.map { String($0.attemptCount) }), PostgresArray.literal(tokens),
                first.endpointID, String(max(perEndpoint, 1)), String(inFlight), first.ordered ? "true" : "false",
                String(Int64(leaseSeconds * 1000)), runID,
                first.settings.rateLimit.map { String($0.perSecond) }, first.settings.rateLimit.map { String($0.burst) },
            ])
        let answers = PostgresArray.elements(answer ?? "{}")
        hasClaimed = true
        return deliveries.indices.map { index in
            switch index < answers.count ? answers[index] : "taken" {
            case "claimed":
                var claimed = deliveries[index]
                claimed.claimToken = tokens[index]
                return .claimed(claimed)
            case "busy": return .endpointBusy
            case let answer where answer.hasPrefix("rate:"):  // unquoted in the array's text: no space
                return .rateLimited(nextTokenInSeconds: (Double(answer.dropFirst(5)) ?? 0) / 1000)
            default: return .taken
            }
        }
    }

    /// Rows whose claim is still this run's token lose it (due again for any run at once);
    /// the run's count of attempts in flight at their endpoints goes down by as many as were
    /// handed back, whether or not a row still had the claim (the claim counted either way).
    /// A claim need not survive a crash of the server: committed without waiting for the flush.
    public func release(_ claimed: [DueDelivery]) throws {
        guard !claimed.isEmpty else { return }
        var counts: [String: Int] = [:]
        for row in claimed { counts[row.endpointID, default: 0] += 1 }
        let endpoints = counts.keys.sorted()  // in order, as outcomes take them: no deadlock
        try transaction(settings: ["synchronous_commit = off"]) {
            try run(
                """
                UPDATE webhook_deliveries AS d SET claim_token = NULL, lease_expires_at = NULL, claimed_by = NULL
                FROM unnest($1::bigint[], $2::uuid[]) AS r(seq, token)
                WHERE d.seq = r.seq AND d.claim_token = r.token
                """,
                [PostgresArray.literal(claimed.map { String($0.rowID) }), PostgresArray.literal(claimed.map(\.claimToken))])
            try run(
                """
                UPDATE keysat_webhooks_in_flight AS f SET attempts = greatest(f.attempts - u.released, 0)
                FROM (SELECT * FROM unnest($1::text[], $2::integer[]) AS u(endpoint_id, released) ORDER BY 1) AS u
                WHERE f.endpoint_id = u.endpoint_id AND f.run = $3
                """,
                [PostgresArray.literal(endpoints), PostgresArray.literal(endpoints.map { String(counts[$0]!) }), runID])
        }
    }

    /// A delivery with an ordering key, claimed by `keysat_claim_keyed` (only its key's head,
    /// only while no run has one of the key in flight); 'key' (held) is `.taken`: another run
    /// serves the key, or this row is not its head.
    private func claimKeyed(_ row: DueDelivery, perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
        -> Claim
    {
        var generator = SystemRandomNumberGenerator()
        let token = Identifiers.uuid4(using: &generator)
        let answer = try value(
            "SELECT keysat_claim_keyed($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [
                String(row.rowID), row.id, String(row.attemptCount), token, row.endpointID,
                String(max(perEndpoint, 1)), String(inFlight), String(Int64(leaseSeconds * 1000)), runID,
                row.settings.rateLimit.map { String($0.perSecond) }, row.settings.rateLimit.map { String($0.burst) },
                row.settings.holdOnDead ? "true" : "false",
            ])
        hasClaimed = true
        switch answer ?? "taken" {
        case "claimed":
            var claimed = row
            claimed.claimToken = token
            return .claimed(claimed)
        case "busy": return .endpointBusy
        case let answer where answer.hasPrefix("rate:"):
            return .rateLimited(nextTokenInSeconds: (Double(answer.dropFirst(5)) ?? 0) / 1000)
        default: return .taken
        }
    }

    public func prepareToRecord() throws {
        try run(
            """
            INSERT INTO keysat_webhooks_state (name, value) VALUES ('recording_checked_at', keysat_rfc3339(now()))
            ON CONFLICT (name) DO UPDATE SET value = excluded.value
            """)
    }

    public func eraseExpiredSecrets(now: Timestamp) throws -> Int {
        // Rows locked in id order, as an enqueue locks its ordered endpoints' rows: two
        // statements locking several in different orders could deadlock.
        try run(
            """
            WITH expired AS (
                SELECT id FROM webhook_endpoints
                WHERE (previous_secret IS NOT NULL OR previous_signing_key IS NOT NULL)
                  AND (previous_secret_expires_at IS NULL OR previous_secret_expires_at <= now())
                ORDER BY id FOR UPDATE)
            UPDATE webhook_endpoints AS e
            SET previous_secret = NULL, previous_signing_key = NULL, previous_secret_expires_at = NULL
            FROM expired WHERE e.id = expired.id
            """)
    }

    /// Disables the endpoint and announces it (`webhook.endpoint.disabled`) in the same
    /// transaction, as on SQLite; with `failingSince`, later runs probe it.
    public func disableEndpoint(id: String, reason: String, failingSince: Timestamp?) throws -> Bool {
        try transaction {
            let disabled =
                try run(
                    """
                    UPDATE webhook_endpoints SET active = 0, disabled_reason = $2, disabled_at = now(), updated_at = now()
                    WHERE id = $1 AND active = 1
                    """, [id, reason]) == 1
            guard disabled else { return false }
            try run(
                """
                INSERT INTO keysat_webhooks_endpoint_health AS h (endpoint_id, disabled_failing_since, probed_at)
                VALUES ($1, $2::timestamptz, CASE WHEN $2::timestamptz IS NOT NULL THEN now() END)
                ON CONFLICT (endpoint_id) DO UPDATE SET
                    disabled_failing_since = excluded.disabled_failing_since, probed_at = excluded.probed_at
                """, [id, failingSince?.rfc3339])
            announcing(OperationalEvent.endpointDisabled) {
                try writeOperationalEvent(
                    OperationalEvent.endpointDisabled,
                    data: OperationalEvent.disabledData(endpointID: id, reason: reason), excluding: id)
            }
            return true
        }
    }

    public func failingSince(endpointID: String) throws -> Timestamp? {
        try value(
            """
            SELECT keysat_rfc3339(min(a.started_at)) FROM webhook_deliveries d
                JOIN webhook_delivery_attempts a ON a.delivery_id = d.id
            WHERE d.endpoint_id = $1 AND a.started_at > coalesce(
                (SELECT max(a2.started_at) FROM webhook_deliveries d2
                     JOIN webhook_delivery_attempts a2 ON a2.delivery_id = d2.id
                 WHERE d2.endpoint_id = $1 AND a2.status_code BETWEEN 200 AND 299), '-infinity')
              AND a.started_at > coalesce(
                (SELECT streak_reset_at FROM keysat_webhooks_endpoint_health WHERE endpoint_id = $1), '-infinity')
            """, [endpointID]
        ).flatMap { Timestamp(rfc3339: $0) }
    }
}
