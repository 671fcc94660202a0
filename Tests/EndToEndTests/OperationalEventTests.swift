import Foundation
import XCTest

/// keysat-deliver's events about itself (issue 22): webhook.endpoint.failing, .disabled and
/// webhook.delivery.dead, to explicit subscribers only, on the backend KEYSAT_TEST_BACKEND
/// names. Time is moved as the auto-disable tests move it: the failing endpoint's attempts are
/// dated back in the database.
final class OperationalEventTests: XCTestCase {
    /// The operational events a receiver path got, in arrival order: (event type, data).
    private func events(_ receiver: Receiver, at path: String) throws -> [(type: String, data: [String: Any])]
    {
        try receiver.requests().filter { $0.path == path }.map { request in
            XCTAssertEqual(request.signatureOK, true, path)
            let body = try XCTUnwrap(JSONSerialization.jsonObject(with: request.body) as? [String: Any])
            XCTAssertNotNil(body["timestamp"] as? String)
            return (try XCTUnwrap(body["event_type"] as? String), body["data"] as? [String: Any] ?? [:])
        }
    }

    /// Dates every attempt of `endpoint` back `interval` ("330 minutes"), and makes its
    /// pending deliveries due.
    private func ageAttempts(_ db: TestDatabase, of endpoint: String, _ interval: String) throws {
        try SQL.execute(
            db.path,
            """
            UPDATE webhook_delivery_attempts SET started_at = \(SQL.timeAgo(db.path, interval))
            WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE endpoint_id = '\(endpoint)')
            """)
        try db.makeAllDue()
    }

    func testFailingAtHalfAndNinetyPercentOnceEachThenDisabledThenDeadGoToExplicitSubscribersOnly() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        // It subscribes to webhook.* too: it must hear nothing about itself.
        let failing = try db.addEndpoint(
            on: receiver, path: "/status/500/failing", events: ["e", "webhook.*"])
        try db.addEndpoint(on: receiver, path: "/status/204/alerts", events: ["webhook.*"])
        try db.addEndpoint(on: receiver, path: "/status/204/dead", events: ["webhook.delivery.dead"])
        try db.addEndpoint(on: receiver, path: "/status/204/all")
        XCTAssertEqual(try db.enqueue(["e", #"{"n":1}"#]).status, 0)
        let run = { (disableAfter: String, expected: String) in
            let result = try db.deliver(["--disable-after", disableAfter])
            XCTAssertEqual(result.status, 0, "\(expected): \(result.stderr)")
            try db.makeAllDue()
        }
        try run("10h", "the first failure")
        let sent = { (path: String) in try self.events(receiver, at: path).map(\.type) }
        // The streak began 330 minutes ago, and stays so: a run's clock is the host's, so the
        // streak's share of --disable-after moves with the option. 55 % of 10 h: one event at
        // 50 %, and no other in the next runs of the same streak.
        try ageAttempts(db, of: failing, "330 minutes")
        try run("10h", "55 %")
        try run("10h", "the 50 % event is sent; still 55 %")
        try run("10h", "still 55 %")
        XCTAssertEqual(try sent("/status/204/alerts"), ["webhook.endpoint.failing"])
        // 92 % of 6 h: one event at 90 %, once.
        try run("6h", "92 %")
        try run("6h", "the 90 % event is sent; still 92 %")
        try run("6h", "still 92 %")
        XCTAssertEqual(
            try sent("/status/204/alerts"), ["webhook.endpoint.failing", "webhook.endpoint.failing"])
        let levels = try events(receiver, at: "/status/204/alerts").map(\.data)
        XCTAssertEqual(levels.map { $0["percent"] as? Int }, [50, 90])
        XCTAssertEqual(levels.map { $0["disable_after_seconds"] as? Int }, [36_000, 21_600])
        for data in levels {
            XCTAssertEqual(data["endpoint_id"] as? String, failing)
            let since = try epochSeconds(data["failing_since"])
            XCTAssertEqual(since, Date().timeIntervalSince1970 - 330 * 60, accuracy: 60)
            XCTAssertEqual(
                try epochSeconds(data["disables_at"]) - since,
                Double(data["disable_after_seconds"] as? Int ?? 0),
                accuracy: 0.001)
        }
        // Past 5 h: disabled, and said so; the run after dead-letters its pending delivery
        // ("endpoint deleted or disabled"), and says so too.
        try run("5h", "disabled")
        try run("5h", "dead-lettered")
        try run("5h", "the rest is sent")
        XCTAssertEqual(
            try sent("/status/204/alerts"),
            [
                "webhook.endpoint.failing", "webhook.endpoint.failing", "webhook.endpoint.disabled",
                "webhook.delivery.dead",
            ])
        let alerts = try events(receiver, at: "/status/204/alerts")
        XCTAssertEqual(alerts[2].data["endpoint_id"] as? String, failing)
        XCTAssertTrue((alerts[2].data["reason"] as? String ?? "").hasPrefix("every attempt failed since "))
        let original = try SQL.value(
            db.path, "SELECT id FROM webhook_deliveries WHERE endpoint_id = '\(failing)'")
        let dead = alerts[3].data
        XCTAssertEqual(dead["endpoint_id"] as? String, failing)
        XCTAssertEqual(dead["delivery_id"] as? String, original)
        XCTAssertEqual(dead["event_type"] as? String, "e")
        XCTAssertEqual(dead["attempts"] as? Int, try db.row(original)["attempt_count"] as? Int)
        XCTAssertTrue(dead.keys.contains("last_status"))
        XCTAssertEqual(dead["last_error"] as? String, "endpoint deleted or disabled")
        XCTAssertEqual(
            Set(dead.keys),
            ["endpoint_id", "delivery_id", "event_type", "attempts", "last_status", "last_error"])
        // The exact name takes only that event; '*' and the endpoint they are about, none.
        XCTAssertEqual(try sent("/status/204/dead"), ["webhook.delivery.dead"])
        XCTAssertEqual(try sent("/status/204/all"), ["e"])
        XCTAssertEqual(Set(try sent("/status/500/failing")), ["e"])
        // The webhook.* events were written as keysat-enqueue writes any event.
        XCTAssertEqual(
            try db.count(where: "event_type LIKE 'webhook.%' AND endpoint_id = '\(failing)'"), 0)
        XCTAssertEqual(try db.count(where: "event_type LIKE 'webhook.%' AND delivered_at IS NULL"), 0)
    }

    func testASuccessEndsTheStreakAndTheNextStreakIsAnnouncedAgain() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let flaky = try db.addEndpoint(on: receiver, path: "/status/500/flaky", events: ["e"])
        try db.addEndpoint(on: receiver, path: "/status/204/alerts", events: ["webhook.*"])
        let run = {
            let result = try db.deliver(["--disable-after", "10h"])
            XCTAssertEqual(result.status, 0, result.stderr)
            try db.makeAllDue()
        }
        let point = { (path: String) in
            let result = try runTool(
                "keysat-webhooks",
                ["endpoint", "update", flaky, "--url", receiver.url(path), "--db", db.path])
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        let first = try XCTUnwrap(try db.enqueue(["e", "1"]).lines.first)
        try run()
        try ageAttempts(db, of: flaky, "330 minutes")
        try run()  // 55 %: said
        try point("/status/204/flaky")
        try run()  // the 50 % event is sent, and the delivery: the streak ends
        XCTAssertTrue(try db.row(first)["delivered_at"] is String)
        try point("/status/500/flaky")
        let second = try XCTUnwrap(try db.enqueue(["e", "2"]).lines.first)
        try run()  // a new streak
        // The old streak before the success, the new one 330 minutes ago, after it.
        let attempts = "webhook_delivery_attempts SET started_at = "
        try SQL.execute(
            db.path, "UPDATE \(attempts)\(SQL.timeAgo(db.path, "500 minutes")) WHERE delivery_id = '\(first)'"
        )
        try SQL.execute(
            db.path,
            "UPDATE \(attempts)\(SQL.timeAgo(db.path, "400 minutes")) WHERE delivery_id = '\(first)' AND status_code = 204"
        )
        try SQL.execute(
            db.path,
            "UPDATE \(attempts)\(SQL.timeAgo(db.path, "330 minutes")) WHERE delivery_id = '\(second)'")
        try db.makeAllDue()
        try run()  // 55 % of the new streak: said again
        try run()
        try run()
        let alerts = try events(receiver, at: "/status/204/alerts")
        XCTAssertEqual(alerts.map(\.type), ["webhook.endpoint.failing", "webhook.endpoint.failing"])
        XCTAssertEqual(alerts.map { $0.data["percent"] as? Int }, [50, 50])
        let since = try alerts.map { try epochSeconds($0.data["failing_since"]) }
        XCTAssertEqual(since[1] - since[0], 0, accuracy: 120, "both 330 minutes before their run")
        XCTAssertNotEqual(
            alerts[0].data["failing_since"] as? String, alerts[1].data["failing_since"] as? String)
    }

    func testADeliveryDeadAfterItsLastAttemptIsAnnouncedWithItsStatusAndError() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let bad = try db.addEndpoint(on: receiver, path: "/status/500/bad", events: ["order.*"])
        try db.addEndpoint(on: receiver, path: "/status/204/alerts", events: ["webhook.delivery.*"])
        let id = try XCTUnwrap(try db.enqueue(["order.paid", #"{"secret-ish":"payload"}"#]).lines.first)
        try SQL.execute(db.path, "UPDATE webhook_deliveries SET attempt_count = 9 WHERE id = '\(id)'")
        let last = try db.deliver()
        XCTAssertEqual(last.status, 0, last.stderr)
        XCTAssertTrue(try db.row(id)["next_attempt_at"] is NSNull, "dead-lettered")
        XCTAssertEqual(try db.deliver().status, 0)
        let alerts = try events(receiver, at: "/status/204/alerts")
        XCTAssertEqual(alerts.map(\.type), ["webhook.delivery.dead"])
        let data = try XCTUnwrap(alerts.first?.data)
        XCTAssertEqual(data["endpoint_id"] as? String, bad)
        XCTAssertEqual(data["delivery_id"] as? String, id)
        XCTAssertEqual(data["event_type"] as? String, "order.paid")
        XCTAssertEqual(data["attempts"] as? Int, 10)
        XCTAssertEqual(data["last_status"] as? Int, 500)
        XCTAssertTrue((data["last_error"] as? String ?? "").hasPrefix("non-2xx response: receiver says 500"))
        // Neither the payload nor a secret is in it.
        let body = try XCTUnwrap(receiver.requests().last { $0.path == "/status/204/alerts" }?.body)
        let text = String(decoding: body, as: UTF8.self)
        XCTAssertFalse(text.contains("payload"), text)
        let secret = try SQL.value(db.path, "SELECT secret FROM webhook_endpoints WHERE id = '\(bad)'")
        XCTAssertFalse(text.contains(secret), text)
    }

    func testAnEndpointThatAnswers410IsAnnouncedDisabledAndItsDeliveryDead() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let gone = try db.addEndpoint(on: receiver, path: "/status/410/gone", events: ["e"])
        try db.addEndpoint(
            on: receiver, path: "/status/204/alerts", events: ["webhook.endpoint.*", "webhook.delivery.dead"])
        let id = try XCTUnwrap(try db.enqueue(["e", "{}"]).lines.first)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try db.deliver().status, 0)
        let alerts = try events(receiver, at: "/status/204/alerts")
        XCTAssertEqual(alerts.map(\.type).sorted(), ["webhook.delivery.dead", "webhook.endpoint.disabled"])
        let disabled = try XCTUnwrap(alerts.first { $0.type == "webhook.endpoint.disabled" }?.data)
        XCTAssertEqual(disabled["endpoint_id"] as? String, gone)
        XCTAssertEqual(disabled["reason"] as? String, "receiver answered 410 Gone")
        let dead = try XCTUnwrap(alerts.first { $0.type == "webhook.delivery.dead" }?.data)
        XCTAssertEqual(dead["delivery_id"] as? String, id)
        XCTAssertEqual(dead["attempts"] as? Int, 1)
        XCTAssertEqual(dead["last_status"] as? Int, 410)
    }

    func testADeadLetteredOperationalEventIsNotAnnouncedAgain() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let bad = try db.addEndpoint(on: receiver, path: "/status/500/bad", events: ["e"])
        // Two alert receivers that fail too: each would hear of the other's dead letters.
        let one = try db.addEndpoint(on: receiver, path: "/status/500/alerts-one", events: ["webhook.*"])
        let two = try db.addEndpoint(on: receiver, path: "/status/500/alerts-two", events: ["webhook.*"])
        let id = try XCTUnwrap(try db.enqueue(["e", "{}"]).lines.first)
        try SQL.execute(db.path, "UPDATE webhook_deliveries SET attempt_count = 9 WHERE id = '\(id)'")
        XCTAssertEqual(try db.deliver().status, 0)
        // One event about the dead delivery for each alert receiver, and no more, however often
        // they fail for the last time.
        XCTAssertEqual(try db.count(where: "event_type = 'webhook.delivery.dead'"), 2)
        for _ in 0..<2 {
            try SQL.execute(
                db.path,
                "UPDATE webhook_deliveries SET attempt_count = 9 WHERE event_type LIKE 'webhook.%' AND next_attempt_at IS NOT NULL"
            )
            try db.makeAllDue()
            XCTAssertEqual(try db.deliver().status, 0)
        }
        XCTAssertEqual(try db.count(where: "event_type = 'webhook.delivery.dead'"), 2)
        XCTAssertEqual(
            try db.count(where: "event_type = 'webhook.delivery.dead' AND next_attempt_at IS NULL"), 2)
        XCTAssertEqual(try db.count(where: "endpoint_id IN ('\(one)', '\(two)') AND event_type = 'e'"), 0)
        XCTAssertEqual(try db.count(where: "endpoint_id = '\(bad)' AND event_type LIKE 'webhook.%'"), 0)
        XCTAssertEqual(Set(try receiver.requests().map(\.path)).count, 3)
    }

    func testAnEventThatCannotBeWrittenCostsNoOutcome() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/500/bad", events: ["e"])
        let alerts = try db.addEndpoint(on: receiver, path: "/status/204/alerts", events: ["webhook.*"])
        try SQL.failInserts(db.path, endpoint: alerts)
        let id = try XCTUnwrap(try db.enqueue(["e", "{}"]).lines.first)
        try SQL.execute(db.path, "UPDATE webhook_deliveries SET attempt_count = 9 WHERE id = '\(id)'")
        let result = try db.deliver()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(
            result.stderr.contains(
                "warning: operational event not enqueued event_type=webhook.delivery.dead"),
            result.stderr)
        // The outcome stands: dead-lettered after its 10th attempt, the attempt in the history.
        let row = try db.row(id)
        XCTAssertEqual(row["attempt_count"] as? Int, 10)
        XCTAssertEqual(row["last_status_code"] as? Int, 500)
        XCTAssertTrue(row["next_attempt_at"] is NSNull)
        XCTAssertEqual(try db.count("webhook_delivery_attempts"), 1)
        XCTAssertEqual(try db.count(where: "event_type LIKE 'webhook.%'"), 0)
    }

    /// The service cannot enqueue an event in keysat-webhooks' own namespace: an alerting
    /// endpoint on `webhook.*` trusts what it gets there to come from keysat-deliver.
    func testKeysatEnqueueRefusesTheOperationalNamespace() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        _ = try db.addEndpoint("http://127.0.0.1:9/alerts", events: ["webhook.*"])
        for type in ["webhook.endpoint.disabled", "webhook.delivery.dead", "webhook.anything"] {
            let result = try db.enqueue([type, "{}"])
            XCTAssertEqual(result.status, 65, result.stderr)
            XCTAssertTrue(result.stderr.hasPrefix("keysat-enqueue: error: event type \(type) is in keysat-webhooks' own namespace"), result.stderr)
        }
        XCTAssertEqual(try db.count(), 0, "nothing written")
        XCTAssertEqual(try db.enqueue(["webhooks.x", "{}"]).status, 0, "a name that only begins alike is the service's")
    }
}
