import Glibc
import KeysatCore
import KeysatStore
import XCTest

/// The store's side of a run, on a real SQLite file: due pages, and the guard that keeps an
/// outcome from overwriting a row someone changed meanwhile.
final class DeliveryStoreTests: XCTestCase {
    private let path = "/tmp/keysat-delivery-store-test-\(UInt64.random(in: 0...UInt64.max)).db"
    private let clock = FixedClock(Timestamp(seconds: 1_800_000_000))
    private var generator = SystemRandomNumberGenerator()

    override func tearDown() {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
    }

    private func storeWithDeliveries(_ count: Int) throws -> (WebhookStore, [DueDelivery]) {
        let store = try WebhookStore(path: path, create: true, clock: clock)
        _ = try store.addEndpoint(
            url: "http://h/", secret: "0123456789abcdef", eventTypes: ["a"], description: "",
            using: &generator)
        for n in 0..<count {
            _ = try store.enqueue(
                eventType: "a", data: Array(String(n).utf8), idempotencyKey: nil, using: &generator)
        }
        let due = try store.dueDeliveries(dueBy: clock.now(), retries: false, after: nil, limit: 100)
        return (store, due)
    }

    private func outcome(_ delivery: DueDelivery, previous: Int, _ result: AttemptOutcome.Result)
        -> AttemptOutcome
    {
        AttemptOutcome(
            deliveryID: delivery.id, previousAttemptCount: previous, result: result, statusCode: 500,
            error: "non-2xx response: HTTP 500, empty body", startedAt: clock.now(), finishedAt: clock.now())
    }

    func testDuePagesFollowTheCursorWithoutGapsOrRepeats() throws {
        let (store, all) = try storeWithDeliveries(7)
        XCTAssertEqual(all.count, 7)
        var seen: [String] = []
        var cursor: DueCursor?
        while true {
            let page = try store.dueDeliveries(dueBy: clock.now(), retries: false, after: cursor, limit: 3)
            seen += page.map(\.id)
            guard let last = page.last else { break }
            cursor = DueCursor(nextAttemptAt: last.nextAttemptAt, rowID: last.rowID)
        }
        XCTAssertEqual(seen, all.map(\.id))
        XCTAssertTrue(
            try store.dueDeliveries(dueBy: clock.now(), retries: true, after: nil, limit: 10).isEmpty)
    }

    func testAnOutcomeForAStaleAttemptCountChangesNothing() throws {
        let (store, due) = try storeWithDeliveries(2)
        let retryAt = clock.now().adding(seconds: 5)
        try store.record([outcome(due[0], previous: 0, .retry(at: retryAt))])
        // A second outcome for the same attempt (a run killed after the commit, say) is ignored.
        try store.record([outcome(due[0], previous: 0, .dead)])
        let row = try store.delivery(id: due[0].id)
        XCTAssertEqual(row.attemptCount, 1)
        XCTAssertEqual(row.status, .pending)
        XCTAssertEqual(row.nextAttemptAt, retryAt.rfc3339)
        XCTAssertEqual(try store.attempts(deliveryID: due[0].id).count, 1)
        // By rowid as well as by id: a rowid whose id does not match changes nothing.
        var mismatched = outcome(due[1], previous: 0, .dead)
        mismatched.rowID = due[0].rowID
        try store.record([mismatched])
        XCTAssertEqual(try store.delivery(id: due[1].id).status, .pending)
        XCTAssertEqual(try store.delivery(id: due[0].id).attemptCount, 1)
    }
}
