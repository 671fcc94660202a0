import KeysatCore
import KeysatTestSupport
import XCTest

@testable import KeysatPostgres

/// The claim query the PostgreSQL backend is to use, and the form it must never use, against
/// a real server with the planner pushed to a nested loop (docs/POSTGRES.md, "Claiming").
///
/// `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` lets the planner put the
/// LIMIT subquery on the inner side of a nested-loop semi-join and run it again for every row
/// of the outer scan. Each rerun skips the rows the UPDATE has just changed (changed by this
/// very command, so not visible to it) and locks the next one: the statement claims every row
/// it reaches, not n. Oban moved to a CTE for this (commit 39909215; opengovsg/postmangovsg#276).
/// A `MATERIALIZED` CTE runs once, so its LIMIT holds whatever plan the UPDATE gets.
final class ClaimQueryTests: XCTestCase {
    // XCTest runs a class's setUp, its tests and its tearDown one after another on one thread.
    nonisolated(unsafe) private static var slot = ClusterSlot.notStarted
    private var cluster: PostgresTestCluster!

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
    }

    /// The reference claim: the form the backend's claim is to take ($1 the limit, $2 the run's
    /// claim token). One short transaction; the lease and the endpoint rules come on top.
    static let referenceClaim = """
        WITH claimed AS MATERIALIZED (
            SELECT id FROM claim_queue WHERE state = 'pending'
            ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        UPDATE claim_queue SET state = 'claimed', claim_token = $2
        FROM claimed WHERE claim_queue.id = claimed.id
        RETURNING claim_queue.id
        """

    /// The form that over-claims, kept only to show that this test's plan makes it do so.
    static let subqueryClaim = """
        UPDATE claim_queue SET state = 'claimed', claim_token = $2
        WHERE id IN (
            SELECT id FROM claim_queue WHERE state = 'pending'
            ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING claim_queue.id
        """

    /// A fresh queue of `count` pending rows, its physical order that of its ids, on a session
    /// whose planner may not hash, merge, materialize or sort (the issue names the first two;
    /// on PostgreSQL 15.18 with a small table the planner also had to be kept from
    /// materializing or de-duplicating the subquery before it chose the rescanned nested loop).
    private func queue(_ count: Int) throws -> PostgresConnection {
        let connection = try cluster.connect()
        try connection.executeScript(
            """
            DROP TABLE IF EXISTS claim_queue;
            CREATE TABLE claim_queue (id bigint PRIMARY KEY, state text NOT NULL, claim_token text);
            INSERT INTO claim_queue SELECT g, 'pending', NULL FROM generate_series(1, \(count)) g;
            ANALYZE claim_queue;
            SET enable_hashjoin = off; SET enable_mergejoin = off;
            SET enable_material = off; SET enable_hashagg = off; SET enable_sort = off;
            """)
        return connection
    }

    private func plan(_ connection: PostgresConnection, _ query: String) throws -> String {
        let explained = query.replacingOccurrences(of: "$1", with: "1").replacingOccurrences(
            of: "$2", with: "'x'")
        return try connection.execute("EXPLAIN (COSTS OFF) " + explained).rows.map { $0[0] ?? "" }
            .joined(separator: "\n")
    }

    /// The pitfall, shown: under this plan the IN form claims all five rows for LIMIT 1. If a
    /// later PostgreSQL plans it otherwise, this test says so rather than passing vacuously.
    func testSubqueryFormClaimsMoreThanItsLimitUnderANestedLoop() throws {
        let connection = try queue(5)
        let plan = try plan(connection, Self.subqueryClaim)
        XCTAssertTrue(plan.contains("Nested Loop Semi Join"), plan)
        let claimed = try connection.execute(Self.subqueryClaim, ["1", "token-a"]).rows
        XCTAssertEqual(
            claimed.count, 5, "the IN (… LIMIT 1) form claimed \(claimed.count) rows; plan:\n\(plan)")
    }

    func testReferenceClaimNeverTakesMoreThanItsLimit() throws {
        let connection = try queue(5)
        let plan = try plan(connection, Self.referenceClaim)
        XCTAssertTrue(plan.contains("Nested Loop"), plan)
        XCTAssertEqual(try connection.execute(Self.referenceClaim, ["1", "token-a"]).rows, [["1"]])

        let larger = try queue(10)
        var batches: [[String?]] = []
        for run in 0..<5 {
            let rows = try larger.execute(Self.referenceClaim, ["3", "token-\(run)"]).rows
            XCTAssertLessThanOrEqual(rows.count, 3)
            batches.append(rows.map { $0[0] })
        }
        XCTAssertEqual(batches.map(\.count), [3, 3, 3, 1, 0])
        XCTAssertEqual(Set(batches.joined().compactMap { $0 }).count, 10, "every row claimed once")
        let tokens = try larger.execute("SELECT claim_token, count(*) FROM claim_queue GROUP BY 1 ORDER BY 1")
            .rows
        XCTAssertEqual(tokens, [["token-0", "3"], ["token-1", "3"], ["token-2", "3"], ["token-3", "1"]])
    }

    /// Rows another session has claimed and not yet committed are skipped, not waited for.
    func testReferenceClaimSkipsRowsLockedByAnotherSession() throws {
        let first = try queue(6)
        let second = try cluster.connect()
        try first.transaction {
            let mine = try first.execute(Self.referenceClaim, ["2", "token-a"]).rows
            XCTAssertEqual(mine, [["1"], ["2"]])
            let theirs = try second.execute(Self.referenceClaim, ["3", "token-b"]).rows
            XCTAssertEqual(theirs, [["3"], ["4"], ["5"]])
        }
    }
}
