import Foundation
import KeysatCore
import KeysatStore
import KeysatTestSupport
import XCTest

@testable import KeysatPostgres

/// The rules that keep several runs (on one host or several) from sending one delivery twice
/// or out of order, against a real server: claims, leases, fenced outcomes, the per-endpoint
/// cap and ordered endpoints across runs. Each "run" is a `PostgresStore` of its own (its own
/// session), as keysat-deliver processes on different hosts would have.
final class PostgresLeaseTests: XCTestCase {
    nonisolated(unsafe) private static var slot = ClusterSlot.notStarted
    nonisolated(unsafe) private static var databases = 0
    private var cluster: PostgresTestCluster!
    private var uri = ""

    override class func setUp() {
        super.setUp()
        slot = ClusterSlot.start()
    }

    override class func tearDown() {
        slot.stop()
        slot = .notStarted
        super.tearDown()
    }

    override func setUpWithError() throws {
        cluster = try Self.slot.cluster()
        Self.databases += 1
        uri = try cluster.freshDatabase("lease\(Self.databases)")
        _ = try PostgresStore(uri, create: true)
    }

    /// A run of its own (another process, on this host or another).
    private func store() throws -> PostgresStore {
        let store = try PostgresStore(uri)
        store.runID = "run-\(UUID().uuidString.prefix(8))"
        return store
    }

    /// An endpoint and `count` deliveries due a second ago, in written order; returns them as a
    /// run reads them.
    @discardableResult
    private func queue(_ count: Int, endpoint: String = "ep_1", ordered: Bool = false, on store: PostgresStore)
        throws -> [DueDelivery]
    {
        try store.run(
            """
            INSERT INTO webhook_endpoints (id, url, secret, event_types, created_at, updated_at, ordered)
            VALUES ($1, 'http://127.0.0.1:9/', 'whsec_dGVzdA==', '["*"]', now(), now(), $2)
            ON CONFLICT (id) DO NOTHING
            """, [endpoint, ordered ? "1" : "0"])
        for index in 0..<count {
            try store.run(
                """
                INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, next_attempt_at, created_at)
                VALUES ($1, $2, 'license.issued', '{}', now() - interval '1 second', now())
                """, ["d_\(endpoint)_\(index)", endpoint])
        }
        return try store.dueDeliveries(dueBy: Timestamp(microseconds: 0), retries: false, after: nil, limit: 1000)
            .filter { $0.endpointID == endpoint }
    }

    private func claimed(_ claim: Claim) -> DueDelivery? {
        if case .claimed(let delivery) = claim { return delivery }
        return nil
    }

    private func outcome(_ delivery: DueDelivery, _ result: AttemptOutcome.Result, status: Int) -> AttemptOutcome {
        let now = Timestamp(microseconds: 1_800_000_000_000_000)
        var outcome = AttemptOutcome(
            deliveryID: delivery.id, previousAttemptCount: delivery.attemptCount, result: result,
            statusCode: status, error: status == 200 ? nil : "HTTP \(status)", startedAt: now, finishedAt: now)
        outcome.rowID = delivery.rowID
        outcome.endpointID = delivery.endpointID
        outcome.claimToken = delivery.claimToken
        return outcome
    }

    private func column(_ sql: String, on store: PostgresStore, _ parameters: [String?] = []) throws -> [String?] {
        try store.rows(sql, parameters).map { $0[0] }
    }

    // MARK: - Fencing

    /// A run whose lease expired and whose delivery another run took writes an outcome that
    /// changes nothing on the row, while the other run's stands; both attempts are in the
    /// history (both requests were made).
    func testOutcomeOfAnExpiredLeaseChangesNothingOnceAnotherRunTookTheRow() throws {
        let (first, second) = (try store(), try store())
        let row = try queue(1, on: first)[0]
        let stale = try XCTUnwrap(claimed(try first.claim(row, perEndpoint: 4, inFlight: 0, leaseSeconds: 0.001)))
        usleep(20_000)
        // The lease is over: the row is due again for any run, and the second takes it.
        XCTAssertEqual(try second.dueDeliveries(dueBy: .init(microseconds: 0), retries: false, after: nil, limit: 10).count, 1)
        let fresh = try XCTUnwrap(claimed(try second.claim(row, perEndpoint: 4, inFlight: 0, leaseSeconds: 60)))
        XCTAssertNotEqual(stale.claimToken, fresh.claimToken)

        try first.record([outcome(stale, .delivered, status: 200)])
        XCTAssertEqual(
            try first.rows("SELECT attempt_count, delivered_at IS NULL, claim_token::text FROM webhook_deliveries")[0],
            ["0", "t", fresh.claimToken], "the stale run's outcome must not touch the row")

        let retryAt = SystemClock().now().adding(seconds: 5)
        try second.record([outcome(fresh, .retry(at: retryAt), status: 500)])
        XCTAssertEqual(
            try first.rows(
                """
                SELECT attempt_count, last_status_code, claim_token IS NULL, lease_expires_at IS NULL,
                       next_attempt_at BETWEEN now() + interval '4 seconds' AND now() + interval '6 seconds'
                FROM webhook_deliveries
                """)[0],
            ["1", "500", "t", "t", "t"], "the run holding the claim writes; the retry is 5 s on the database's clock")
        XCTAssertEqual(
            try column("SELECT status_code::text FROM webhook_delivery_attempts ORDER BY id", on: first), ["200", "500"])
    }

    /// A row under a live lease is neither on another run's due pages nor claimable by it, and
    /// an outcome without a claim (an unsendable row) does not touch it.
    func testALiveLeaseKeepsOtherRunsAway() throws {
        let (first, second) = (try store(), try store())
        let row = try queue(1, on: first)[0]
        let mine = try XCTUnwrap(claimed(try first.claim(row, perEndpoint: 4, inFlight: 0, leaseSeconds: 60)))
        XCTAssertEqual(try second.dueDeliveries(dueBy: .init(microseconds: 0), retries: false, after: nil, limit: 10).count, 0)
        guard case .taken = try second.claim(row, perEndpoint: 4, inFlight: 0, leaseSeconds: 60) else {
            return XCTFail("a leased row was claimed twice")
        }
        var unsendable = outcome(row, .dead, status: 0)
        unsendable.statusCode = nil
        unsendable.requested = false
        try second.record([unsendable])
        XCTAssertEqual(try column("SELECT claim_token::text FROM webhook_deliveries", on: first), [mine.claimToken])
    }

    // MARK: - Per-endpoint cap

    /// Three runs released together on one endpoint with a cap of 2: two claims in all, the
    /// third endpoint-busy; a slot held by an expired lease is free again.
    func testTheCapHoldsAcrossRunsAndExpiredLeasesFreeTheirSlots() throws {
        let runs = try (0..<3).map { _ in try store() }
        let rows = try queue(6, on: runs[0])
        let shared = Unchecked(runs)
        let answers = try concurrently(runs.indices) { index in
            try shared.value[index].claim(rows[index], perEndpoint: 2, inFlight: 0, leaseSeconds: index == 0 ? 0.05 : 60)
        }
        XCTAssertEqual(answers.compactMap(claimed).count, 2, "\(answers)")
        XCTAssertEqual(answers.filter { if case .endpointBusy = $0 { true } else { false } }.count, 1)
        XCTAssertEqual(try column("SELECT count(*) FROM webhook_deliveries WHERE claim_token IS NOT NULL", on: runs[0]), ["2"])
        guard claimed(answers[0]) != nil else { return }  // the short lease was among the two
        usleep(100_000)
        // The third run says what it has in flight itself (its claim of the first round, if any).
        let held = claimed(answers[2]) == nil ? 0 : 1
        XCTAssertNotNil(
            claimed(try runs[2].claim(rows[3], perEndpoint: 2, inFlight: held, leaseSeconds: 60)), "the expired lease's slot")
        guard case .endpointBusy = try runs[2].claim(rows[4], perEndpoint: 2, inFlight: held + 1, leaseSeconds: 60) else {
            return XCTFail("a third live lease under a cap of 2")
        }
    }

    /// A run's own claims count as the attempts it says it has in flight, not as the rows it
    /// claimed: its finished attempts keep their claims until the outcomes are committed, and
    /// must not fill the endpoint (a run on PostgreSQL sent 112 of 2,000 deliveries so). Other
    /// runs' claims count as they stand.
    func testARunsOwnClaimsCountAsItsAttemptsInFlight() throws {
        let (mine, other) = (try store(), try store())
        let rows = try queue(4, on: mine)
        for row in rows.prefix(3) {
            XCTAssertNotNil(claimed(try mine.claim(row, perEndpoint: 2, inFlight: 0, leaseSeconds: 60)))
        }
        guard case .endpointBusy = try mine.claim(rows[3], perEndpoint: 2, inFlight: 2, leaseSeconds: 60) else {
            return XCTFail("the run's own attempts in flight must count")
        }
        guard case .endpointBusy = try other.claim(rows[3], perEndpoint: 2, inFlight: 0, leaseSeconds: 60) else {
            return XCTFail("another run's claims must count")
        }
    }

    /// Claims a run hands back (`release`: taken ahead of its requests and never started) are
    /// due again at once for any run and free their slots at the endpoint's cap; a row whose
    /// claim another run holds by now is not touched.
    func testReleasedClaimsAreDueAgainAtOnceAndFreeTheirSlots() throws {
        let (mine, other) = (try store(), try store())
        let rows = try queue(3, on: mine)
        let taken = try mine.claim(rows, perEndpoint: 3, inFlight: 0, leaseSeconds: 60).compactMap(claimed)
        XCTAssertEqual(taken.count, 3)
        guard case .endpointBusy = try other.claim(rows[2], perEndpoint: 3, inFlight: 0, leaseSeconds: 60) else {
            return XCTFail("three live claims under a cap of 3")
        }
        // The second row's lease is taken over meanwhile (as if it had expired): not released.
        try mine.run("UPDATE webhook_deliveries SET claim_token = gen_random_uuid() WHERE id = $1", [rows[1].id])
        try mine.release(Array(taken.suffix(2)))
        XCTAssertEqual(
            try column("SELECT claim_token IS NULL FROM webhook_deliveries ORDER BY seq", on: mine), ["f", "f", "t"])
        XCTAssertEqual(try column("SELECT attempts::text FROM keysat_webhooks_in_flight", on: mine), ["1"])
        XCTAssertEqual(
            try other.dueDeliveries(dueBy: .init(microseconds: 0), retries: false, after: nil, limit: 10).map(\.id),
            [rows[2].id])
        XCTAssertNotNil(
            claimed(try other.claim(rows[2], perEndpoint: 3, inFlight: 0, leaseSeconds: 60)), "due, and a free slot")
        try mine.release([])
    }

    // MARK: - Ordered endpoints

    /// Two and three runs on one ordered endpoint: only its oldest pending delivery can be
    /// claimed, by one run, and nothing else while it is in flight; a retrying head holds the
    /// rest; once it is delivered the next one goes.
    func testOrderedEndpointsHaveOneInFlightOldestFirstAcrossRuns() throws {
        let runs = try (0..<3).map { _ in try store() }
        let rows = try queue(4, ordered: true, on: runs[0])
        XCTAssertTrue(rows.allSatisfy(\.ordered))
        // Six sessions at once: three try the head, three the next one.
        let sessions = Unchecked(try (0..<6).map { _ in try store() })
        let answers = try concurrently(0..<6) { index in
            try sessions.value[index].claim(rows[index / 3], perEndpoint: 1, inFlight: 0, leaseSeconds: 60)
        }
        let taken = answers.compactMap(claimed)
        XCTAssertEqual(taken.map(\.id), [rows[0].id], "only the head, once: \(answers)")

        // A failed head is retried later and holds the others back.
        let head = taken[0]
        // Recorded by the run that claimed it (a run records on a second session of its own).
        let claimer = sessions.value[try XCTUnwrap(answers.firstIndex { claimed($0) != nil })]
        try claimer.record([outcome(head, .retry(at: SystemClock().now().adding(seconds: 60)), status: 500)])
        for run in runs {
            guard case .endpointBusy = try run.claim(rows[1], perEndpoint: 1, inFlight: 0, leaseSeconds: 60) else {
                return XCTFail("a newer delivery went while the head was retrying")
            }
        }
        // Delivered at last (its time moved back for the test): the next one may go.
        try runs[0].run("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' WHERE id = $1", [head.id])
        var retried = head
        retried.attemptCount = 1
        let again = try XCTUnwrap(claimed(try runs[2].claim(retried, perEndpoint: 1, inFlight: 0, leaseSeconds: 60)))
        try runs[2].record([outcome(again, .delivered, status: 200)])
        XCTAssertNotNil(claimed(try runs[0].claim(rows[1], perEndpoint: 1, inFlight: 0, leaseSeconds: 60)))
        XCTAssertEqual(try runs[0].oldestPending(endpointID: "ep_1")?.id, rows[1].id)
    }

    // MARK: - What the run meets from others

    /// An operator's transaction holding the endpoint's row does not hold up the claims of an
    /// endpoint that is not ordered (they take turns on an advisory lock of their own); on an
    /// ordered endpoint, whose claims lock its row, the claim answers busy after a short wait
    /// (the run leaves the endpoint for the round), not an error.
    func testAnEndpointRowLockedByAnotherTransactionHoldsUpOnlyOrderedClaimsAndBriefly() throws {
        let (run, holder) = (try store(), try store())
        let row = try queue(1, on: run)[0]
        let orderedRow = try queue(1, endpoint: "ep_2", ordered: true, on: run)[0]
        try holder.connection.execute("BEGIN")
        try holder.run("UPDATE webhook_endpoints SET description = 'edited' WHERE id IN ('ep_1', 'ep_2')")
        var started = SystemClock().elapsed()
        XCTAssertNotNil(claimed(try run.claim(row, perEndpoint: 4, inFlight: 0, leaseSeconds: 60)))
        XCTAssertLessThan(SystemClock().elapsed() - started, 150_000, "no wait for the endpoint's row")
        started = SystemClock().elapsed()
        guard case .endpointBusy = try run.claim(orderedRow, perEndpoint: 1, inFlight: 0, leaseSeconds: 60) else {
            return XCTFail("a locked ordered endpoint's row must answer busy")
        }
        XCTAssertLessThan(SystemClock().elapsed() - started, 2_000_000, "a short wait, not the session's 5 s")
        try holder.connection.execute("ROLLBACK")
        XCTAssertNotNil(claimed(try run.claim(orderedRow, perEndpoint: 1, inFlight: 0, leaseSeconds: 60)))
    }

    /// A row another transaction holds (an outcome's commit, an operator's retry) is waited
    /// for, then judged as that transaction left it: claimed when still due and unleased,
    /// skipped when the other made it delivered.
    func testAClaimWaitsForARowAnotherTransactionHoldsThenJudgesItAsCommitted() throws {
        let (run, holder) = (try store(), try store())
        let rows = try queue(2, on: run)
        try holder.connection.execute("BEGIN")
        try holder.run("UPDATE webhook_deliveries SET last_error = 'held' WHERE id = $1", [rows[0].id])
        try holder.run("UPDATE webhook_deliveries SET delivered_at = now() WHERE id = $1", [rows[1].id])
        let held = Unchecked(holder)
        let releaser = Thread {
            usleep(300_000)
            _ = try? held.value.connection.execute("COMMIT")
        }
        releaser.start()
        let started = SystemClock().elapsed()
        let answers = try run.claim(rows, perEndpoint: 4, inFlight: 0, leaseSeconds: 60)
        XCTAssertGreaterThanOrEqual(SystemClock().elapsed() - started, 250_000, "waited for the holder")
        XCTAssertEqual(answers.map { claimed($0)?.id }, [rows[0].id, nil])
        guard case .taken = answers[1] else { return XCTFail("a row delivered meanwhile is taken: \(answers)") }
    }

    /// The server closing the recorder's session between a claim and its outcome (a restart, a
    /// failover): the outcome is written over a new session, not lost to be sent again.
    func testAnOutcomeIsRecordedOverANewSessionWhenTheOldOneWasClosed() throws {
        let (run, recorder, admin) = (try store(), try store(), try store())
        let row = try queue(1, on: run)[0]
        let mine = try XCTUnwrap(claimed(try run.claim(row, perEndpoint: 4, inFlight: 0, leaseSeconds: 60)))
        let pid = try XCTUnwrap(try recorder.value("SELECT pg_backend_pid()"))
        try admin.run("SELECT pg_terminate_backend($1::integer)", [pid])
        try recorder.record([outcome(mine, .delivered, status: 200)])
        XCTAssertEqual(
            try admin.rows("SELECT delivered_at IS NOT NULL, claim_token IS NULL FROM webhook_deliveries")[0], ["t", "t"])
        XCTAssertEqual(try column("SELECT count(*) FROM webhook_delivery_attempts", on: admin), ["1"])
    }

    /// A row another program wrote with a count whose next would not fit (or an id a header
    /// cannot carry) is dead-lettered without a request, saying why, and the batch with it is
    /// recorded (the run stopped on 22003 before).
    func testADefectiveRowIsDeadLetteredWithoutStoppingTheBatch() throws {
        let run = try store()
        try queue(1, on: run)
        try run.run(
            """
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, attempt_count, next_attempt_at, created_at)
            VALUES ('huge', 'ep_1', 'license.issued', '{}', 2147483647, now() - interval '1 second', now()),
                   (E'bad\\nid', 'ep_1', 'license.issued', '{}', 0, now() - interval '1 second', now())
            """)
        let rows = try run.dueDeliveries(dueBy: .init(microseconds: 0), retries: false, after: nil, limit: 10)
            + run.dueDeliveries(dueBy: .init(microseconds: 0), retries: true, after: nil, limit: 10)
        XCTAssertEqual(rows.filter { $0.defect != nil }.map(\.id).sorted(), ["bad\nid", "huge"])
        let good = try XCTUnwrap(rows.first { $0.defect == nil })
        let mine = try XCTUnwrap(claimed(try run.claim(good, perEndpoint: 4, inFlight: 0, leaseSeconds: 60)))
        var batch = [outcome(mine, .delivered, status: 200)]
        for row in rows where row.defect != nil {
            var dead = outcome(row, .dead, status: 0)
            dead.statusCode = nil
            dead.requested = false
            dead.error = "not sent: \(row.defect!); repair the row, then retry it"
            dead.fingerprint = row.fingerprint
            batch.append(dead)
        }
        try run.record(batch)
        XCTAssertEqual(
            try run.rows(
                "SELECT id, attempt_count, next_attempt_at IS NULL, delivered_at IS NOT NULL FROM webhook_deliveries ORDER BY seq"),
            [["d_ep_1_0", "1", "t", "t"], ["huge", "1", "t", "f"], ["bad\nid", "1", "t", "f"]])
    }

    /// Enqueues commit in any order: the older (seq 1, not yet committed) and the newer (seq 2,
    /// committed) on one ordered endpoint. A run that reads seq 2 as the head (seq 1 is not
    /// visible yet) must not send it: its claim waits for the enqueue in flight (which holds the
    /// endpoint's row `FOR SHARE`) and answers busy (once the enqueue committed and it finds
    /// the older row pending, or after waiting 200 ms for the row); the older one goes first.
    /// Without the enqueue's lock the claim took seq 2 at once.
    func testAClaimWaitsForAnOlderEnqueueStillInFlightOnAnOrderedEndpoint() throws {
        let (controller, older, newer, run) = (try store(), try store(), try store(), try store())
        try controller.run(
            """
            INSERT INTO webhook_endpoints (id, url, secret, event_types, created_at, updated_at, ordered)
            VALUES ('ep_1', 'http://127.0.0.1:9/', 'whsec_dGVzdA==', '["*"]', now(), now(), 1)
            """)
        // The older enqueue stops after its insert, before its commit, until the controller
        // lets it go: a trigger waiting on an advisory lock the controller holds.
        try controller.connection.executeScript(
            """
            CREATE FUNCTION hold_older() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NULL; END $$;
            CREATE TRIGGER hold_older AFTER INSERT ON webhook_deliveries FOR EACH ROW
                WHEN (NEW.event_type = 'older') EXECUTE FUNCTION hold_older();
            """)
        try controller.run("SELECT pg_advisory_lock(4242)")
        let olderSession = Unchecked(older)
        let olderDone = DispatchSemaphore(value: 0)
        let olderResult = Results<EnqueueResult>(count: 1)
        Thread {
            var generator = SystemRandomNumberGenerator()
            olderResult.set(
                0, Result { try olderSession.value.enqueue(eventType: "older", data: Array("{}".utf8), idempotencyKey: nil, using: &generator) })
            olderDone.signal()
        }.start()
        try waitUntil("the older enqueue holds its row uncommitted", on: controller) {
            try self.column("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", on: controller) == ["1"]
        }
        var generator = SystemRandomNumberGenerator()
        _ = try newer.enqueue(eventType: "newer", data: Array("{}".utf8), idempotencyKey: nil, using: &generator)

        let due = try run.dueDeliveries(dueBy: Timestamp(microseconds: 0), retries: false, after: nil, limit: 10)
        XCTAssertEqual(due.map(\.eventType), ["newer"], "the older row is not visible yet")
        let head = try XCTUnwrap(due.first)
        XCTAssertTrue(head.ordered)
        let runSession = Unchecked(run)
        let claimDone = DispatchSemaphore(value: 0)
        let claimResult = Results<Claim>(count: 1)
        Thread {
            claimResult.set(
                0, Result { try runSession.value.claim(head, perEndpoint: 1, inFlight: 0, leaseSeconds: 60) })
            claimDone.signal()
        }.start()
        // The claim waits for the enqueue in flight, at most 200 ms (then it answers busy too).
        XCTAssertEqual(claimDone.wait(timeout: .now() + 10), .success)
        try controller.run("SELECT pg_advisory_unlock(4242)")
        XCTAssertEqual(olderDone.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(try olderResult.values[0]?.get().deliveries.count, 1)
        guard case .endpointBusy = try XCTUnwrap(claimResult.values[0]).get() else {
            return XCTFail("the newer delivery was claimed while an older one was pending: \(claimResult.values)")
        }
        XCTAssertEqual(try run.oldestPending(endpointID: "ep_1")?.eventType, "older")
        XCTAssertEqual(
            try column("SELECT count(*) FROM webhook_deliveries WHERE claim_token IS NOT NULL", on: run), ["0"])
    }

    /// Polls `condition` every 10 ms for up to 10 s.
    private func waitUntil(_ what: String, on store: PostgresStore, _ condition: () throws -> Bool) throws {
        for _ in 0..<1000 {
            if try condition() { return }
            usleep(10_000)
        }
        XCTFail("timed out waiting until \(what)")
    }

    // MARK: - Claiming under a nested loop

    /// A claim of several rows takes no more than the endpoint's room, whatever plan the
    /// planner is pushed to (the IN (… LIMIT) form took five for LIMIT 1 under a nested loop:
    /// ClaimQueryTests); the rest are answered busy, in order.
    func testAClaimTakesNoMoreRowsThanTheRoomUnderANestedLoopPlan() throws {
        let run = try store()
        let rows = try queue(5, on: run)
        try run.connection.executeScript(
            "SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off; SET enable_sort = off")
        let answers = try run.claim(rows, perEndpoint: 3, inFlight: 1, leaseSeconds: 60)
        XCTAssertEqual(answers.map { claimed($0)?.id }, [rows[0].id, rows[1].id, nil, nil, nil])
        XCTAssertEqual(answers.suffix(3).map { if case .endpointBusy = $0 { true } else { false } }, [true, true, true])
        XCTAssertEqual(try column("SELECT count(*) FROM webhook_deliveries WHERE claim_token IS NOT NULL", on: run), ["2"])
        // Each claimed row has its own token (an attempt is its claim).
        XCTAssertEqual(Set(answers.compactMap { claimed($0)?.claimToken }).count, 2)
    }

    /// A batch of outcomes finds its rows through the keys, one by one, however the planner
    /// judges the queue: on PostgreSQL 15 with 10,000 rows it chose a hash join over a
    /// sequential scan of the whole table for each batch of 448 (12 ms of the batch's 21,
    /// docs/BENCHMARKS.md tenth session). The plan is read under the settings the outcomes'
    /// transaction uses.
    func testOutcomesFindTheirRowsByKeyWhateverTheQueuesSize() throws {
        let run = try store()
        try queue(0, on: run)
        try run.run(
            """
            INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload_json, next_attempt_at, created_at)
            SELECT 'd_' || g, 'ep_1', 'license.issued', '{}', now(), now() FROM generate_series(1, 10000) AS g
            """)
        try run.run("ANALYZE webhook_deliveries")
        let now = Timestamp(microseconds: 1_800_000_000_000_000)
        let outcomes = try run.rows("SELECT seq, id FROM webhook_deliveries ORDER BY seq LIMIT 448").map { row in
            var outcome = AttemptOutcome(
                deliveryID: row[1] ?? "", previousAttemptCount: 0, result: .delivered, statusCode: 200, error: nil,
                startedAt: now, finishedAt: now)
            outcome.rowID = Int64(row[0] ?? "") ?? 0
            outcome.claimToken = "6f1c1d52-8d0e-4c1e-9a55-2f0e8d7b3c11"
            return outcome
        }
        let plan = try run.transaction(settings: PostgresStore.rowByRow) {
            try column(
                "EXPLAIN (COSTS OFF) " + PostgresStore.fencedUpdate, on: run, PostgresStore.rowArrays(outcomes, hostNow: now))
        }.compactMap { $0 }.joined(separator: "\n")
        XCTAssertTrue(plan.contains("Index Scan using webhook_deliveries_seq_key"), plan)
        XCTAssertFalse(plan.contains("Seq Scan on webhook_deliveries"), plan)
    }

    /// Array parameters carry any text a receiver may send, exactly (NUL, which PostgreSQL's
    /// text cannot hold, as U+FFFD), and claim tokens are UUIDs of version 4, all different.
    func testArrayLiteralsAndTokensRoundTripThroughTheServer() throws {
        let run = try store()
        let texts: [String?] = [
            "plain", "", nil, "NULL", "\"quoted\"", "back\\slash", "{braces},commas", "  spaced  ", "tab\tline\nbreak",
            "nul\u{0}byte", "émoji 😀", "\u{FFFF}\u{7F}",
        ]
        let back = try run.rows(
            "SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n", [PostgresArray.literal(texts)]
        ).map { $0[0] }
        XCTAssertEqual(back, texts.map { $0?.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") })
        var generator = SystemRandomNumberGenerator()
        let tokens = (0..<200).map { _ in Identifiers.uuid4(using: &generator) }
        XCTAssertEqual(Set(tokens).count, 200)
        let versions = try run.rows(
            "SELECT DISTINCT substr(t::uuid::text, 15, 1) || substr(t::uuid::text, 20, 1) ~ '^4[89ab]$' FROM unnest($1::text[]) AS t",
            [PostgresArray.literal(tokens)])
        XCTAssertEqual(versions, [["t"]])
    }

    // MARK: - Schema

    /// Five openings with `create` at once on an empty database (five hosts' `init`): every
    /// step applied once, none fails, no deadlock.
    func testFiveInitsAtOnceApplyTheSchemaOnce() throws {
        let empty = try cluster.freshDatabase("lease_init\(Self.databases)")
        let results = try concurrently(0..<5) { _ in try PostgresStore(empty, create: true).appliedSchemaSteps }
        XCTAssertEqual(results.filter { !$0.isEmpty }.count, 1, "\(results)")
        let check = try PostgresStore(empty)
        XCTAssertEqual(
            try check.rows("SELECT version FROM keysat_webhooks_schema ORDER BY version").map { $0[0] },
            PostgresSchema.steps.map { String($0.version) })
        XCTAssertNil(try check.schemaProblem())
    }

    /// A database that cannot hold every text (LATIN1) is refused at `init` (78), before any
    /// table is made.
    func testInitRefusesADatabaseNotEncodedInUTF8() throws {
        let admin = try PostgresConnection(
            "host=\(cluster.directory) port=\(cluster.value("port")!) user=postgres dbname=postgres sslmode=disable")
        try admin.execute("DROP DATABASE IF EXISTS latin")
        try admin.execute("CREATE DATABASE latin OWNER keysat ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        let latin = uri.replacingOccurrences(of: "/lease\(Self.databases)?", with: "/latin?")
        XCTAssertThrowsError(try PostgresStore(latin, create: true)) { XCTAssertEqual(($0 as? KeysatError)?.exitCode, 78) }
        XCTAssertEqual(try PostgresSchema.currentVersion(try PostgresConnection(latin)), 0)
    }

    /// A schema older than this version's is refused by a run (78) rather than changed under
    /// other hosts; a newer one too (75).
    func testARunRefusesASchemaItDoesNotKnow() throws {
        let run = try store()
        try run.run("DELETE FROM keysat_webhooks_schema WHERE version > 1")
        try run.run("UPDATE keysat_webhooks_schema SET version = 99")
        XCTAssertThrowsError(try PostgresStore(uri)) { XCTAssertEqual(($0 as? KeysatError)?.exitCode, 75) }
        XCTAssertEqual(try PostgresStore(uri, readOnly: true).newerSchema, 99, "a newer schema may be read")
        try run.run("DELETE FROM keysat_webhooks_schema")
        XCTAssertThrowsError(try PostgresStore(uri)) { XCTAssertEqual(($0 as? KeysatError)?.exitCode, 78) }
    }

    /// A database a previous version made (schema 1, whose claim locked each row) is refused by
    /// a run (78, "run init"); `init` applies the later steps once, and claims then work.
    func testInitUpgradesADatabaseOfSchemaOne() throws {
        let database = try cluster.freshDatabase("lease_upgrade\(Self.databases)")
        let first = try PostgresConnection(database)
        try first.execute("CREATE TABLE keysat_webhooks_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        try first.executeScript(PostgresSchema.steps[0].sql)
        try first.execute("INSERT INTO keysat_webhooks_schema (version) VALUES (1)")
        XCTAssertThrowsError(try PostgresStore(database)) { XCTAssertEqual(($0 as? KeysatError)?.exitCode, 78) }
        XCTAssertEqual(try PostgresStore(database, create: true).appliedSchemaSteps, PostgresSchema.steps.map(\.version).filter { $0 >= 2 })
        let run = try PostgresStore(database)
        run.runID = "run-upgraded"
        let rows = try queue(2, on: run)
        XCTAssertEqual(try run.claim(rows, perEndpoint: 1, inFlight: 0, leaseSeconds: 60).map { claimed($0)?.id }, [rows[0].id, nil])
        XCTAssertEqual(try PostgresStore(database, create: true).appliedSchemaSteps, [])
    }

    /// Runs `body` for each of `indices` on threads of their own, released together.
    private func concurrently<Value: Sendable>(
        _ indices: some Sequence<Int>, _ body: @escaping @Sendable (Int) throws -> Value
    ) throws -> [Value] {
        let indices = Array(indices)
        let results = Results<Value>(count: indices.count)
        let start = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        for (position, index) in indices.enumerated() {
            group.enter()
            Thread {
                start.wait()
                results.set(position, Result { try body(index) })
                group.leave()
            }.start()
        }
        for _ in indices { start.signal() }
        group.wait()
        return try results.values.map { try $0!.get() }
    }
}

/// Sessions handed to threads, each used by one thread only.
private struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

private final class Results<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Result<Value, any Error>?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Result<Value, any Error>) {
        lock.lock()
        values[index] = value
        lock.unlock()
    }
}

extension PostgresTestCluster {
    /// A new, empty database owned by the test role; its postgresql:// URI (password in the
    /// cluster's passfile, never in the URI).
    func freshDatabase(_ name: String) throws -> String {
        let admin = try PostgresConnection(
            "host=\(directory) port=\(value("port")!) user=postgres dbname=postgres sslmode=disable")
        try admin.execute("DROP DATABASE IF EXISTS \(name)")
        try admin.execute("CREATE DATABASE \(name) OWNER keysat")
        return "postgresql://keysat@127.0.0.1:\(value("port")!)/\(name)?passfile=\(directory)/pgpass&sslmode=disable"
    }
}
