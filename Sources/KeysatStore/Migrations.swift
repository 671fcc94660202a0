import KeysatCore

/// The schema, as numbered steps applied once each.
///
/// Step 1 creates the tables exactly as the Keysat licensing service's migration
/// `0003_expanded_features.sql` does (same names, columns, types, defaults), with
/// `IF NOT EXISTS` so an existing Keysat database is adopted as it is. Every later step is
/// additive (new tables, or nullable/defaulted columns) so Keysat's own code keeps working
/// on the same file. Applied versions are kept in `keysat_webhooks_schema`.
enum Migrations {
    static let steps: [(version: Int, sql: String)] = [
        (
            1,
            """
            CREATE TABLE IF NOT EXISTS webhook_endpoints (
                id TEXT PRIMARY KEY,
                url TEXT NOT NULL,
                secret TEXT NOT NULL,
                event_types TEXT NOT NULL DEFAULT '["*"]',
                active INTEGER NOT NULL DEFAULT 1,
                description TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS idx_webhook_endpoints_active ON webhook_endpoints(active);
            CREATE TABLE IF NOT EXISTS webhook_deliveries (
                id TEXT PRIMARY KEY,
                endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
                event_type TEXT NOT NULL,
                payload_json TEXT NOT NULL,
                attempt_count INTEGER NOT NULL DEFAULT 0,
                next_attempt_at TEXT,
                last_status_code INTEGER,
                last_error TEXT,
                delivered_at TEXT,
                created_at TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_endpoint
                ON webhook_deliveries(endpoint_id);
            CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_pending
                ON webhook_deliveries(next_attempt_at) WHERE delivered_at IS NULL;
            """
        ),
        (
            2,
            // Idempotency keys of keysat-enqueue, kept at least 7 days. A table of its own
            // rather than a column, so that Keysat's inserts need not know about it.
            """
            CREATE TABLE IF NOT EXISTS keysat_webhooks_idempotency (
                key TEXT PRIMARY KEY,
                event_type TEXT NOT NULL,
                deliveries_json TEXT NOT NULL,
                created_at TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_idempotency_created
                ON keysat_webhooks_idempotency(created_at);
            """
        ),
        (
            3,
            // One row per attempt made by keysat-deliver. No foreign key: Keysat's own code
            // deletes deliveries without knowing of this table.
            """
            CREATE TABLE IF NOT EXISTS webhook_delivery_attempts (
                id INTEGER PRIMARY KEY,
                delivery_id TEXT NOT NULL,
                attempt_number INTEGER NOT NULL,
                started_at TEXT NOT NULL,
                duration_ms INTEGER NOT NULL,
                status_code INTEGER,
                error TEXT,
                response_body TEXT
            );
            CREATE INDEX IF NOT EXISTS idx_webhook_delivery_attempts_delivery
                ON webhook_delivery_attempts(delivery_id, attempt_number);
            """
        ),
        (
            4,
            // Secret rotation: the previous secret still signs until it expires, then is erased.
            """
            ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT;
            ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_expires_at TEXT;
            """
        ),
        (
            5,
            // Endpoints keysat-deliver disabled by itself (all deliveries failing, or 410 Gone).
            """
            ALTER TABLE webhook_endpoints ADD COLUMN disabled_reason TEXT;
            ALTER TABLE webhook_endpoints ADD COLUMN disabled_at TEXT;
            """
        ),
        (
            6,
            // Ordered endpoints get their deliveries one at a time, oldest first.
            """
            ALTER TABLE webhook_endpoints ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_deliveries_order
                ON webhook_deliveries(endpoint_id, created_at, id) WHERE delivered_at IS NULL;
            """
        ),
        (
            7,
            """
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_deliveries_due
                ON webhook_deliveries(next_attempt_at, id) WHERE delivered_at IS NULL;
            """
        ),
        (
            8,
            // Every index on webhook_deliveries costs each recorded outcome its upkeep. Due rows
            // are paged by (next_attempt_at, rowid), which Keysat's own idx_webhook_deliveries_pending
            // answers (an index holds the rowid), and ordered endpoints find their oldest pending
            // delivery through idx_webhook_deliveries_endpoint: the two indexes of steps 6 and 7 go.
            """
            DROP INDEX IF EXISTS idx_keysat_webhooks_deliveries_due;
            DROP INDEX IF EXISTS idx_keysat_webhooks_deliveries_order;
            """
        ),
        (
            9,
            // What a run must tell the next one, e.g. that it could not write the metrics file
            // (the next metrics say so: the failed run had nowhere else to say it).
            """
            CREATE TABLE IF NOT EXISTS keysat_webhooks_state (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ) WITHOUT ROWID;
            """
        ),
        (
            10,
            // Event types the operator declares beside Keysat's own (`event-types add`): an
            // enqueue of a type neither here, nor Keysat's, nor subscribed to by name is warned about.
            """
            CREATE TABLE IF NOT EXISTS keysat_webhooks_event_types (
                name TEXT PRIMARY KEY,
                declared_at TEXT NOT NULL
            ) WITHOUT ROWID;
            """
        ),
        (
            11,
            // What `stats`, `deliveries list`, `purge` and the metrics file answer from without
            // scanning the deliveries (issue 14). Indexes written once, at insert (created_at and
            // endpoint_id never change), or only when a delivery stops (dead or held back); the
            // rows and delivered rows per endpoint kept by triggers, so that every writer keeps
            // them (Keysat's daemon, the sqlite3 shell); the attempt-history summaries kept by
            // `record`, in the transaction that writes the attempts, a few rows per commit.
            """
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_deliveries_created
                ON webhook_deliveries(created_at, id);
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_deliveries_endpoint_created
                ON webhook_deliveries(endpoint_id, created_at, id);
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_deliveries_stopped
                ON webhook_deliveries(endpoint_id, attempt_count)
                WHERE delivered_at IS NULL AND next_attempt_at IS NULL;
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_deliveries_stopped_created
                ON webhook_deliveries(created_at, id)
                WHERE delivered_at IS NULL AND next_attempt_at IS NULL;
            CREATE TABLE IF NOT EXISTS keysat_webhooks_totals (
                endpoint_id TEXT PRIMARY KEY,
                deliveries INTEGER NOT NULL,
                delivered INTEGER NOT NULL
            ) WITHOUT ROWID;
            INSERT INTO keysat_webhooks_totals (endpoint_id, deliveries, delivered)
                SELECT coalesce(endpoint_id, ''), count(*), count(delivered_at) FROM webhook_deliveries GROUP BY 1;
            CREATE TRIGGER IF NOT EXISTS keysat_webhooks_totals_insert AFTER INSERT ON webhook_deliveries
            BEGIN
                \(totalsAddNew)
            END;
            CREATE TRIGGER IF NOT EXISTS keysat_webhooks_totals_delete AFTER DELETE ON webhook_deliveries
            BEGIN
                \(totalsTakeOld)
            END;
            CREATE TRIGGER IF NOT EXISTS keysat_webhooks_totals_update
                AFTER UPDATE OF endpoint_id, delivered_at ON webhook_deliveries
                WHEN OLD.endpoint_id IS NOT NEW.endpoint_id
                  OR (OLD.delivered_at IS NULL) <> (NEW.delivered_at IS NULL)
            BEGIN
                \(totalsTakeOld)
                \(totalsAddNew)
            END;
            CREATE TABLE IF NOT EXISTS keysat_webhooks_endpoint_health (
                endpoint_id TEXT PRIMARY KEY,
                last_success_at TEXT,
                last_failure_at TEXT,
                failure_streak INTEGER NOT NULL DEFAULT 0
            ) WITHOUT ROWID;
            INSERT INTO keysat_webhooks_endpoint_health (endpoint_id, last_success_at, last_failure_at, failure_streak)
                SELECT d.endpoint_id,
                       max(d.delivered_at),
                       max(CASE WHEN coalesce(a.status_code, 0) NOT BETWEEN 200 AND 299 THEN a.started_at END),
                       0
                FROM webhook_deliveries AS d LEFT JOIN webhook_delivery_attempts AS a ON a.delivery_id = d.id
                WHERE d.endpoint_id IS NOT NULL
                GROUP BY d.endpoint_id;
            UPDATE keysat_webhooks_endpoint_health AS h SET failure_streak = (
                SELECT count(*) FROM webhook_delivery_attempts AS a JOIN webhook_deliveries AS d ON d.id = a.delivery_id
                WHERE d.endpoint_id = h.endpoint_id AND coalesce(a.status_code, 0) NOT BETWEEN 200 AND 299
                  AND a.started_at > coalesce((SELECT max(a2.started_at) FROM webhook_delivery_attempts AS a2
                      JOIN webhook_deliveries AS d2 ON d2.id = a2.delivery_id
                      WHERE d2.endpoint_id = h.endpoint_id AND a2.status_code BETWEEN 200 AND 299), ''));
            CREATE TABLE IF NOT EXISTS keysat_webhooks_attempt_minutes (
                minute TEXT NOT NULL,
                endpoint_id TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                successes INTEGER NOT NULL,
                PRIMARY KEY (minute, endpoint_id)
            ) WITHOUT ROWID;
            INSERT INTO keysat_webhooks_attempt_minutes (endpoint_id, minute, attempts, successes)
                SELECT d.endpoint_id, substr(a.started_at, 1, 16), count(*),
                       count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299)
                FROM webhook_delivery_attempts AS a JOIN webhook_deliveries AS d ON d.id = a.delivery_id
                WHERE a.started_at >= strftime('%Y-%m-%dT%H:%M', 'now', '-1 day')
                GROUP BY 1, 2;
            """
        ),
        (
            12,
            // The attempt history, appended in time order (issue 14). Keyed by delivery_id, a
            // random id, each new attempt went to a random leaf of an index larger than the page
            // cache: at a million rows the commit that records outcomes read and wrote a page per
            // attempt. A delivery's attempts now share a history number, the id of its first
            // attempt (ids grow with time), kept on the delivery in keysat_webhooks_history, so
            // new attempts land at the end of their index. Rows without one (written before this
            // step, by an older keysat-deliver or by another program) stay found by delivery_id
            // through a partial index that new rows never enter; lookups match delivery_id in
            // both cases, so a number shared or written wrong by someone else mixes in no other
            // delivery's attempts. The delivered count per endpoint was kept by one trigger of
            // two statements at every delivery; a delivery that stays on its endpoint (all but a
            // hand-edited one) now takes one UPDATE (1.3 µs less per outcome in a trial).
            """
            ALTER TABLE webhook_deliveries ADD COLUMN keysat_webhooks_history INTEGER;
            ALTER TABLE webhook_delivery_attempts ADD COLUMN history_id INTEGER;
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_attempts_history
                ON webhook_delivery_attempts(history_id, attempt_number) WHERE history_id IS NOT NULL;
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_attempts_unnumbered
                ON webhook_delivery_attempts(delivery_id, attempt_number) WHERE history_id IS NULL;
            DROP INDEX IF EXISTS idx_webhook_delivery_attempts_delivery;
            DROP TRIGGER IF EXISTS keysat_webhooks_totals_update;
            CREATE TRIGGER IF NOT EXISTS keysat_webhooks_totals_moved
                AFTER UPDATE OF endpoint_id ON webhook_deliveries
                WHEN OLD.endpoint_id IS NOT NEW.endpoint_id
            BEGIN
                \(totalsTakeOld)
                \(totalsAddNew)
            END;
            CREATE TRIGGER IF NOT EXISTS keysat_webhooks_totals_delivered
                AFTER UPDATE OF delivered_at ON webhook_deliveries
                WHEN OLD.endpoint_id IS NEW.endpoint_id
                  AND (OLD.delivered_at IS NULL) <> (NEW.delivered_at IS NULL)
            BEGIN
                UPDATE keysat_webhooks_totals
                    SET delivered = delivered + (NEW.delivered_at IS NOT NULL) - (OLD.delivered_at IS NOT NULL)
                    WHERE endpoint_id = coalesce(NEW.endpoint_id, '');
            END;
            """
        ),
        (
            13,
            // What an idempotency key was used for: SHA-256 of the event type, a NUL and the
            // data bytes (`EnqueueFingerprint`), so that the same key with another event or other
            // data is refused rather than answered with the first event's ids. Rows written
            // before this step keep NULL and are compared by event type only.
            """
            ALTER TABLE keysat_webhooks_idempotency ADD COLUMN request_hash TEXT;
            """
        ),
        (
            14,
            // Per-endpoint delivery settings (issue 22): retry schedule and jitter, custom
            // headers, a client certificate's files. NULL is Keysat's behaviour (its ladder, no jitter, no header), what
            // Keysat's own rows and inserts hold. Values are checked where they are read
            // (`EndpointSettings.fromStored`), not by a CHECK that would refuse Keysat's writes.
            """
            ALTER TABLE webhook_endpoints ADD COLUMN retry_schedule TEXT;
            ALTER TABLE webhook_endpoints ADD COLUMN retry_jitter INTEGER;
            ALTER TABLE webhook_endpoints ADD COLUMN custom_headers TEXT;
            ALTER TABLE webhook_endpoints ADD COLUMN client_cert TEXT;
            ALTER TABLE webhook_endpoints ADD COLUMN client_key TEXT;
            """
        ),
        (
            15,
            // Standard Webhooks asymmetric signatures (issue 22, v1a): the endpoint's Ed25519
            // signing key as whsk_ text, and the one before the last rotation, which signs until
            // previous_secret_expires_at as the previous secret does. keysat_signature 0 leaves
            // X-Keysat-Signature out. NULL in all three, Keysat's own rows: HMAC only, as before.
            """
            ALTER TABLE webhook_endpoints ADD COLUMN signing_key TEXT;
            ALTER TABLE webhook_endpoints ADD COLUMN previous_signing_key TEXT;
            ALTER TABLE webhook_endpoints ADD COLUMN keysat_signature INTEGER;
            """
        ),
        (
            16,
            // Recovery of auto-disabled endpoints (issue 22), in the health table, which only
            // this project writes: disabled_failing_since, the start of the failing streak for
            // which a run disabled the endpoint (NULL: not disabled by a run for failing, so
            // never probed); probed_at, when a run last probed it (a run's `--probe-every`
            // compares); streak_reset_at, when an operator enabled it, before which no attempt
            // counts in its failing streak.
            """
            ALTER TABLE keysat_webhooks_endpoint_health ADD COLUMN disabled_failing_since TEXT;
            ALTER TABLE keysat_webhooks_endpoint_health ADD COLUMN probed_at TEXT;
            ALTER TABLE keysat_webhooks_endpoint_health ADD COLUMN streak_reset_at TEXT;
            """
        ),
        (
            17,
            // Rate limits (issue 22): the endpoint's limit as `N/s` or `N/min` text (NULL: none,
            // Keysat's rows), and each limited endpoint's token bucket, shared by runs so that a
            // run cannot start with a full bucket its predecessor just emptied (`RateBucket`):
            // tokens left as of a moment. A row is written by the run that takes tokens, before
            // their requests start; none for an endpoint without a limit.
            """
            ALTER TABLE webhook_endpoints ADD COLUMN rate_limit TEXT;
            CREATE TABLE IF NOT EXISTS keysat_webhooks_rate_buckets (
                endpoint_id TEXT PRIMARY KEY,
                tokens REAL NOT NULL,
                as_of TEXT NOT NULL
            );
            """
        ),
        (
            18,
            // Content filters (issue 23): the endpoint's filter as compact JSON text
            // (`EventFilter`; NULL: every event it subscribes to, Keysat's rows). Read by
            // keysat-enqueue in the query that finds the subscribers, so that no filter costs
            // no statement; text another program wrote that is not a filter holds the endpoint.
            """
            ALTER TABLE webhook_endpoints ADD COLUMN event_filter TEXT;
            """
        ),
        (
            19,
            // Ordering keys (issue 23). On endpoints: order_by, the field of the event's data
            // whose value is a delivery's key, and order_on_dead ('hold'; NULL: move on). On
            // deliveries (Keysat's table, so prefixed as keysat_webhooks_history is): the key
            // and its sequence number per (endpoint, key), fixed at enqueue; NULL in Keysat's
            // rows and in rows without a key, which never enter the new index. The numbers come
            // from keysat_webhooks_key_sequences, the last one given per (endpoint, key): not
            // max()+1 over the deliveries, which a purge would send back to numbers already
            // given. The index finds a key's head (its oldest unfinished delivery) in one seek.
            """
            ALTER TABLE webhook_endpoints ADD COLUMN order_by TEXT;
            ALTER TABLE webhook_endpoints ADD COLUMN order_on_dead TEXT;
            ALTER TABLE webhook_deliveries ADD COLUMN keysat_webhooks_ordering_key TEXT;
            ALTER TABLE webhook_deliveries ADD COLUMN keysat_webhooks_sequence INTEGER;
            CREATE TABLE IF NOT EXISTS keysat_webhooks_key_sequences (
                endpoint_id TEXT NOT NULL,
                ordering_key TEXT NOT NULL,
                last INTEGER NOT NULL,
                PRIMARY KEY (endpoint_id, ordering_key)
            );
            CREATE INDEX IF NOT EXISTS idx_keysat_webhooks_deliveries_key
                ON webhook_deliveries (endpoint_id, keysat_webhooks_ordering_key, keysat_webhooks_sequence)
                WHERE keysat_webhooks_ordering_key IS NOT NULL AND delivered_at IS NULL;
            """
        ),
    ]

    /// What the totals triggers do: take the old row out of its endpoint's counts, add the new
    /// row to its endpoint's (steps 11 and 12).
    static let totalsTakeOld = """
        UPDATE keysat_webhooks_totals
                SET deliveries = deliveries - 1, delivered = delivered - (OLD.delivered_at IS NOT NULL)
                WHERE endpoint_id = coalesce(OLD.endpoint_id, '');
        """
    static let totalsAddNew = """
        INSERT INTO keysat_webhooks_totals (endpoint_id, deliveries, delivered)
                VALUES (coalesce(NEW.endpoint_id, ''), 1, NEW.delivered_at IS NOT NULL)
                ON CONFLICT (endpoint_id) DO UPDATE SET
                    deliveries = deliveries + 1, delivered = delivered + excluded.delivered;
        """

    static var latest: Int { steps.last!.version }

    /// Brings the schema up to date. Cheap when it already is (one query); otherwise every
    /// missing step runs in one `BEGIN IMMEDIATE` transaction, and the applied versions are
    /// read again inside it, so two processes starting at once apply each step once.
    ///
    /// - Returns: whether Keysat's own delivery table was there before any step of ours ran.
    /// - Throws: `KeysatError` `temporary` (75) when a newer keysat-webhooks wrote the schema
    ///   (this one must not write what it does not know); `data` (65) naming what is wrong when
    ///   a step cannot apply because the schema was damaged (`SchemaCheck`).
    @discardableResult
    static func migrate(_ db: Database, now: Timestamp) throws -> Bool {
        if let current = try? currentVersion(db) {
            if current == latest { return false }
            if current > latest { throw newer(db, current) }
        }
        do {
            return try db.writeTransaction { try applyMissingSteps(db, now: now) }
        } catch let error as KeysatError where error.kind == .internal {
            // A step failed (`duplicate column name`, `no such table`): the schema is not what
            // its recorded steps say. Read after the rollback, so the answer is about the file.
            if let problem = try? SchemaCheck.problem(in: db) { throw KeysatError(.data, problem) }
            throw error
        }
    }

    private static func applyMissingSteps(_ db: Database, now: Timestamp) throws -> Bool {
        let tables = try db.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('webhook_deliveries', 'keysat_webhooks_schema')"
        ).rows { $0.string(0) }
        let adopting = tables == ["webhook_deliveries"]
        try createSchemaTable(db)
        let current = try currentVersion(db)
        if current > latest { throw newer(db, current) }
        let record = try db.prepare(
            "INSERT INTO keysat_webhooks_schema (version, applied_at) VALUES (?, ?)")
        for step in steps where step.version > current {
            try db.execute(step.sql)
            try record.run([.integer(Int64(step.version)), .text(now.rfc3339)])
        }
        return adopting
    }

    private static func createSchemaTable(_ db: Database) throws {
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS keysat_webhooks_schema (
                version INTEGER PRIMARY KEY,
                applied_at TEXT NOT NULL
            )
            """)
    }

    /// The refusal of a schema this version does not know: writing to it could break what the
    /// newer version relies on. 75, "try again later": a caller that retries (Keysat enqueuing)
    /// succeeds once this host runs the newer keysat-webhooks too.
    static func newer(_ db: Database, _ version: Int) -> KeysatError {
        KeysatError(
            .temporary,
            "database \(db.path) was written by a newer keysat-webhooks (schema \(version), this one knows \(latest)): upgrade keysat-webhooks"
        )
    }

    /// Records the steps whose changes are all there but whose rows are missing
    /// (`SchemaCheck.appliedButUnrecorded`), remakes the missing indexes of recorded steps (an
    /// index holds nothing its table does not), then applies the rest: `init --repair`. Remakes
    /// no table, column or trigger: what they held cannot be known.
    ///
    /// - Returns: the steps recorded.
    static func repair(_ db: Database, now: Timestamp) throws -> [Int] {
        if let current = try? currentVersion(db), current > latest { throw newer(db, current) }
        let repaired = try db.writeTransaction {
            let steps = try SchemaCheck.appliedButUnrecorded(in: db)
            try createSchemaTable(db)
            let record = try db.prepare(
                "INSERT INTO keysat_webhooks_schema (version, applied_at) VALUES (?, ?)")
            for version in steps { try record.run([.integer(Int64(version)), .text(now.rfc3339)]) }
            for index in try SchemaCheck.missingIndexes(in: db) { try db.execute(index) }
            return steps
        }
        try migrate(db, now: now)
        return repaired
    }

    static func currentVersion(_ db: Database) throws -> Int {
        try db.prepare("SELECT coalesce(max(version), 0) FROM keysat_webhooks_schema")
            .first { $0.integer(0) ?? 0 } ?? 0
    }
}
