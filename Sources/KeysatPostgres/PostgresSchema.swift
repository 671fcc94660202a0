import KeysatCore
import KeysatStore

/// The PostgreSQL schema: Keysat's tables and columns and this project's additions, translated
/// (docs/POSTGRES.md "Schema translation"), in versioned steps of their own.
///
/// Differences from SQLite's, each for a reason:
/// - times are `timestamptz`, compared with the database's clock only (`now()`,
///   `clock_timestamp()`), and read back as the RFC 3339 text the programs use
///   (`keysat_rfc3339`);
/// - `seq`, an identity column, is "the order rows were written" (SQLite's rowid): ordered
///   endpoints and due pages go by it;
/// - `claim_token` and `lease_expires_at` on deliveries: a run's claim, fenced at the outcome
///   write (`PostgresStore.record`);
/// - ids (and the columns that hold them) are `COLLATE "C"`: byte order, SQLite's, whatever
///   the database's locale. Under a language's collation a prefix of an id is not a range of
///   the primary key (en_US ignores `-` at first), and listings would break ties otherwise;
///   every column that holds an id has it, so that joins and indexes compare ids alike
///   (parameters, of the default collation, take the column's);
/// - `payload_json` is `text`, not `jsonb`: signatures cover the exact bytes enqueued;
/// - no per-endpoint totals kept by triggers (two hosts' commits would queue on, and could
///   deadlock over, the same few rows): counts are read from the indexes;
/// - no foreign key from deliveries to endpoints, as in SQLite (which does not enforce it):
///   a removed endpoint's deliveries are dead-lettered by the next run, not refused.
enum PostgresSchema {
    static let steps: [(version: Int, sql: String)] = [
        (
            1,
            """
            CREATE FUNCTION keysat_rfc3339(timestamptz) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
                AS $$ SELECT to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') $$;
            CREATE TABLE webhook_endpoints (
                id text COLLATE "C" PRIMARY KEY,
                url text NOT NULL,
                secret text NOT NULL,
                event_types text NOT NULL DEFAULT '["*"]',
                active integer NOT NULL DEFAULT 1,
                description text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                previous_secret text,
                previous_secret_expires_at timestamptz,
                disabled_reason text,
                disabled_at timestamptz,
                ordered integer NOT NULL DEFAULT 0
            );
            CREATE TABLE webhook_deliveries (
                seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
                id text COLLATE "C" PRIMARY KEY,
                endpoint_id text COLLATE "C" NOT NULL,
                event_type text NOT NULL,
                payload_json text NOT NULL,
                attempt_count integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
                next_attempt_at timestamptz,
                last_status_code integer,
                last_error text,
                delivered_at timestamptz,
                created_at timestamptz NOT NULL,
                keysat_webhooks_history bigint,
                claim_token uuid,
                lease_expires_at timestamptz,
                claimed_by text
            );
            -- Due pages: pending rows by (next_attempt_at, seq).
            CREATE INDEX idx_webhook_deliveries_pending
                ON webhook_deliveries (next_attempt_at, seq) WHERE delivered_at IS NULL;
            -- An endpoint's pending rows in written order: the head of an ordered endpoint
            -- (dead rows, which never hold a chain, are not in it).
            CREATE INDEX idx_keysat_webhooks_deliveries_endpoint_pending
                ON webhook_deliveries (endpoint_id, seq) WHERE delivered_at IS NULL AND next_attempt_at IS NOT NULL;
            -- No index on the claim's columns (claim_token, lease_expires_at, claimed_by): a claim
            -- then changes no indexed column and is a HOT update, adding no index entries. (A
            -- partial index of claimed rows cost each claim a scan of its dead entries: 1.1 ms a
            -- call after 10,000 deliveries, pg_stat_statements.)
            -- Each run's attempts in flight per endpoint, what a claim counts against the cap:
            -- added by its claims, taken off by its outcomes' commits, ignored once expired (a
            -- killed run's), deleted by the run at its end or by a claim once expired.
            CREATE TABLE keysat_webhooks_in_flight (
                endpoint_id text NOT NULL,
                run text NOT NULL,
                attempts integer NOT NULL,
                expires_at timestamptz NOT NULL,
                PRIMARY KEY (endpoint_id, run)
            );
            CREATE INDEX idx_keysat_webhooks_deliveries_created ON webhook_deliveries (created_at, id);
            CREATE INDEX idx_keysat_webhooks_deliveries_endpoint_created
                ON webhook_deliveries (endpoint_id, created_at, id);
            CREATE INDEX idx_keysat_webhooks_deliveries_stopped_created
                ON webhook_deliveries (created_at, id) WHERE delivered_at IS NULL AND next_attempt_at IS NULL;
            -- A queue table: rows are updated a few times and deleted by purge; vacuumed
            -- sooner than the default 20 % of the table so that dead versions do not pile up.
            ALTER TABLE webhook_deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
                autovacuum_analyze_scale_factor = 0.02, fillfactor = 90);
            CREATE TABLE webhook_delivery_attempts (
                id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                delivery_id text COLLATE "C" NOT NULL,
                attempt_number integer NOT NULL,
                started_at timestamptz NOT NULL,
                duration_ms integer NOT NULL,
                status_code integer,
                error text,
                response_body text,
                history_id bigint,
                claim_token uuid
            );
            -- An attempt is its claim: recorded once, however often its outcome is handed over.
            CREATE UNIQUE INDEX idx_keysat_webhooks_attempts_claim
                ON webhook_delivery_attempts (claim_token) WHERE claim_token IS NOT NULL;
            CREATE INDEX idx_keysat_webhooks_attempts_delivery
                ON webhook_delivery_attempts (delivery_id, attempt_number);
            CREATE INDEX idx_keysat_webhooks_attempts_started ON webhook_delivery_attempts (started_at);
            CREATE TABLE keysat_webhooks_idempotency (
                key text PRIMARY KEY,
                event_type text NOT NULL,
                deliveries_json text NOT NULL,
                created_at timestamptz NOT NULL,
                request_hash text
            );
            CREATE INDEX idx_keysat_webhooks_idempotency_created ON keysat_webhooks_idempotency (created_at);
            CREATE TABLE keysat_webhooks_state (
                name text PRIMARY KEY,
                value text NOT NULL
            );
            CREATE TABLE keysat_webhooks_event_types (
                name text PRIMARY KEY,
                declared_at timestamptz NOT NULL
            );
            CREATE TABLE keysat_webhooks_endpoint_health (
                endpoint_id text COLLATE "C" PRIMARY KEY,
                last_success_at timestamptz,
                last_failure_at timestamptz,
                failure_streak integer NOT NULL DEFAULT 0
            );
            CREATE TABLE keysat_webhooks_attempt_minutes (
                minute timestamptz NOT NULL,
                endpoint_id text COLLATE "C" NOT NULL,
                attempts integer NOT NULL,
                successes integer NOT NULL,
                PRIMARY KEY (minute, endpoint_id)
            );
            \(claimFunctionV1)
            """
        ),
        (2, claimFunction),
        (
            3,
            // Per-endpoint delivery settings (issue 22): retry schedule and jitter, custom
            // headers. NULL is the default, as on SQLite; values are checked where they are
            // read (`EndpointSettings.fromStored`).
            """
            ALTER TABLE webhook_endpoints ADD COLUMN retry_schedule text;
            ALTER TABLE webhook_endpoints ADD COLUMN retry_jitter integer;
            ALTER TABLE webhook_endpoints ADD COLUMN custom_headers text;
            ALTER TABLE webhook_endpoints ADD COLUMN client_cert text;
            ALTER TABLE webhook_endpoints ADD COLUMN client_key text;
            """
        ),
        (
            4,
            // Standard Webhooks asymmetric signatures (issue 22, v1a), as SQLite's step 15: the
            // whsk_ signing key, the previous one during a rotation's grace, and whether
            // X-Keysat-Signature is sent (NULL: yes).
            """
            ALTER TABLE webhook_endpoints ADD COLUMN signing_key text;
            ALTER TABLE webhook_endpoints ADD COLUMN previous_signing_key text;
            ALTER TABLE webhook_endpoints ADD COLUMN keysat_signature integer;
            """
        ),
        (
            5,
            // Recovery of auto-disabled endpoints (issue 22), as SQLite's step 16. probed_at is
            // also the probe's lease: a run takes an endpoint's probe by a conditional UPDATE
            // of it, so runs on several hosts probe it once per interval.
            """
            ALTER TABLE keysat_webhooks_endpoint_health ADD COLUMN disabled_failing_since timestamptz;
            ALTER TABLE keysat_webhooks_endpoint_health ADD COLUMN probed_at timestamptz;
            ALTER TABLE keysat_webhooks_endpoint_health ADD COLUMN streak_reset_at timestamptz;
            """
        ),
        (
            6,
            // Rate limits (issue 22), as SQLite's step 17: the endpoint's limit, the token
            // buckets every run on every host takes from, and the claim that takes from them
            // (new arguments: a new function, the old one dropped).
            """
            ALTER TABLE webhook_endpoints ADD COLUMN rate_limit text;
            CREATE TABLE keysat_webhooks_rate_buckets (
                endpoint_id text COLLATE "C" PRIMARY KEY,
                tokens double precision NOT NULL,
                as_of timestamptz NOT NULL
            );
            DROP FUNCTION keysat_claim(bigint[], text[], integer[], uuid[], text, integer, integer, boolean, bigint, text);
            \(rateClaimFunction)
            """
        ),
        (
            7,
            // Content filters (issue 23), as SQLite's step 18.
            """
            ALTER TABLE webhook_endpoints ADD COLUMN event_filter text;
            """
        ),
        (
            8,
            // Ordering keys (issue 23), as SQLite's step 19: the endpoint's order_by and
            // order_on_dead, each delivery's key and sequence number, the counters that give
            // the numbers (an upsert's row lock serialises two hosts' enqueues of one key), the
            // index that finds a key's head, and the claim of a keyed delivery (a function of
            // its own: keysat_claim, which rows without a key take, is unchanged).
            """
            ALTER TABLE webhook_endpoints ADD COLUMN order_by text;
            ALTER TABLE webhook_endpoints ADD COLUMN order_on_dead text;
            ALTER TABLE webhook_deliveries ADD COLUMN keysat_webhooks_ordering_key text COLLATE "C";
            ALTER TABLE webhook_deliveries ADD COLUMN keysat_webhooks_sequence bigint;
            CREATE TABLE keysat_webhooks_key_sequences (
                endpoint_id text COLLATE "C" NOT NULL,
                ordering_key text COLLATE "C" NOT NULL,
                last bigint NOT NULL,
                PRIMARY KEY (endpoint_id, ordering_key)
            );
            CREATE INDEX idx_keysat_webhooks_deliveries_key
                ON webhook_deliveries (endpoint_id, keysat_webhooks_ordering_key, keysat_webhooks_sequence)
                WHERE keysat_webhooks_ordering_key IS NOT NULL AND delivered_at IS NULL;
            \(keyedClaimFunction)
            """
        ),
    ]

    /// The claim of one delivery with an ordering key (schema step 8): under the endpoint's
    /// advisory lock (the one `keysat_claim` takes, so that claims of the endpoint take turns
    /// and each sees what the others committed), the row is claimed only if it is its key's
    /// head — no older delivery of the key pending (with `p_hold`, none unfinished: a dead one
    /// holds the key) — and no delivery of the key is under a live lease (another run's attempt
    /// in flight); then `keysat_claim` judges it as any row (cap, rate, due, unleased). A key
    /// held answers 'key': another run has it, or its head is not this row. The key and number
    /// are read from the row, not taken from the caller. A row whose number is missing
    /// (another program's) is claimed as a row without a key.
    static let keyedClaimFunction = """
        CREATE FUNCTION keysat_claim_keyed(p_seq bigint, p_id text, p_attempts integer, p_token uuid,
                                           p_endpoint text, p_cap integer, p_mine integer, p_lease_ms bigint,
                                           p_run text, p_rate double precision, p_burst double precision,
                                           p_hold boolean)
        RETURNS text LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            v_key text;
            v_sequence bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(\(claimLockClass), hashtext(p_endpoint));
            SELECT keysat_webhooks_ordering_key, keysat_webhooks_sequence INTO v_key, v_sequence
            FROM webhook_deliveries WHERE seq = p_seq AND id = p_id;
            IF NOT FOUND THEN
                RETURN 'taken';
            END IF;
            IF v_key IS NOT NULL AND v_sequence IS NOT NULL THEN
                IF EXISTS (
                    SELECT 1 FROM webhook_deliveries
                    WHERE endpoint_id = p_endpoint AND keysat_webhooks_ordering_key = v_key
                      AND delivered_at IS NULL AND keysat_webhooks_sequence < v_sequence
                      AND (p_hold OR next_attempt_at IS NOT NULL)
                ) OR EXISTS (
                    SELECT 1 FROM webhook_deliveries
                    WHERE endpoint_id = p_endpoint AND keysat_webhooks_ordering_key = v_key
                      AND delivered_at IS NULL AND seq <> p_seq AND lease_expires_at > clock_timestamp()
                ) THEN
                    RETURN 'key';
                END IF;
            END IF;
            RETURN (keysat_claim(ARRAY[p_seq], ARRAY[p_id], ARRAY[p_attempts], ARRAY[p_token], p_endpoint, p_cap,
                                 p_mine, false, p_lease_ms, p_run, p_rate, p_burst))[1];
        END
        $$;
        """

    /// The claim of schema 1, kept as it was applied: a step is never edited once released.
    /// It locked the endpoint's row (FOR UPDATE, in a subtransaction for the 200 ms wait) and
    /// each claimed row (FOR UPDATE SKIP LOCKED) before updating it: replaced in step 2.
    static let claimFunctionV1 = """
        CREATE FUNCTION keysat_claim(p_seqs bigint[], p_ids text[], p_attempts integer[], p_tokens uuid[],
                                     p_endpoint text, p_cap integer, p_mine integer, p_ordered boolean,
                                     p_lease_ms bigint, p_run text)
        RETURNS text[] LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            room integer;
            claimed bigint[];
            answers text[] := '{}';
        BEGIN
            PERFORM set_config('lock_timeout', '200ms', true);
            -- A claim need not survive a crash of the server: a claim lost so leaves the row
            -- without a token, so the run's outcome is not written (fenced) and the row is
            -- sent again: at least once still. Not waiting for the WAL's flush at each claim
            -- is what lets a run on PostgreSQL keep pace with one on SQLite.
            PERFORM set_config('synchronous_commit', 'off', true);
            BEGIN
                PERFORM 1 FROM webhook_endpoints WHERE id = p_endpoint FOR UPDATE;
                IF NOT FOUND THEN
                    -- Removed since the rows were read: nothing to send them to.
                    RETURN array_fill('taken'::text, ARRAY[cardinality(p_seqs)]);
                END IF;
            EXCEPTION WHEN lock_not_available THEN
                RETURN array_fill('busy'::text, ARRAY[cardinality(p_seqs)]);
            END;
            DELETE FROM keysat_webhooks_in_flight
            WHERE endpoint_id = p_endpoint AND run <> p_run AND expires_at <= clock_timestamp();
            room := p_cap - p_mine - (
                SELECT coalesce(sum(attempts), 0) FROM keysat_webhooks_in_flight
                WHERE endpoint_id = p_endpoint AND run <> p_run AND expires_at > clock_timestamp());
            IF p_ordered THEN
                room := least(room, 1);
                IF EXISTS (
                    SELECT 1 FROM webhook_deliveries
                    WHERE endpoint_id = p_endpoint AND seq < p_seqs[1] AND \(DeliveryRecord.State.pending.condition(""))
                ) THEN
                    room := 0;
                END IF;
            END IF;
            IF room <= 0 THEN
                RETURN array_fill('busy'::text, ARRAY[cardinality(p_seqs)]);
            END IF;
            WITH wanted AS (
                SELECT * FROM unnest(p_seqs, p_ids, p_attempts, p_tokens) WITH ORDINALITY AS w(seq, id, attempts, token, n)
            ), target AS MATERIALIZED (
                SELECT d.seq, w.token FROM webhook_deliveries AS d JOIN wanted AS w ON d.seq = w.seq
                WHERE d.id = w.id AND d.attempt_count = w.attempts
                  AND \(DeliveryRecord.State.due.condition("d", now: "now()"))
                  AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= clock_timestamp())
                ORDER BY w.n LIMIT room FOR UPDATE OF d SKIP LOCKED
            ), taken AS (
                UPDATE webhook_deliveries AS d
                SET claim_token = target.token, claimed_by = p_run,
                    lease_expires_at = clock_timestamp() + p_lease_ms * interval '1 millisecond'
                FROM target WHERE d.seq = target.seq
                RETURNING d.seq
            )
            SELECT coalesce(array_agg(seq), '{}') INTO claimed FROM taken;
            IF cardinality(claimed) > 0 THEN
                INSERT INTO keysat_webhooks_in_flight AS f (endpoint_id, run, attempts, expires_at)
                VALUES (p_endpoint, p_run, cardinality(claimed), clock_timestamp() + p_lease_ms * interval '1 millisecond')
                ON CONFLICT (endpoint_id, run) DO UPDATE
                    SET attempts = f.attempts + excluded.attempts, expires_at = excluded.expires_at;
            END IF;
            -- What was not claimed: 'busy' once the room was used up, else another run has it
            -- or it is no longer due.
            SELECT coalesce(array_agg(CASE WHEN w.seq = ANY(claimed) THEN 'claimed'
                                           WHEN cardinality(claimed) >= room THEN 'busy'
                                           ELSE 'taken' END ORDER BY w.n), '{}')
            INTO answers FROM unnest(p_seqs) WITH ORDINALITY AS w(seq, n);
            RETURN answers;
        END
        $$;
        """

    /// Takes deliveries of one endpoint for a run: an answer for each, in order: 'claimed',
    /// 'taken' or 'busy'. The rules that must hold across runs on several hosts, in one round
    /// trip (docs/POSTGRES.md "claims with leases").
    ///
    /// Claims of one endpoint take turns on a transaction-scoped advisory lock keyed by the
    /// endpoint, which only this function takes, for the few statements of the call: no row
    /// written, no subtransaction, and an operator's transaction on the endpoint's row does not
    /// hold them up. Every statement after it takes a new snapshot (a VOLATILE function under
    /// READ COMMITTED), so each sees the claims the others committed: the endpoint's attempts
    /// in flight — other runs' live claims and the `p_mine` this run counts itself — stay
    /// under the cap. An ordered endpoint also locks its row (`FOR UPDATE`, at most 200 ms,
    /// then 'busy'), which an enqueue for it holds `FOR SHARE` until it commits: at most one
    /// in flight, on its oldest pending delivery. Only the first `room` rows are candidates,
    /// updated where still due by the database's clock, unleased and at the attempt count read:
    /// no row lock before the update (with `FOR UPDATE SKIP LOCKED` the claim cost 1.4 times as
    /// much, pg_stat_statements, docs/BENCHMARKS.md); another run cannot be updating the same
    /// rows (same endpoint, same lock), and a row an outcome's commit holds is waited for, then
    /// re-checked (skipped once its lease is live or it is no longer due).
    static let claimFunction = """
        CREATE OR REPLACE FUNCTION keysat_claim(p_seqs bigint[], p_ids text[], p_attempts integer[], p_tokens uuid[],
                                                p_endpoint text, p_cap integer, p_mine integer, p_ordered boolean,
                                                p_lease_ms bigint, p_run text)
        RETURNS text[] LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            room integer;
            claimed bigint[];
        BEGIN
            -- A claim need not survive a crash of the server: a claim lost so leaves the row
            -- without a token, so the run's outcome is not written (fenced) and the row is
            -- sent again: at least once still.
            PERFORM set_config('synchronous_commit', 'off', true);
            PERFORM pg_advisory_xact_lock(\(claimLockClass), hashtext(p_endpoint));
            IF p_ordered THEN
                PERFORM set_config('lock_timeout', '200ms', true);
                BEGIN
                    PERFORM 1 FROM webhook_endpoints WHERE id = p_endpoint FOR UPDATE;
                    IF NOT FOUND THEN
                        RETURN array_fill('taken'::text, ARRAY[cardinality(p_seqs)]);
                    END IF;
                EXCEPTION WHEN lock_not_available THEN
                    RETURN array_fill('busy'::text, ARRAY[cardinality(p_seqs)]);
                END;
            ELSE
                PERFORM 1 FROM webhook_endpoints WHERE id = p_endpoint;
                IF NOT FOUND THEN
                    -- Removed since the rows were read: nothing to send them to.
                    RETURN array_fill('taken'::text, ARRAY[cardinality(p_seqs)]);
                END IF;
            END IF;
            DELETE FROM keysat_webhooks_in_flight
            WHERE endpoint_id = p_endpoint AND run <> p_run AND expires_at <= clock_timestamp();
            room := p_cap - p_mine - (
                SELECT coalesce(sum(attempts), 0) FROM keysat_webhooks_in_flight
                WHERE endpoint_id = p_endpoint AND run <> p_run AND expires_at > clock_timestamp());
            IF p_ordered THEN
                room := least(room, 1);
                IF EXISTS (
                    SELECT 1 FROM webhook_deliveries
                    WHERE endpoint_id = p_endpoint AND seq < p_seqs[1] AND \(DeliveryRecord.State.pending.condition(""))
                ) THEN
                    room := 0;
                END IF;
            END IF;
            IF room <= 0 THEN
                RETURN array_fill('busy'::text, ARRAY[cardinality(p_seqs)]);
            END IF;
            WITH taken AS (
                UPDATE webhook_deliveries AS d
                SET claim_token = w.token, claimed_by = p_run,
                    lease_expires_at = clock_timestamp() + p_lease_ms * interval '1 millisecond'
                FROM unnest(p_seqs[1:room], p_ids[1:room], p_attempts[1:room], p_tokens[1:room])
                    AS w(seq, id, attempts, token)
                WHERE d.seq = w.seq AND d.id = w.id AND d.attempt_count = w.attempts
                  AND \(DeliveryRecord.State.due.condition("d", now: "now()"))
                  AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= clock_timestamp())
                RETURNING d.seq
            )
            SELECT coalesce(array_agg(seq), '{}') INTO claimed FROM taken;
            IF cardinality(claimed) > 0 THEN
                INSERT INTO keysat_webhooks_in_flight AS f (endpoint_id, run, attempts, expires_at)
                VALUES (p_endpoint, p_run, cardinality(claimed), clock_timestamp() + p_lease_ms * interval '1 millisecond')
                ON CONFLICT (endpoint_id, run) DO UPDATE
                    SET attempts = f.attempts + excluded.attempts, expires_at = excluded.expires_at;
            END IF;
            -- What was not claimed: 'busy' past the room, else another run has it or it is no
            -- longer due.
            RETURN ARRAY(
                SELECT CASE WHEN w.seq = ANY(claimed) THEN 'claimed' WHEN w.n > room THEN 'busy' ELSE 'taken' END
                FROM unnest(p_seqs) WITH ORDINALITY AS w(seq, n) ORDER BY w.n);
        END
        $$;
        """

    /// The claim of step 6: step 2's, and, for an endpoint with a rate limit (`p_rate` tokens a
    /// second, at most `p_burst`; NULL: none), its token bucket (`keysat_webhooks_rate_buckets`,
    /// the bucket `RateBucket` describes), in the same call under the same advisory lock, so
    /// that runs on any number of hosts take from one bucket, by the database's clock
    /// (`clock_timestamp()`), in one round trip. The room is also bounded by the whole tokens
    /// in the bucket; the bucket is written only when rows were claimed (a token is taken for
    /// each, before its request starts: a run killed afterwards used them). Rows refused for
    /// want of tokens are answered 'rate:<ms>': when the next token comes. Stored tokens that
    /// are not a finite number (another program's) count as an empty bucket; a time ahead of
    /// the clock as now.
    static let rateClaimFunction = """
        CREATE FUNCTION keysat_claim(p_seqs bigint[], p_ids text[], p_attempts integer[], p_tokens uuid[],
                                     p_endpoint text, p_cap integer, p_mine integer, p_ordered boolean,
                                     p_lease_ms bigint, p_run text, p_rate double precision,
                                     p_burst double precision)
        RETURNS text[] LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            room integer;
            claimed uuid[];
            bucket_now timestamptz;
            bucket double precision;
            rate_bound boolean := false;
            rate_answer text := 'busy';
            stored_as_of timestamptz;
            saved_lock_timeout text := current_setting('lock_timeout');
        BEGIN
            PERFORM set_config('synchronous_commit', 'off', true);
            PERFORM pg_advisory_xact_lock(\(claimLockClass), hashtext(p_endpoint));
            IF p_ordered THEN
                PERFORM set_config('lock_timeout', '200ms', true);
                BEGIN
                    PERFORM 1 FROM webhook_endpoints WHERE id = p_endpoint FOR UPDATE;
                    IF NOT FOUND THEN
                        RETURN array_fill('taken'::text, ARRAY[cardinality(p_seqs)]);
                    END IF;
                EXCEPTION WHEN lock_not_available THEN
                    RETURN array_fill('busy'::text, ARRAY[cardinality(p_seqs)]);
                END;
                -- Only the endpoint row's wait is short: the statements after it wait as the
                -- session does, rather than failing the run on a row another transaction holds.
                PERFORM set_config('lock_timeout', saved_lock_timeout, true);
            ELSE
                PERFORM 1 FROM webhook_endpoints WHERE id = p_endpoint;
                IF NOT FOUND THEN
                    RETURN array_fill('taken'::text, ARRAY[cardinality(p_seqs)]);
                END IF;
            END IF;
            -- Killed runs' counts, expired: deleted where no other transaction holds them (a
            -- stalled run's recorder may be ending its own; waiting for it could deadlock).
            DELETE FROM keysat_webhooks_in_flight AS f USING (
                SELECT endpoint_id, run FROM keysat_webhooks_in_flight
                WHERE endpoint_id = p_endpoint AND run <> p_run AND expires_at <= clock_timestamp()
                FOR UPDATE SKIP LOCKED) AS x
            WHERE f.endpoint_id = x.endpoint_id AND f.run = x.run;
            room := p_cap - p_mine - (
                SELECT coalesce(sum(attempts), 0) FROM keysat_webhooks_in_flight
                WHERE endpoint_id = p_endpoint AND run <> p_run AND expires_at > clock_timestamp());
            IF p_ordered THEN
                room := least(room, 1);
                IF EXISTS (
                    SELECT 1 FROM webhook_deliveries
                    WHERE endpoint_id = p_endpoint AND seq < p_seqs[1] AND \(DeliveryRecord.State.pending.condition(""))
                ) THEN
                    room := 0;
                END IF;
            END IF;
            IF room <= 0 THEN
                RETURN array_fill('busy'::text, ARRAY[cardinality(p_seqs)]);
            END IF;
            IF p_rate > 0 THEN
                bucket_now := clock_timestamp();
                SELECT CASE WHEN b.tokens IN ('NaN', 'Infinity', '-Infinity') OR NOT isfinite(b.as_of) THEN 0
                            ELSE least(p_burst, greatest(0, b.tokens)
                                 + p_rate * greatest(0, extract(epoch FROM bucket_now - b.as_of)::double precision)) END,
                       b.as_of
                INTO bucket, stored_as_of FROM keysat_webhooks_rate_buckets AS b WHERE b.endpoint_id = p_endpoint;
                IF NOT FOUND THEN
                    bucket := p_burst;
                ELSIF NOT isfinite(stored_as_of) OR stored_as_of > bucket_now THEN
                    -- Ahead of the clock (it stepped back), or not a time another program
                    -- wrote: counted as now, and written as now, so that it refills from here.
                    UPDATE keysat_webhooks_rate_buckets SET tokens = bucket, as_of = bucket_now
                    WHERE endpoint_id = p_endpoint;
                END IF;
                IF floor(bucket + 1e-9) < room THEN
                    room := greatest(0, floor(bucket + 1e-9)::integer);
                    rate_bound := true;
                END IF;
                IF room <= 0 THEN
                    RETURN array_fill('rate:' || ceil(greatest(0, 1 - bucket) / p_rate * 1000)::bigint,
                                      ARRAY[cardinality(p_seqs)]);
                END IF;
            END IF;
            WITH taken AS (
                UPDATE webhook_deliveries AS d
                SET claim_token = w.token, claimed_by = p_run,
                    lease_expires_at = clock_timestamp() + p_lease_ms * interval '1 millisecond'
                FROM unnest(p_seqs[1:room], p_ids[1:room], p_attempts[1:room], p_tokens[1:room])
                    AS w(seq, id, attempts, token)
                WHERE d.seq = w.seq AND d.id = w.id AND d.attempt_count = w.attempts
                  AND \(DeliveryRecord.State.due.condition("d", now: "now()"))
                  AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= clock_timestamp())
                RETURNING d.claim_token
            )
            -- By token, not seq: a seq given twice is updated once, with one of its tokens.
            SELECT coalesce(array_agg(claim_token), '{}') INTO claimed FROM taken;
            IF cardinality(claimed) > 0 THEN
                INSERT INTO keysat_webhooks_in_flight AS f (endpoint_id, run, attempts, expires_at)
                VALUES (p_endpoint, p_run, cardinality(claimed), clock_timestamp() + p_lease_ms * interval '1 millisecond')
                ON CONFLICT (endpoint_id, run) DO UPDATE
                    SET attempts = f.attempts + excluded.attempts, expires_at = excluded.expires_at;
                IF p_rate > 0 THEN
                    bucket := bucket - cardinality(claimed);
                    INSERT INTO keysat_webhooks_rate_buckets AS b (endpoint_id, tokens, as_of)
                    VALUES (p_endpoint, bucket, bucket_now)
                    ON CONFLICT (endpoint_id) DO UPDATE SET tokens = excluded.tokens, as_of = excluded.as_of;
                END IF;
            END IF;
            IF rate_bound THEN
                rate_answer := 'rate:' || ceil(greatest(0, 1 - bucket) / p_rate * 1000)::bigint;
            END IF;
            -- What was not claimed: past the room, 'busy' (the cap) or 'rate:…' (the tokens);
            -- else another run has it or it is no longer due.
            RETURN ARRAY(
                SELECT CASE WHEN w.token = ANY(claimed) THEN 'claimed' WHEN w.n > room THEN rate_answer ELSE 'taken' END
                FROM unnest(p_tokens) WITH ORDINALITY AS w(token, n) ORDER BY w.n);
        END
        $$;
        """

    /// The first key of the claims' advisory locks (the second is the endpoint's hash): a
    /// class of its own, apart from the schema's one-key lock (`lockKey`).
    static let claimLockClass = "1263748691"

    static var latest: Int { steps.last!.version }

    /// The key of the transaction-scoped advisory lock under which the schema is read and
    /// changed: several hosts' `init` (or first runs) at once apply each step once.
    static let lockKey = "7244830619020522016"  // a fixed bigint: "keysat-webhooks schema"

    /// The version the database has reached: 0 when this project's tables are not there.
    static func currentVersion(_ connection: PostgresConnection) throws -> Int {
        let exists = try connection.execute("SELECT to_regclass('keysat_webhooks_schema') IS NOT NULL")
        guard exists.rows.first?.first == "t" else { return 0 }
        let result = try connection.execute("SELECT coalesce(max(version), 0) FROM keysat_webhooks_schema")
        return Int(result.rows.first?.first.flatMap { $0 } ?? "0") ?? 0
    }

    /// Applies the missing steps in one transaction, under the advisory lock, re-reading the
    /// version once the lock is held; returns the steps applied.
    static func migrate(_ connection: PostgresConnection, location: String) throws -> [Int] {
        try connection.transaction {
            // Taking the lock waits for another host's migration; lock_timeout (5 s) bounds it.
            _ = try connection.execute("SELECT pg_advisory_xact_lock(\(lockKey))")
            _ = try connection.execute(
                """
                CREATE TABLE IF NOT EXISTS keysat_webhooks_schema (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let current = try currentVersion(connection)
            if current > latest { throw newer(current, location: location) }
            try requireUTF8(connection, location: location)
            var applied: [Int] = []
            for step in steps where step.version > current {
                try connection.executeScript(step.sql)
                _ = try connection.execute(
                    "INSERT INTO keysat_webhooks_schema (version) VALUES ($1)", [String(step.version)])
                applied.append(step.version)
            }
            return applied
        }
    }

    /// Refuses a database whose encoding cannot hold every text a receiver may answer with: in
    /// LATIN1, one emoji in a response body would fail the commit of a whole batch of outcomes,
    /// on every run (the receiver answers the same each time).
    static func requireUTF8(_ connection: PostgresConnection, location: String) throws {
        let encoding = try connection.execute(
            "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"
        ).rows.first?.first ?? nil
        guard let encoding, encoding != "UTF8" else { return }
        throw KeysatError(
            .configuration,
            "database \(location) is encoded in \(encoding), which cannot hold every text a receiver may send: make it with UTF8 (createdb -E UTF8 -T template0 NAME), then run 'keysat-webhooks init'")
    }

    static func newer(_ version: Int, location: String) -> KeysatError {
        KeysatError(
            .temporary,
            "database \(location) was written by a newer keysat-webhooks (schema \(version), this one knows \(latest)): upgrade keysat-webhooks")
    }

    static func older(_ version: Int, location: String) -> KeysatError {
        KeysatError(
            .configuration,
            version == 0
                ? "database \(location) has no keysat-webhooks tables: run 'keysat-webhooks init --db …' first"
                : "database \(location) has PostgreSQL schema version \(version), older than this version's \(latest): run 'keysat-webhooks init'")
    }
}

extension PostgresSchema {
    /// This project's tables, which `schemaProblem` checks are all there.
    static let tables = [
        "webhook_endpoints", "webhook_deliveries", "webhook_delivery_attempts", "keysat_webhooks_idempotency",
        "keysat_webhooks_state", "keysat_webhooks_event_types", "keysat_webhooks_endpoint_health",
        "keysat_webhooks_attempt_minutes", "keysat_webhooks_in_flight", "keysat_webhooks_schema",
        "keysat_webhooks_key_sequences",
    ]
}
