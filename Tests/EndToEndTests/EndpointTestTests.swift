import Foundation
import XCTest

/// `keysat-webhooks endpoint test` (issue 15): one signed delivery to one endpoint, through the
/// engine, policy and signing of a run, recorded as a delivery of its own.
final class EndpointTestTests: XCTestCase {
    func testOneSignedDeliveryToOneEndpointRecordedAsItsOwn() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let good = try db.addEndpoint(on: receiver, path: "/status/204", events: ["license.issued"])
        let other = try db.addEndpoint(on: receiver, path: "/status/200")
        // Something else is due: a test sends its own delivery only.
        _ = try db.enqueue(["license.issued", "{}"])

        let result = try runTool(
            "keysat-webhooks",
            ["endpoint", "test", String(good.prefix(8)), "--data", #"{"hello":"world"}"#, "--db", db.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.output.hasPrefix("delivered: HTTP 204 in "), result.output)
        let requests = try receiver.requests()
        XCTAssertEqual(requests.count, 1, "only the test delivery was sent")
        let request = try XCTUnwrap(requests.first)
        XCTAssertEqual(request.path, "/status/204")
        XCTAssertEqual(request.signatureOK, true, "checked by the receiver with Python's hmac")
        XCTAssertEqual(request.headers["x-keysat-event"], "webhook.test", "subscriptions aside")
        let body = try XCTUnwrap(JSONSerialization.jsonObject(with: request.body) as? [String: Any])
        XCTAssertEqual((body["data"] as? [String: Any])?["hello"] as? String, "world")
        // Recorded: it shows in deliveries list, delivered, with its attempt.
        let row = try XCTUnwrap(
            SQL.rows(db.path, "SELECT * FROM webhook_deliveries WHERE id = '\(request.deliveryID)'").first)
        XCTAssertEqual(row["endpoint_id"] as? String, good)
        XCTAssertTrue(row["delivered_at"] is String)
        XCTAssertEqual(
            try db.count("webhook_delivery_attempts", where: "delivery_id = '\(request.deliveryID)'"), 1)
        XCTAssertEqual(try db.count(where: "endpoint_id = '\(other)' AND delivered_at IS NULL"), 1)

        // A failing receiver: exit 1, the status and the response shown, retried like any delivery.
        let failing = try db.addEndpoint(on: receiver, path: "/status/500")
        let failed = try runTool("keysat-webhooks", ["endpoint", "test", failing, "--json", "--db", db.path])
        XCTAssertEqual(failed.status, 1, failed.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: failed.stdout) as? [String: Any])
        XCTAssertEqual(object["delivered"] as? Bool, false)
        XCTAssertEqual(object["status_code"] as? Int, 500)
        XCTAssertTrue((object["response_body"] as? String ?? "").hasPrefix("receiver says 500"), "\(object)")
        XCTAssertTrue(object["next_attempt_at"] is String, "a failed test is retried")

        // Refused before anything is written: unknown or disabled endpoints, bad data.
        let before = try db.count()
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "test", "ffffffff", "--db", db.path]).status, 65)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "disable", other, "--db", db.path]).status, 0)
        let disabled = try runTool("keysat-webhooks", ["endpoint", "test", other, "--db", db.path])
        XCTAssertEqual(disabled.status, 65, disabled.stderr)
        XCTAssertTrue(disabled.stderr.contains("disabled"), disabled.stderr)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "test", good, "--data", "{", "--db", db.path]).status,
            65)
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "test", good, "--timeout", "0", "--db", db.path])
                .status, 64)
        XCTAssertEqual(try db.count(), before)
    }

    func testTheNetworkPolicyAppliesToTests() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint(on: receiver, path: "/status/204")
        let refused = try runTool(
            "keysat-webhooks", ["endpoint", "test", id, "--db", db.path],
            environment: ["KEYSAT_ALLOW_NETWORKS": ""])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.output.contains("not allowed by the network policy"), refused.output)
        XCTAssertEqual(try receiver.requests().count, 0)
        let allowed = try runTool(
            "keysat-webhooks", ["endpoint", "test", id, "--allow-network", "127.0.0.1", "--db", db.path],
            environment: ["KEYSAT_ALLOW_NETWORKS": ""])
        XCTAssertEqual(allowed.status, 0, allowed.output + allowed.stderr)
    }

    /// An `endpoint test` killed while its request is out leaves a pending delivery that a later
    /// run sends and stats counts (issue 20: it left a row no run sent and no purge deleted).
    func testAnInterruptedTestLeavesAPendingDelivery() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let hanging = try db.addEndpoint(on: receiver, path: "/hang")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("keysat-webhooks"))
        process.arguments = ["endpoint", "test", hanging, "--timeout", "30", "--allow-network", "127.0.0.1", "--db", db.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while try receiver.requests().isEmpty && Date() < deadline { usleep(50_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(try receiver.requests().count, 1)
        XCTAssertEqual(try db.count(where: "delivered_at IS NULL AND next_attempt_at IS NOT NULL"), 1, "pending")
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().count, 1, "not due while a test could still be sending it")
        // Once due, a run sends it as any delivery (to a receiver that now answers). On
        // PostgreSQL the test's claim on it lasts until then: it ends with the time passing.
        try SQL.execute(db.path, "UPDATE webhook_endpoints SET url = '\(receiver.url("/status/204/after"))'")
        try db.makeAllDue()
        try SQL.endLeases(db.path)
        XCTAssertEqual(try db.deliver().status, 0)
        XCTAssertEqual(try receiver.requests().last?.path, "/status/204/after")
        XCTAssertEqual(try db.count(where: "delivered_at IS NOT NULL"), 1)
    }
}
