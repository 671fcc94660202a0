import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

/// The outcome policy as a table: the facts of one attempt in, the decision out.
final class OutcomePolicyTests: XCTestCase {
    struct Case {
        var line: UInt = #line
        var status: Int?
        var failure: HTTPResult.Failure?
        var attemptsBefore = 0
        var retryAfter: String?
        var body = ""
        var streakBefore = 0
        // Expected:
        var result: AttemptOutcome.Result
        var error: String?
        var disable: String?
        var streak = 0
        var trip = false
    }

    static let finished = Timestamp(seconds: 1_800_000_000)
    static func after(_ seconds: Int64) -> AttemptOutcome.Result {
        .retry(at: finished.adding(seconds: seconds))
    }
    static let refusedConnection = HTTPResult.Failure.transport(code: 7, message: "Connection refused")

    let table: [Case] = [
        Case(status: 204, result: .delivered),
        Case(status: 200, body: "ok", streakBefore: 2, result: .delivered, streak: 0),
        Case(status: 299, result: .delivered),
        Case(status: 500, body: "oops", result: after(5), error: "non-2xx response: oops"),
        Case(status: 500, result: after(5), error: "non-2xx response: HTTP 500, empty body"),
        Case(
            status: 502, body: String(repeating: "x", count: 300), result: after(5),
            error: "non-2xx response: " + String(repeating: "x", count: 200)),
        // Redirects are not followed: a failure like any other non-2xx.
        Case(status: 302, result: after(5), error: "non-2xx response: HTTP 302, empty body"),
        Case(
            status: 404, attemptsBefore: 1, result: after(10), error: "non-2xx response: HTTP 404, empty body"
        ),
        Case(
            status: 404, attemptsBefore: 8, result: after(7200),
            error: "non-2xx response: HTTP 404, empty body"),
        // The tenth failed attempt dead-letters.
        Case(status: 404, attemptsBefore: 9, result: .dead, error: "non-2xx response: HTTP 404, empty body"),
        Case(
            status: 410, result: .dead, error: "non-2xx response: HTTP 410, empty body",
            disable: "receiver answered 410 Gone"),
        // Retry-After on 429 and 503: later than the backoff, at most twice its delay.
        Case(
            status: 429, retryAfter: "20", result: after(10), error: "non-2xx response: HTTP 429, empty body"),
        Case(status: 503, retryAfter: "7", result: after(7), error: "non-2xx response: HTTP 503, empty body"),
        Case(status: 503, retryAfter: "1", result: after(5), error: "non-2xx response: HTTP 503, empty body"),
        Case(
            status: 429, retryAfter: "soon", result: after(5), error: "non-2xx response: HTTP 429, empty body"
        ),
        Case(status: 429, result: after(5), error: "non-2xx response: HTTP 429, empty body"),
        // Other statuses ignore it.
        Case(
            status: 500, retryAfter: "20", result: after(5), error: "non-2xx response: HTTP 500, empty body"),
        // No status line: a transport failure, counted toward the breaker (3 here).
        Case(
            failure: refusedConnection, result: after(5), error: "request error: Connection refused",
            streak: 1),
        Case(
            failure: refusedConnection, streakBefore: 2, result: after(5),
            error: "request error: Connection refused", streak: 3, trip: true),
        Case(
            failure: refusedConnection, streakBefore: 5, result: after(5),
            error: "request error: Connection refused", streak: 6, trip: true),
        Case(
            failure: .refused(address: "10.0.0.1"), result: after(5),
            error: "request error: destination 10.0.0.1 is not allowed by the network policy", streak: 1),
        Case(
            failure: .plainHTTPRefused, attemptsBefore: 9, result: .dead,
            error: "request error: plain http is refused by --https-only", streak: 1),
        Case(result: after(5), error: "request error: unknown failure", streak: 1),
    ]

    func testTheTable() {
        let policy = OutcomePolicy(breaker: 3)
        for row in table {
            var delivery = DueDelivery(
                id: "d1", endpointID: "e1", eventType: "license.issued", payload: [],
                attemptCount: row.attemptsBefore,
                nextAttemptAt: "", url: "http://e1.test/", secret: "s", endpointActive: true)
            delivery.rowID = 42
            let result = HTTPResult(
                tag: 1, status: row.status, failure: row.failure, retryAfter: row.retryAfter,
                body: Array(row.body.utf8), started: Timestamp(seconds: 1_799_999_999),
                finished: Self.finished)
            let decision = policy.decide(result, for: delivery, transportFailures: row.streakBefore)
            XCTAssertEqual(decision.outcome.result, row.result, "result", line: row.line)
            XCTAssertEqual(decision.outcome.error, row.error, "error", line: row.line)
            XCTAssertEqual(decision.disableReason, row.disable, "disable", line: row.line)
            XCTAssertEqual(decision.transportFailures, row.streak, "streak", line: row.line)
            XCTAssertEqual(decision.tripBreaker, row.trip, "breaker", line: row.line)
            XCTAssertEqual(decision.outcome.statusCode, row.status, line: row.line)
            XCTAssertEqual(decision.outcome.previousAttemptCount, row.attemptsBefore, line: row.line)
            XCTAssertEqual(decision.outcome.rowID, 42, line: row.line)
            XCTAssertEqual(
                decision.outcome.responseExcerpt, Array(row.body.utf8.prefix(1024)), line: row.line)
            XCTAssertTrue(decision.outcome.requested, line: row.line)
        }
    }

    func testAResponseExcerptIsAtMost1024Bytes() {
        let result = HTTPResult(
            tag: 1, status: 500, body: Array(repeating: 0x61, count: 5000), started: Self.finished,
            finished: Self.finished)
        let delivery = DueDelivery(
            id: "d1", endpointID: "e1", eventType: "t", payload: [], attemptCount: 0, nextAttemptAt: "",
            url: nil, secret: nil, endpointActive: true)
        XCTAssertEqual(
            OutcomePolicy(breaker: 3).outcome(of: result, for: delivery).responseExcerpt.count, 1024)
    }

    func testAnUnsendableDeliveryIsDeadWithoutARequest() {
        var delivery = DueDelivery(
            id: "d1", endpointID: "e1", eventType: "t", payload: [], attemptCount: 3, nextAttemptAt: "",
            url: nil, secret: nil, endpointActive: false)
        delivery.rowID = 7
        let outcome = OutcomePolicy(breaker: 3).unsendable(delivery, at: Self.finished)
        XCTAssertEqual(outcome.result, .dead)
        XCTAssertEqual(outcome.error, "endpoint deleted or disabled")
        XCTAssertFalse(outcome.requested)
        XCTAssertEqual(outcome.previousAttemptCount, 3)
        XCTAssertEqual(outcome.rowID, 7)
    }
}
