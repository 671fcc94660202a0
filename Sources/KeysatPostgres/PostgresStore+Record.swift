import KeysatCore
public import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// Outcomes, written in batches by set-based statements and fenced by the claim token.
extension PostgresStore {
    /// Writes `outcomes` in one transaction: the rows whose claim still stands, the attempt
    /// history of every request made, the endpoints' health.
    ///
    /// A row is changed only where its `claim_token` is the attempt's (or, for an outcome
    /// without a request or claim, where no run holds it) and its attempt count is still the
    /// one read: a run whose lease expired and whose delivery another run took writes nothing
    /// to the row, so the other run's outcome stands. Its attempt still goes to the history:
    /// the request was made. (River, Oban and pgmq accept a stale worker's completion; Convoy
    /// checks its claim only when renewing it.) Times of the next attempt are the database's
    /// clock plus the delay the policy chose; times in the history are the host's, measured.
    ///
    /// The transaction is tried again (three times, waiting a little longer each time) when it
    /// failed for a reason that passes — a lock an operator's transaction held past the
    /// session's `lock_timeout`, a deadlock, a serialization failure, a cancelled statement, a
    /// connection lost (reopened first) — rather than end the run with its answered requests
    /// unrecorded, to be sent again. Trying again is safe: every row change is fenced, and an
    /// attempt is recorded once (its claim token is unique in the history).
    public func record(_ outcomes: [AttemptOutcome]) throws {
        guard !outcomes.isEmpty else { return }
        var tries = 0
        while true {
            do {
                // Announced once the outcomes are committed (`announceDead` says why not before).
                return announceDead(try recordOnce(outcomes))
            } catch let error as KeysatError where tries < 3 && (error.kind == .temporary || !connection.isConnected) {
                tries += 1
                usleep(UInt32(100_000 * tries))
                if !connection.isConnected { try reconnect() }
            }
        }
    }

    /// Returns the ids of the deliveries it dead-lettered (but defective rows, which are said
    /// in the log by rowid).
    private func recordOnce(_ outcomes: [AttemptOutcome]) throws -> [String] {
        let defective = outcomes.filter { $0.fingerprint != nil }
        let outcomes = outcomes.filter { $0.fingerprint == nil }
        // The delay the policy chose, from this moment on the host to the same on the database.
        let hostNow = clock.now()
        return try transaction(settings: Self.rowByRow) {
            for outcome in defective { try deadLetterDefective(outcome) }
            guard !outcomes.isEmpty else { return [] }
            let applied = Set(
                try rows(Self.fencedUpdate, Self.rowArrays(outcomes, hostNow: hostNow)).compactMap {
                    $0[0].flatMap { Int64($0) }
                })
            let requested = outcomes.filter(\.requested)
            if !requested.isEmpty {
                try run(Self.attemptInsert, Self.attemptArrays(requested))
            }
            try writeHealth(outcomes.filter { $0.requested && applied.contains($0.rowID) })
            try endInFlight(outcomes.filter { $0.claimToken != nil })
            return outcomes.filter { $0.announcedDead && applied.contains($0.rowID) }.map(\.deliveryID)
        }
    }

    /// Takes the attempts that ended off this run's count of attempts in flight per endpoint
    /// (`keysat_webhooks_in_flight`, what other runs' claims count against the cap), whether
    /// their outcome was written or fenced out: the request is over either way. Endpoints in
    /// order, as `writeHealth`, so two commits never deadlock.
    private func endInFlight(_ ended: [AttemptOutcome]) throws {
        guard !ended.isEmpty else { return }
        var counts: [String: Int] = [:]
        for outcome in ended { counts[outcome.endpointID, default: 0] += 1 }
        let endpoints = counts.keys.sorted()
        try run(
            """
            UPDATE keysat_webhooks_in_flight AS f SET attempts = greatest(f.attempts - u.ended, 0)
            FROM (SELECT * FROM unnest($1::text[], $2::integer[]) AS u(endpoint_id, ended) ORDER BY 1) AS u
            WHERE f.endpoint_id = u.endpoint_id AND f.run = $3
            """,
            [PostgresArray.literal(endpoints), PostgresArray.literal(endpoints.map { String(counts[$0]!) }), runID])
    }

    /// A row that cannot be sent as it stands (`DueDelivery.defect`): dead-lettered without a
    /// request where it still is what was read and no run holds it, with why in `last_error`
    /// and a count a dead row has (at least 1).
    private func deadLetterDefective(_ outcome: AttemptOutcome) throws {
        try run(
            """
            UPDATE webhook_deliveries SET next_attempt_at = NULL, last_error = $3,
                attempt_count = CASE WHEN attempt_count BETWEEN 1 AND \(DeliveryRowCheck.maximumAttemptCount)
                    THEN attempt_count ELSE 1 END,
                claim_token = NULL, lease_expires_at = NULL, claimed_by = NULL
            WHERE seq = $1 AND id = $2 AND delivered_at IS NULL
              AND (lease_expires_at IS NULL OR lease_expires_at <= now())
            """, [String(outcome.rowID), outcome.deliveryID, outcome.error])
    }

    /// The outcomes' statements find their rows one by one through the primary keys, whatever
    /// the table's size: on a queue of 10,000 rows the planner judged a hash join over the
    /// whole table (a sequential scan per batch) cheaper than 448 index look-ups, and it took
    /// 12 ms of the batch's 21 (EXPLAIN ANALYZE, docs/BENCHMARKS.md tenth session); the
    /// look-ups take 4.
    static let rowByRow: [StaticString] = ["enable_hashjoin = off", "enable_mergejoin = off"]

    static let fencedUpdate = """
        UPDATE webhook_deliveries AS d
        SET attempt_count = d.attempt_count + 1, last_status_code = o.status, last_error = o.error,
            delivered_at = CASE WHEN o.result = 'delivered' THEN clock_timestamp() END,
            next_attempt_at = CASE WHEN o.result = 'retry' THEN clock_timestamp() + o.delay_ms * interval '1 millisecond' END,
            claim_token = NULL, lease_expires_at = NULL, claimed_by = NULL
        FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::integer[], $5::text[], $6::integer[], $7::text[],
                    $8::bigint[], $9::boolean[]) AS o(seq, id, token, previous, result, status, error, delay_ms,
                                                      still_inactive)
        WHERE d.seq = o.seq AND d.id = o.id AND d.attempt_count = o.previous AND d.delivered_at IS NULL
          AND (d.claim_token = o.token
               OR (o.token IS NULL AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= now())))
          -- Keysat's rule for a disabled endpoint, only while it still is: the endpoint's row
          -- read under a share lock, which a recovery's FOR UPDATE waits for (and which waits
          -- for a recovery in flight, then reads the row as it committed).
          AND (NOT o.still_inactive OR NOT EXISTS (
                SELECT 1 FROM (SELECT e.active FROM webhook_endpoints AS e WHERE e.id = d.endpoint_id FOR SHARE) AS e
                WHERE e.active = 1))
        RETURNING d.seq
        """

    /// The attempts, each once: an attempt is its claim, so an outcome handed over twice adds
    /// no second line to the history, while an attempt whose lease another run took still adds
    /// its own.
    static let attemptInsert = """
        INSERT INTO webhook_delivery_attempts
            (delivery_id, attempt_number, started_at, duration_ms, status_code, error, response_body, claim_token)
        SELECT * FROM unnest($1::text[], $2::integer[], $3::timestamptz[], $4::integer[], $5::integer[],
                             $6::text[], $7::text[], $8::uuid[])
        ON CONFLICT (claim_token) WHERE claim_token IS NOT NULL DO NOTHING
        """

    static func rowArrays(_ outcomes: [AttemptOutcome], hostNow: Timestamp) -> [String?] {
        var seq: [String?] = [], id: [String?] = [], token: [String?] = [], previous: [String?] = []
        var result: [String?] = [], status: [String?] = [], error: [String?] = [], delay: [String?] = []
        var stillInactive: [String?] = []
        for outcome in outcomes {
            stillInactive.append(EndpointRecovery.needsEndpointStillInactive(outcome) ? "true" : "false")
            seq.append(String(outcome.rowID))
            id.append(outcome.deliveryID)
            token.append(outcome.claimToken)
            previous.append(String(outcome.previousAttemptCount))
            status.append(outcome.statusCode.map(String.init))
            error.append(outcome.error)
            switch outcome.result {
            case .delivered:
                result.append("delivered")
                delay.append(nil)
            case .retry(let at):
                result.append("retry")
                delay.append(String(max(0, (at.microseconds - hostNow.microseconds) / 1000)))
            case .dead:
                result.append("dead")
                delay.append(nil)
            }
        }
        return [seq, id, token, previous, result, status, error, delay, stillInactive].map(PostgresArray.literal)
    }

    static func attemptArrays(_ outcomes: [AttemptOutcome]) -> [String?] {
        var id: [String?] = [], number: [String?] = [], started: [String?] = [], duration: [String?] = []
        var status: [String?] = [], error: [String?] = [], body: [String?] = [], token: [String?] = []
        for outcome in outcomes {
            id.append(outcome.deliveryID)
            token.append(outcome.claimToken)
            number.append(String(outcome.previousAttemptCount + 1))
            started.append(outcome.startedAt.rfc3339)
            duration.append(String((outcome.finishedAt.microseconds - outcome.startedAt.microseconds) / 1000))
            status.append(outcome.statusCode.map(String.init))
            error.append(outcome.error)
            let excerpt = outcome.responseExcerpt.prefix(1024)
            body.append(excerpt.isEmpty ? nil : String(decoding: excerpt, as: UTF8.self))
        }
        return [id, number, started, duration, status, error, body, token].map(PostgresArray.literal)
    }

    /// The endpoints' health and per-minute counts, one statement each, rows in endpoint order
    /// so that two runs' commits lock them in the same order (no deadlock).
    func writeHealth(_ outcomes: [AttemptOutcome]) throws {
        struct Health {
            var lastSuccess: Timestamp?
            var lastFailure: Timestamp?
            var streak = 0
        }
        var health: [String: Health] = [:]
        var minutes: [String: [Int64: (attempts: Int, successes: Int)]] = [:]
        for outcome in outcomes where !outcome.endpointID.isEmpty {
            let success = outcome.statusCode.map { (200..<300).contains($0) } ?? false
            var state = health[outcome.endpointID] ?? Health()
            if success {
                state.lastSuccess = max(state.lastSuccess ?? outcome.finishedAt, outcome.finishedAt)
                state.streak = 0
            } else {
                state.lastFailure = max(state.lastFailure ?? outcome.startedAt, outcome.startedAt)
                state.streak += 1
            }
            health[outcome.endpointID] = state
            let minute = outcome.startedAt.microseconds / 60_000_000 * 60
            let counts = minutes[outcome.endpointID, default: [:]][minute] ?? (0, 0)
            minutes[outcome.endpointID, default: [:]][minute] = (counts.attempts + 1, counts.successes + (success ? 1 : 0))
        }
        guard !health.isEmpty else { return }
        let endpoints = health.keys.sorted()
        try run(
            """
            INSERT INTO keysat_webhooks_endpoint_health AS h (endpoint_id, last_success_at, last_failure_at, failure_streak)
            SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::integer[]) ORDER BY 1
            ON CONFLICT (endpoint_id) DO UPDATE SET
                last_success_at = greatest(h.last_success_at, excluded.last_success_at),
                last_failure_at = greatest(h.last_failure_at, excluded.last_failure_at),
                failure_streak = CASE WHEN excluded.last_success_at IS NOT NULL THEN excluded.failure_streak
                                      ELSE h.failure_streak + excluded.failure_streak END
            """,
            [
                PostgresArray.literal(endpoints), PostgresArray.literal(endpoints.map { health[$0]!.lastSuccess?.rfc3339 }),
                PostgresArray.literal(endpoints.map { health[$0]!.lastFailure?.rfc3339 }),
                PostgresArray.literal(endpoints.map { String(health[$0]!.streak) }),
            ])
        try writeMinutes(minutes, endpoints: endpoints)
    }

    /// The per-minute counts of attempts and successes, rows in (minute, endpoint) order.
    private func writeMinutes(_ minutes: [String: [Int64: (attempts: Int, successes: Int)]], endpoints: [String])
        throws
    {
        var rows: [(endpoint: String, minute: Int64, attempts: Int, successes: Int)] = []
        for endpoint in endpoints {
            for (minute, counts) in minutes[endpoint] ?? [:] {
                rows.append((endpoint, minute, counts.attempts, counts.successes))
            }
        }
        rows.sort { ($0.minute, $0.endpoint) < ($1.minute, $1.endpoint) }
        try run(
            """
            INSERT INTO keysat_webhooks_attempt_minutes AS m (minute, endpoint_id, attempts, successes)
            SELECT to_timestamp(u.minute), u.endpoint_id, u.attempts, u.successes
            FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::integer[]) AS u(minute, endpoint_id, attempts, successes)
            ORDER BY 1, 2
            ON CONFLICT (minute, endpoint_id) DO UPDATE SET
                attempts = m.attempts + excluded.attempts, successes = m.successes + excluded.successes
            """,
            [
                PostgresArray.literal(rows.map { String($0.minute) }), PostgresArray.literal(rows.map(\.endpoint)),
                PostgresArray.literal(rows.map { String($0.attempts) }),
                PostgresArray.literal(rows.map { String($0.successes) }),
            ])
    }
}
