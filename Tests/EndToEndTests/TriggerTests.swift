import Foundation
import XCTest

/// `keysat-webhooks trigger` (issue 23): samples of Keysat's event types, signed as real
/// events (checked by the receiver with Python's hmac), marked `"test": true`, to the
/// subscribers keysat-enqueue would choose or to one endpoint.
final class TriggerTests: XCTestCase {
    private func trigger(_ db: TestDatabase, _ arguments: [String]) throws -> ProcessResult {
        try runTool("keysat-webhooks", ["trigger"] + arguments + ["--db", db.path])
    }

    private func body(_ request: Receiver.Request) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: request.body) as? [String: Any])
    }

    func testSampleGoesToSubscribersSignedAndMarkedAsTest() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/name/200", events: ["license.issued"])
        try db.addEndpoint(on: receiver, path: "/star/200", events: ["*"])
        try db.addEndpoint(on: receiver, path: "/pattern/200", events: ["license.*"])
        try db.addEndpoint(on: receiver, path: "/other/200", events: ["machine.activated"])
        try db.addEndpoint(on: receiver, path: "/operational/200", events: ["webhook.*"])
        let disabled = try db.addEndpoint(on: receiver, path: "/disabled/200", events: ["*"])
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "disable", disabled, "--db", db.path]).status, 0)

        let result = try trigger(db, ["license.issued", "--no-kick", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        XCTAssertEqual(object["test"] as? Bool, true)
        XCTAssertEqual((object["deliveries"] as? [[String: Any]])?.count, 3)
        XCTAssertEqual(try receiver.requests().count, 0, "--no-kick: nothing sent yet")
        XCTAssertEqual(try db.deliver().status, 0)

        // (An operational event the operational endpoint may get is not the sample's.)
        let requests = try receiver.requests().filter { $0.headers["x-keysat-event"] == "license.issued" }
        XCTAssertEqual(requests.count, 3)
        XCTAssertEqual(Set(requests.map(\.path)), ["/name/200", "/star/200", "/pattern/200"])
        for request in requests {
            XCTAssertEqual(request.signatureOK, true, "checked by the receiver with Python's hmac")
            XCTAssertEqual(request.headers["x-keysat-event"], "license.issued")
            let envelope = try body(request)
            XCTAssertEqual(envelope["test"] as? Bool, true)
            XCTAssertEqual(envelope["event_type"] as? String, "license.issued")
            let data = try XCTUnwrap(envelope["data"] as? [String: Any])
            XCTAssertNotNil(data["license_id"] as? String, "the catalogue's sample")
            XCTAssertNotNil(data["customer_email"] as? String)
        }

        // A real event carries no "test" member at all.
        XCTAssertEqual(try db.enqueue(["machine.activated", #"{"machine_id":"m1"}"#]).status, 0)
        XCTAssertEqual(try db.deliver().status, 0)
        let real = try XCTUnwrap(receiver.requests().first { $0.path == "/other/200" })
        XCTAssertNil(try body(real)["test"])
    }

    func testOneEndpointWhateverItSubscribesToWithGivenData() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let chosen = try db.addEndpoint(on: receiver, path: "/one/204", events: ["invoice.settled"])
        try db.addEndpoint(on: receiver, path: "/star/200", events: ["*"])

        let result = try trigger(
            db,
            [
                "machine.activated", "--endpoint", String(chosen.prefix(8)), "--data",
                #"{"machine_id":"given"}"#, "--no-kick",
            ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.count, 1, result.output)
        XCTAssertTrue(result.output.contains(chosen), result.output)
        XCTAssertEqual(try db.deliver().status, 0)
        let requests = try receiver.requests()
        XCTAssertEqual(requests.map(\.path), ["/one/204"], "that endpoint alone")
        XCTAssertEqual(requests.first?.signatureOK, true)
        let envelope = try body(try XCTUnwrap(requests.first))
        XCTAssertEqual(envelope["test"] as? Bool, true)
        XCTAssertEqual((envelope["data"] as? [String: Any])?["machine_id"] as? String, "given")
    }

    func testKicksARunThatSendsTheSample() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        try db.addEndpoint(on: receiver, path: "/status/200", events: ["license.*"])
        let result = try trigger(db, ["license.revoked"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let deadline = Date().addingTimeInterval(20)
        while try receiver.requests().isEmpty && Date() < deadline { usleep(100_000) }
        let request = try XCTUnwrap(receiver.requests().first, "the run trigger started sent it")
        XCTAssertEqual(request.signatureOK, true)
        XCTAssertEqual(try body(request)["test"] as? Bool, true)
        // Let the started run finish (it lingers a second) before the folder goes.
        let waited = Date().addingTimeInterval(10)
        while try db.count(where: "delivered_at IS NULL") > 0 && Date() < waited { usleep(100_000) }
        usleep(1_500_000)
    }

    func testListPrintsEveryTypeWithItsSample() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let catalogue = [
            "license.issued", "license.revoked", "license.suspended", "machine.activated", "invoice.settled",
        ]
        let text = try trigger(db, ["--list"])
        XCTAssertEqual(text.status, 0, text.stderr)
        for type in catalogue { XCTAssertTrue(text.lines.contains(type), "\(type) in \(text.output)") }
        let json = try trigger(db, ["--list", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: json.stdout) as? [[String: Any]])
        XCTAssertEqual(list.compactMap { $0["event_type"] as? String }, catalogue)
        for entry in list { XCTAssertNotNil(entry["data"] as? [String: Any], "\(entry)") }
    }

    func testRefusalsChangeNothing() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let endpoint = try db.addEndpoint(events: ["*"])
        XCTAssertEqual(
            try runTool("keysat-webhooks", ["endpoint", "disable", endpoint, "--db", db.path]).status, 0)
        let other = try db.addEndpoint(events: ["*"])
        let before = try SQL.dump(db.path)
        for (arguments, status) in [
            (["order.created", "--no-kick"], 65),  // no sample of it
            (["license.issued", "--data", "{oops", "--no-kick"], 65),
            (["license.issued", "--endpoint", endpoint, "--no-kick"], 65),  // disabled
            (["license.issued", "--endpoint", "nope", "--no-kick"], 65),
            (["-bad", "--no-kick"], 64),
            ([], 64),
            (["--list", "license.issued"], 64),
        ] as [([String], Int32)] {
            let result = try trigger(db, arguments)
            XCTAssertEqual(result.status, status, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.hasPrefix("keysat-webhooks: error: "), result.stderr)
        }
        XCTAssertEqual(try SQL.dump(db.path), before)
        // A type without a sample goes with --data.
        let given = try trigger(db, ["order.created", "--data", "{}", "--no-kick"])
        XCTAssertEqual(given.status, 0, given.stderr)
        XCTAssertTrue(given.output.contains(other), given.output)
    }
}
