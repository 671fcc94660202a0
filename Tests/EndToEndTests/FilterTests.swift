import Foundation
import XCTest

/// Content filters (issue 23), through the programs, on either backend (KEYSAT_TEST_BACKEND):
/// real enqueues, a real receiver that gets or does not get each event, and the rows written
/// (a non-matching endpoint gets none); refusals that change nothing; a change that applies to
/// later events only; a stored filter this program cannot read holding its endpoint.
final class FilterTests: XCTestCase {
    private func webhooks(_ db: TestDatabase, _ arguments: [String]) throws -> ProcessResult {
        try runTool("keysat-webhooks", arguments + ["--db", db.path])
    }

    /// The `n` of each `license.issued` event each path received, sorted.
    private func received(_ receiver: Receiver) throws -> [String: [Int]] {
        var found: [String: [Int]] = [:]
        for request in try receiver.requests() where request.headers["x-keysat-event"] == "license.issued" {
            let envelope = try XCTUnwrap(JSONSerialization.jsonObject(with: request.body) as? [String: Any])
            let data = try XCTUnwrap(envelope["data"] as? [String: Any])
            found[request.path, default: []].append(try XCTUnwrap(data["n"] as? Int))
        }
        return found.mapValues { $0.sorted() }
    }

    private func addFiltered(_ db: TestDatabase, _ receiver: Receiver, _ path: String, _ filter: String?) throws
        -> String
    {
        let id = try db.addEndpoint(on: receiver, path: path, events: ["license.issued"])
        if let filter {
            let result = try webhooks(db, ["endpoint", "update", id, "--filter", filter])
            XCTAssertEqual(result.status, 0, "\(filter): \(result.stderr)")
        }
        return id
    }

    func testEachOperatorTakesWhatItMatchesAndNothingElse() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        // Three events: n 1 to 3. Each filter's events worked out by hand.
        let cases: [(String, String?, [Int])] = [
            ("/none/200", nil, [1, 2, 3]),
            ("/literal/200", #"{"data":{"plan":"pro"}}"#, [1]),
            ("/eq/200", #"{"data":{"plan":{"$eq":"pro"}}}"#, [1]),
            ("/ne/200", #"{"data":{"plan":{"$ne":"pro"}}}"#, [2, 3]),
            ("/in/200", #"{"data":{"plan":{"$in":["pro","team"]}}}"#, [1, 3]),
            ("/nin/200", #"{"data":{"plan":{"$nin":["pro","team"]}}}"#, [2]),
            ("/gt/200", #"{"data":{"seats":{"$gt":3}}}"#, [1]),  // n 3's seats are the string "10"
            ("/gte/200", #"{"data":{"seats":{"$gte":3}}}"#, [1, 2]),
            ("/lt/200", #"{"data":{"seats":{"$lt":10}}}"#, [2]),
            ("/lte/200", #"{"data":{"seats":{"$lte":10.0}}}"#, [1, 2]),
            ("/exists/200", #"{"data":{"email":{"$exists":true}}}"#, [1, 2]),
            ("/starts/200", #"{"data":{"email":{"$startsWith":"ops@"}}}"#, [1]),
            ("/and/200", #"{"$and":[{"data":{"plan":"pro"}},{"data":{"tags":"vip"}}]}"#, [1]),
            ("/or/200", #"{"$or":[{"data":{"plan":"free"}},{"data":{"seats":"10"}}]}"#, [2, 3]),
            ("/not/200", #"{"$not":{"data":{"email":{"$exists":true}}}}"#, [3]),
            ("/type/200", #"{"event_type":{"$startsWith":"machine."}}"#, []),
        ]
        var ids: [String: String] = [:]
        for (path, filter, _) in cases { ids[path] = try addFiltered(db, receiver, path, filter) }
        let events = [
            #"{"n":1,"plan":"pro","seats":10,"email":"ops@a.example","tags":["vip","new"]}"#,
            #"{"n":2,"plan":"free","seats":3,"email":"dev@b.example","tags":[]}"#,
            #"{"n":3,"plan":"team","seats":"10"}"#,
        ]
        for data in events {
            let result = try db.enqueue(["license.issued", data])
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        for (path, _, expected) in cases {
            let id = try XCTUnwrap(ids[path])
            XCTAssertEqual(
                try db.count(where: "endpoint_id = '\(id)'"), expected.count, "\(path): rows only for what matches")
        }
        let run = try db.deliver(["--allow-network", "127.0.0.1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let got = try received(receiver)
        for (path, _, expected) in cases {
            XCTAssertEqual(got[path] ?? [], expected, path)
        }
    }

    func testAnInvalidFilterIsRefusedWith65NamingThePartAndChangesNothing() throws {
        let scratch = try Scratch()
        let db = try TestDatabase(in: scratch)
        let id = try db.addEndpoint()
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", id, "--filter", #"{"data":{"plan":"pro"}}"#]).status, 0)
        let before = try SQL.dump(db.path)
        let refusals: [([String], Int32, String)] = [
            (
                ["endpoint", "add", "http://127.0.0.1:9/x", "--allow-duplicate", "--filter", #"{"data":{"plan":{"$regex":"p"}}}"#],
                65, "keysat-webhooks: error: filter: at data.plan: unknown operator '$regex'"
            ),
            (
                ["endpoint", "update", id, "--filter", #"{"$or":[{"data":{"seats":{"$gt":true}}}]}"#], 65,
                "filter: at $or[0].data.seats: '$gt' compares numbers with numbers and strings with strings, not a boolean"
            ),
            (["endpoint", "update", id, "--filter", #"{"data":"#], 65, "filter: not valid JSON"),
            (["endpoint", "update", id, "--filter", "[]"], 65, "filter: a filter must be a JSON object, not an array"),
            (
                ["endpoint", "update", id, "--filter", String(repeating: " ", count: 9000) + "{}"], 65,
                "filter: longer than 8192 bytes"
            ),
            (["endpoint", "update", id, "--filter", "{}", "--no-filter"], 64, "--no-filter and --filter contradict"),
        ]
        for (arguments, status, message) in refusals {
            let result = try webhooks(db, arguments)
            XCTAssertEqual(result.status, status, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        }
        XCTAssertEqual(try SQL.dump(db.path), before, "nothing written")
    }

    func testAFilterChangeAppliesToLaterEventsOnlyAndNoFilterRemovesIt() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let id = try addFiltered(db, receiver, "/crm/200", #"{"data":{"plan":"pro"}}"#)
        func enqueue(_ n: Int, _ plan: String) throws {
            XCTAssertEqual(try db.enqueue(["license.issued", #"{"n":\#(n),"plan":"\#(plan)"}"#]).status, 0)
        }
        try enqueue(1, "pro")
        try enqueue(2, "free")
        let show = try webhooks(db, ["endpoint", "show", id])
        XCTAssertTrue(show.output.contains(#"filter:              {"data":{"plan":"pro"}}"#), show.output)
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", id, "--filter", #" {"data": {"plan": "free"}} "#]).status, 0)
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: webhooks(db, ["endpoint", "show", id, "--json"]).stdout) as? [String: Any])
        XCTAssertEqual((json["filter"] as? [String: Any]).map { NSDictionary(dictionary: $0) }, ["data": ["plan": "free"]])
        XCTAssertTrue(json["filter_problem"] is NSNull)
        try enqueue(3, "pro")
        try enqueue(4, "free")
        XCTAssertEqual(try webhooks(db, ["endpoint", "update", id, "--no-filter"]).status, 0)
        XCTAssertTrue(try webhooks(db, ["endpoint", "show", id]).output.contains("filter:              - (every event"))
        XCTAssertFalse(try webhooks(db, ["endpoint", "list"]).output.contains("[filter]"))
        try enqueue(5, "pro")
        try enqueue(6, "free")
        XCTAssertEqual(try db.deliver(["--allow-network", "127.0.0.1"]).status, 0)
        XCTAssertEqual(try received(receiver)["/crm/200"], [1, 4, 5, 6], "each event judged by the filter of its time")
    }

    /// A filter another program wrote that is not one: keysat-enqueue writes the rows (nothing
    /// lost), a run holds them (nothing sent where the filter may have kept it away), says so
    /// once, and `endpoint show` says why; a new filter or none releases them.
    func testAStoredFilterThatCannotBeReadHoldsTheEndpointUntilRepaired() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let id = try addFiltered(db, receiver, "/held/200", nil)
        let other = try addFiltered(db, receiver, "/other/200", nil)
        try SQL.execute(db.path, #"UPDATE webhook_endpoints SET event_filter = '{"data":{"plan":{"$regex":"."}}}' WHERE id = '\#(id)'"#)
        XCTAssertTrue(try webhooks(db, ["endpoint", "list"]).output.contains("[filter]"))
        for n in 1...2 { XCTAssertEqual(try db.enqueue(["license.issued", #"{"n":\#(n)}"#]).status, 0) }
        XCTAssertEqual(try db.count(where: "endpoint_id = '\(id)'"), 2, "written, not lost")
        let run = try db.deliver(["--allow-network", "127.0.0.1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr.components(separatedBy: "stored filter cannot be read").count - 1, 1, run.stderr)
        XCTAssertEqual(try received(receiver)["/held/200"], nil, "held")
        XCTAssertEqual(try received(receiver)["/other/200"], [1, 2])
        XCTAssertEqual(try db.count(where: "endpoint_id = '\(id)' AND delivered_at IS NULL AND next_attempt_at IS NOT NULL"), 2)
        let show = try webhooks(db, ["endpoint", "show", id])
        XCTAssertTrue(show.output.contains("unknown operator '$regex'"), show.output)
        XCTAssertTrue(show.output.contains("held, not sent"), show.output)
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: webhooks(db, ["endpoint", "show", id, "--json"]).stdout) as? [String: Any])
        XCTAssertTrue((json["filter_problem"] as? String)?.contains("unreadable") ?? false)

        XCTAssertEqual(try webhooks(db, ["endpoint", "update", id, "--no-filter"]).status, 0)
        XCTAssertEqual(try db.deliver(["--allow-network", "127.0.0.1"]).status, 0)
        XCTAssertEqual(try received(receiver)["/held/200"], [1, 2], "released by the repair")
        _ = other
    }

    /// `trigger` enqueues as a real event does, so filters apply (the envelope's `"test":true`
    /// included); `--endpoint` names the one endpoint to send to, whatever its filter says.
    func testTriggerHonoursFiltersUnlessOneEndpointIsNamed() throws {
        let scratch = try Scratch()
        let receiver = try Receiver(in: scratch)
        let db = try TestDatabase(in: scratch)
        let production = try addFiltered(db, receiver, "/production/200", #"{"test":{"$exists":false}}"#)
        try addFiltered(db, receiver, "/tests/200", #"{"test":true}"#)
        let sent = try webhooks(db, ["trigger", "license.issued", "--no-kick", "--json"])
        XCTAssertEqual(sent.status, 0, sent.stderr)
        XCTAssertEqual(try db.count(where: "endpoint_id = '\(production)'"), 0)
        XCTAssertEqual(try webhooks(db, ["trigger", "license.issued", "--endpoint", production, "--no-kick"]).status, 0)
        XCTAssertEqual(try db.count(where: "endpoint_id = '\(production)'"), 1)
        XCTAssertEqual(try db.deliver(["--allow-network", "127.0.0.1"]).status, 0)
        let paths = try receiver.requests().filter { $0.headers["x-keysat-event"] == "license.issued" }.map(\.path)
        XCTAssertEqual(paths.sorted(), ["/production/200", "/tests/200"])
    }
}
