import Foundation
import KeysatTestSupport
import XCTest

/// The recovery of endpoints keysat-deliver disabled for failing (issue 22): probes every
/// `--probe-every` with the newest dead delivery, a 2xx enabling the endpoint again and
/// re-queueing what the outage dead-lettered, announced as webhook.endpoint.recovered; and
/// `endpoint enable --requeue` by hand. On the backend KEYSAT_TEST_BACKEND names. Time is
/// moved in the database, as the auto-disable tests move it: attempts and the last probe are
/// dated back. The receiver's path decides its answer, so a receiver "comes back" when the
/// endpoint's URL is changed to a path that answers 204.
final class RecoveryTests: XCTestCase {
    private let health = "keysat_webhooks_endpoint_health"

    /// An endpoint at `path` (answering 500) with one delivery, disabled by a run for failing:
    /// its attempts dated 6 hours back, then a run with `--disable-after 5h`. Returns the
    /// endpoint and the delivery (pending, due later; the next run dead-letters it).
    private func disabledForFailing(_ db: TestDatabase, _ receiver: Receiver, path: String, event: String = "e")
        throws -> (endpoint: String, delivery: String)
    {
        let endpoint = try db.addEndpoint(on: receiver, path: path, events: [event])
        let delivery = try XCTUnwrap(try db.enqueue([event, #"{"n":0}"#]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_delivery_attempts SET started_at = \(SQL.timeAgo(db.path, "6 hours"))
            WHERE delivery_id = '\(delivery)'
            """)
        try db.makeAllDue()
        let run = try db.deliver(["--disable-after", "5h"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try active(db, endpoint), false)
        XCTAssertTrue(try SQL.value(db.path, "SELECT disabled_reason FROM webhook_endpoints WHERE id = '\(endpoint)'")
            .hasPrefix("every attempt failed since "))
        return (endpoint, delivery)
    }

    private func active(_ db: TestDatabase, _ endpoint: String) throws -> Bool {
        try SQL.value(db.path, "SELECT active FROM webhook_endpoints WHERE id = '\(endpoint)'") == "1"
    }

    /// As if the last probe (or the disable) was `interval` ago.
    private func ageProbe(_ db: TestDatabase, _ endpoint: String, _ interval: String) throws {
        try SQL.execute(
            db.path,
            "UPDATE \(health) SET probed_at = \(SQL.timeAgo(db.path, interval)) WHERE endpoint_id = '\(endpoint)'")
    }

    /// The receiver answers 204 from now on: the endpoint's URL moved to such a path.
    private func comeBack(_ db: TestDatabase, _ receiver: Receiver, _ endpoint: String, path: String) throws {
        try SQL.execute(
            db.path, "UPDATE webhook_endpoints SET url = '\(receiver.url(path))' WHERE id = '\(endpoint)'")
        try receiver.expectSecret(
            try SQL.value(db.path, "SELECT secret FROM webhook_endpoints WHERE id = '\(endpoint)'"), forPath: path)
    }

    private func requests(_ receiver: Receiver, _ path: String) throws -> [Receiver.Request] {
        try receiver.requests().filter { $0.path == path }
    }

    private func events(_ receiver: Receiver, _ path: String) throws -> [(type: String, data: [String: Any])] {
        try requests(receiver, path).map { request in
            XCTAssertEqual(request.signatureOK, true, path)
            let body = try XCTUnwrap(JSONSerialization.jsonObject(with: request.body) as? [String: Any])
            return (try XCTUnwrap(body["event_type"] as? String), body["data"] as? [String: Any] ?? [:])
        }
    }

    func testAnEndpointDisabledForFailingRecoversByProbeWithWhatItsOutageDeadLetteredRequeued() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204/alerts", events: ["webhook.*"])
        let (endpoint, first) = try disabledForFailing(db, receiver, path: "/status/500/hook")
        // A delivery dead-lettered days before the outage (a row as its end left it) stays dead.
        let older = try XCTUnwrap(try db.enqueue(["e", #"{"n":-1}"#]).lines.first)
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_deliveries SET next_attempt_at = NULL, attempt_count = 10, last_error = 'non-2xx response: x',
                created_at = \(SQL.timeAgo(db.path, "3 days")) WHERE id = '\(older)'
            """)
        // Events of the outage: dead-lettered at once ("endpoint deleted or disabled"), with the
        // retrying first one. No probe yet: the disable was less than --probe-every ago.
        let second = try XCTUnwrap(try db.enqueue(["e", #"{"n":1}"#]).lines.first)
        let third = try XCTUnwrap(try db.enqueue(["e", #"{"n":2}"#]).lines.first)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(["--disable-after", "5h"]).status, 0)
        XCTAssertEqual(try requests(receiver, "/status/500/hook").count, 2, "no probe before --probe-every")
        for id in [first, second, third] {
            XCTAssertEqual(try db.row(id)["last_error"] as? String, "endpoint deleted or disabled", id)
        }
        try comeBack(db, receiver, endpoint, path: "/status/204/hook")
        try ageProbe(db, endpoint, "61 minutes")
        let probe = try db.deliver(["--disable-after", "5h", "--json"])
        XCTAssertEqual(probe.status, 0, probe.stderr)
        // The newest dead delivery was sent again, with its id, and recorded as any attempt.
        let probed = try requests(receiver, "/status/204/hook")
        XCTAssertEqual(probed.map(\.deliveryID), [third])
        XCTAssertNotNil(try db.row(third)["delivered_at"] as? String)
        XCTAssertEqual(
            try SQL.value(
                db.path, "SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = '\(third)' AND status_code = 204"),
            "1")
        XCTAssertTrue(probe.stderr.contains("endpoint re-enabled"), probe.stderr)
        XCTAssertTrue(probe.stderr.contains("probe of delivery \(third) answered HTTP 204"), probe.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: probe.stdout) as? [String: Any])
        XCTAssertEqual(summary["endpoints_recovered"] as? Int, 1)
        XCTAssertEqual(try active(db, endpoint), true)
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT disabled_reason IS NULL FROM webhook_endpoints WHERE id = '\(endpoint)'"),
            TestBackend.isPostgreSQL(db.path) ? "t" : "1")
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT failure_streak FROM \(health) WHERE endpoint_id = '\(endpoint)'"), "0")
        // Re-queued with their ids and their attempt budget back; the older dead one is not.
        for id in [first, second] {
            let row = try db.row(id)
            XCTAssertEqual(row["attempt_count"] as? Int, 0, id)
            XCTAssertNotNil(row["next_attempt_at"] as? String, id)
        }
        XCTAssertEqual(try db.row(older)["attempt_count"] as? Int, 10)
        XCTAssertTrue(try db.row(older)["next_attempt_at"] is NSNull)
        // The next run sends them, and the announcement to the explicit webhook.* subscriber.
        XCTAssertEqual(try db.deliver(["--disable-after", "5h"]).status, 0)
        XCTAssertEqual(Set(try requests(receiver, "/status/204/hook").map(\.deliveryID)), [first, second, third])
        for id in [first, second] {
            XCTAssertNotNil(try db.row(id)["delivered_at"] as? String, id)
            XCTAssertEqual(try db.row(id)["attempt_count"] as? Int, 1, id)
        }
        let alerts = try events(receiver, "/status/204/alerts")
        XCTAssertEqual(alerts.first?.type, "webhook.endpoint.disabled")
        XCTAssertEqual(alerts.last?.type, "webhook.endpoint.recovered")
        XCTAssertEqual(alerts.filter { $0.type == "webhook.endpoint.recovered" }.count, 1)
        let recovered = try XCTUnwrap(alerts.last?.data)
        XCTAssertEqual(recovered["endpoint_id"] as? String, endpoint)
        XCTAssertEqual(recovered["reason"] as? String, "probe of delivery \(third) answered HTTP 204")
        XCTAssertEqual(recovered["requeued"] as? Int, 2)
        XCTAssertEqual(try db.count(where: "event_type LIKE 'webhook.%' AND endpoint_id = '\(endpoint)'"), 0)
    }

    func testAFailingProbeKeepsTheEndpointDisabledRecordsTheAttemptAndTheNextWaitsForProbeEvery() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/204/alerts", events: ["webhook.delivery.dead"])
        let (endpoint, delivery) = try disabledForFailing(db, receiver, path: "/status/503/hook")
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(["--disable-after", "5h"]).status, 0)  // dead-lettered: disabled
        XCTAssertEqual(try db.row(delivery)["attempt_count"] as? Int, 3)
        try ageProbe(db, endpoint, "61 minutes")
        XCTAssertEqual(try db.deliver(["--disable-after", "5h", "--probe-every", "0"]).status, 0)
        XCTAssertEqual(try requests(receiver, "/status/503/hook").count, 2, "--probe-every 0: never")
        XCTAssertEqual(try events(receiver, "/status/204/alerts").map(\.type), ["webhook.delivery.dead"])
        let run = try db.deliver(["--disable-after", "5h"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try requests(receiver, "/status/503/hook").map(\.deliveryID), [delivery, delivery, delivery])
        XCTAssertEqual(try active(db, endpoint), false)
        let row = try db.row(delivery)
        XCTAssertEqual(row["attempt_count"] as? Int, 4)
        XCTAssertEqual(row["last_status_code"] as? Int, 503)
        XCTAssertTrue(row["next_attempt_at"] is NSNull, "dead again, not retried")
        XCTAssertEqual(
            try SQL.value(
                db.path,
                "SELECT count(*) FROM webhook_delivery_attempts WHERE delivery_id = '\(delivery)' AND status_code = 503"),
            "3")
        // The next probe waits for --probe-every after this one, on any run.
        XCTAssertEqual(try db.deliver(["--disable-after", "5h"]).status, 0)
        XCTAssertEqual(try events(receiver, "/status/204/alerts").count, 1, "a failed probe is not announced again")
        XCTAssertEqual(try db.deliver(["--disable-after", "5h", "--probe-every", "30m"]).status, 0)
        XCTAssertEqual(try requests(receiver, "/status/503/hook").count, 3)
        try ageProbe(db, endpoint, "31 minutes")
        XCTAssertEqual(try db.deliver(["--disable-after", "5h", "--probe-every", "30m"]).status, 0)
        XCTAssertEqual(try requests(receiver, "/status/503/hook").count, 4)
    }

    func testEndpointsDisabledByAnOperatorOrBy410AreNeverProbed() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let gone = try db.addEndpoint(on: receiver, path: "/status/410/gone", events: ["e"])
        let byHand = try db.addEndpoint(on: receiver, path: "/status/204/hand", events: ["e"])
        XCTAssertEqual(try db.enqueue(["e", "{}"]).status, 0)
        XCTAssertEqual(try runTool("keysat-webhooks", ["endpoint", "disable", byHand, "--db", db.path]).status, 0)
        XCTAssertEqual(try db.deliver().status, 0)
        // And one a run disabled for failing, then an operator disabled too: probes end.
        let (failing, _) = try disabledForFailing(db, receiver, path: "/status/500/failing", event: "f")
        XCTAssertEqual(try runTool("keysat-webhooks", ["endpoint", "disable", failing, "--db", db.path]).status, 0)
        XCTAssertEqual(try active(db, gone), false)
        let before = try receiver.requests().count
        try SQL.execute(
            db.path,
            """
            INSERT INTO \(health) (endpoint_id, probed_at) VALUES ('\(byHand)', \(SQL.timeAgo(db.path, "1 day")))
            ON CONFLICT (endpoint_id) DO UPDATE SET probed_at = excluded.probed_at
            """)
        for endpoint in [gone, failing] { try ageProbe(db, endpoint, "1 day") }
        XCTAssertEqual(try db.deliver(["--probe-every", "1s"]).status, 0)
        XCTAssertEqual(try receiver.requests().count, before)
        for endpoint in [gone, byHand, failing] { XCTAssertEqual(try active(db, endpoint), false) }
    }

    func testEndpointEnableRequeuesByHandAndAnyEnableResetsTheFailingStreak() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let (endpoint, first) = try disabledForFailing(db, receiver, path: "/status/500/hook")
        let second = try XCTUnwrap(try db.enqueue(["e", "{}"]).lines.first)
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(["--probe-every", "0"]).status, 0)
        // Bad input changes nothing.
        let dump = try SQL.dump(db.path)
        let unknown = try runTool("keysat-webhooks", ["endpoint", "enable", "nosuch", "--requeue", "--db", db.path])
        XCTAssertEqual(unknown.status, 65, unknown.stderr)
        XCTAssertTrue(unknown.stderr.hasPrefix("keysat-webhooks: error: "), unknown.stderr)
        XCTAssertEqual(unknown.stderr.split(separator: "\n").count, 1)
        XCTAssertEqual(try SQL.dump(db.path), dump)
        try comeBack(db, receiver, endpoint, path: "/status/204/hook")
        let enable = try runTool(
            "keysat-webhooks", ["endpoint", "enable", endpoint, "--requeue", "--json", "--db", db.path])
        XCTAssertEqual(enable.status, 0, enable.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: enable.stdout) as? [String: Any])
        XCTAssertEqual(object["requeued"] as? Int, 2)
        XCTAssertEqual(object["active"] as? Bool, true)
        XCTAssertEqual(
            try SQL.value(db.path, "SELECT failure_streak FROM \(health) WHERE endpoint_id = '\(endpoint)'"), "0")
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(Set(try requests(receiver, "/status/204/hook").map(\.deliveryID)), [first, second])
        for id in [first, second] { XCTAssertEqual(try db.row(id)["attempt_count"] as? Int, 1, id) }
        // A plain enable after another auto-disable: the streak starts again, so one more
        // failure does not disable it at once (its earlier failures were 6 hours ago).
        let (again, _) = try disabledForFailing(db, receiver, path: "/status/500/again", event: "g")
        let plain = try runTool("keysat-webhooks", ["endpoint", "enable", again, "--db", db.path])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(plain.output, "")
        XCTAssertEqual(try db.enqueue(["g", "{}"]).status, 0)
        XCTAssertEqual(try db.deliver(["--disable-after", "5h"]).status, 0)
        XCTAssertEqual(try active(db, again), true)
    }

    /// Two runs at once probe an endpoint once (PostgreSQL: runs share the queue).
    func testTwoRunsAtOnceProbeOnce() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        guard TestBackend.isPostgreSQL(db.path) else { throw XCTSkip("runs overlap on PostgreSQL only") }
        let receiver = try Receiver(in: scratch)
        let (endpoint, _) = try disabledForFailing(db, receiver, path: "/status/500/hook")
        try db.makeAllDue()
        XCTAssertEqual(try db.deliver(["--probe-every", "0"]).status, 0)
        try comeBack(db, receiver, endpoint, path: "/slow/500/500/hook")
        try ageProbe(db, endpoint, "2 hours")
        let runs = try (0..<4).map { _ in try db.startDeliver([]) }
        for run in runs { run.waitUntilExit() }
        XCTAssertEqual(try requests(receiver, "/slow/500/500/hook").count, 1)
        XCTAssertEqual(try active(db, endpoint), false)
    }
}
