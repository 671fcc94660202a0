import Foundation
import KeysatCore
import KeysatStore
import KeysatTestSupport
import XCTest

@testable import KeysatPostgres

/// `PostgresStore`'s events and endpoints against a real server, each test on a database of its
/// own, compared with SQLite's `WebhookStore` (an independent implementation) making the same
/// calls with the same random ids.
final class PostgresEventsEndpointsTests: XCTestCase {
    // XCTest runs a class's setUp, its tests and its tearDown one after another on one thread.
    nonisolated(unsafe) private static var slot = ClusterSlot.notStarted
    nonisolated(unsafe) private static var databases = 0
    private var cluster: PostgresTestCluster!
    private var sqlitePath = ""

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
        sqlitePath = "/tmp/keysat-pg-compare-\(UInt64.random(in: 0...UInt64.max)).db"
    }

    override func tearDown() {
        for suffix in ["", "-wal", "-shm"] { unlink(sqlitePath + suffix) }
        super.tearDown()
    }

    // MARK: - Helpers

    /// SplitMix64: the same seed gives both stores the same ids.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A new database owned by the tests' role, made by the superuser over the cluster's socket,
    /// with this project's tables (`create: true`, as `init` opens it); its connection string.
    private func freshDatabase() throws -> String {
        Self.databases += 1
        let name = "events_\(Self.databases)"
        let admin = try PostgresConnection(
            "host=\(cluster.directory) port=\(cluster.value("port") ?? "") user=postgres dbname=postgres")
        try admin.execute("CREATE DATABASE \(name) OWNER keysat")
        let uri = cluster.connectionString(with: ["dbname": name])
        _ = try PostgresStore(uri, create: true)
        return uri
    }

    private func postgres() throws -> PostgresStore { try PostgresStore(try freshDatabase()) }

    private func sqlite(clock: any TimeSource = SystemClock()) throws -> WebhookStore {
        try WebhookStore(path: sqlitePath, create: true, clock: clock)
    }

    /// The error `body` throws, as a KeysatError.
    private func failure(_ body: () throws -> some Any) -> KeysatError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? KeysatError
        }
    }

    /// An endpoint without its times, which each backend takes from its own clock.
    private func timeless(_ endpoint: Endpoint) -> Endpoint {
        var endpoint = endpoint
        endpoint.createdAt = ""
        endpoint.updatedAt = ""
        endpoint.disabledAt = endpoint.disabledAt.map { _ in "" }
        return endpoint
    }

    private func assertRFC3339(_ text: String?, file: StaticString = #filePath, line: UInt = #line) {
        let pattern = #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$"#
        XCTAssertNotNil(
            text?.range(of: pattern, options: .regularExpression), "\(text ?? "nil")", file: file, line: line)
    }

    private func count(_ store: PostgresStore, _ table: String) throws -> Int {
        Int(try store.value("SELECT count(*) FROM \(table)") ?? "") ?? -1
    }

    /// Endpoints added to both stores with the same ids, then `event_types` written as given
    /// (as another program may write them) where `raw` is not nil, and `active` as given.
    private func addEndpoints(
        _ specs: [(types: [String], raw: String?, active: Int)], to pg: PostgresStore, _ lite: WebhookStore
    ) throws -> [String] {
        var pgIDs = SeededGenerator(state: 42)
        var liteIDs = SeededGenerator(state: 42)
        var ids: [String] = []
        for (index, spec) in specs.enumerated() {
            let secret = String(repeating: "ab", count: 32)
            let url = "http://127.0.0.1:9/\(index)"
            let a = try pg.addEndpoint(
                url: url, secret: secret, eventTypes: spec.types, description: "", using: &pgIDs)
            let b = try lite.addEndpoint(
                url: url, secret: secret, eventTypes: spec.types, description: "", using: &liteIDs)
            XCTAssertEqual(a.id, b.id)
            ids.append(a.id)
            if let raw = spec.raw {
                try pg.connection.execute(
                    "UPDATE webhook_endpoints SET event_types = $1 WHERE id = $2", [raw, a.id])
                try lite.database.prepare("UPDATE webhook_endpoints SET event_types = ? WHERE id = ?")
                    .run([.text(raw), .text(a.id)])
            }
            if spec.active != 1 {
                try pg.connection.execute(
                    "UPDATE webhook_endpoints SET active = $1 WHERE id = $2", [String(spec.active), a.id])
                try lite.database.prepare("UPDATE webhook_endpoints SET active = ? WHERE id = ?")
                    .run([.integer(Int64(spec.active)), .text(a.id)])
            }
        }
        return ids
    }

    /// Endpoints whose subscriptions are written every way SQLite's JSON1 reads.
    private static let subscriptionSpecs: [(types: [String], raw: String?, active: Int)] = [
        (["*"], nil, 1), (["license.issued"], nil, 1), (["other.type"], nil, 1), (["license.issued"], nil, 0),
        ([], nil, 1), (["x"], #""license.issued""#, 1), (["x"], #"{"a":"license.issued"}"#, 1),
        (["x"], "license.issued", 1), (["x"], #"["lic\u0065nse.issued", 7]"#, 1),
        (["x"], #"[["license.issued"]]"#, 1), (["license.issued"], nil, 2), (["x"], #"["*"] trailing"#, 1),
    ]

    // MARK: - Enqueue

    func testEnqueueWritesWhatSQLiteWritesForTheSameSubscriptions() throws {
        let pg = try postgres()
        let lite = try sqlite()
        _ = try addEndpoints(Self.subscriptionSpecs, to: pg, lite)
        // "*", by name, none given, a JSON string, an object's value, an escaped name; not an
        // inactive endpoint, one whose `active` is 2, invalid JSON or a nested array.
        for (seed, (type, expected)) in [
            ("license.issued", 6), ("other.type", 3), ("nobody.subscribes", 2), ("x", 2),
        ]
        .enumerated() {
            var pgIDs = SeededGenerator(state: UInt64(seed))
            var liteIDs = SeededGenerator(state: UInt64(seed))
            let a = try pg.enqueue(
                eventType: type, data: Array("{}".utf8), idempotencyKey: nil, using: &pgIDs)
            let b = try lite.enqueue(
                eventType: type, data: Array("{}".utf8), idempotencyKey: nil, using: &liteIDs)
            XCTAssertEqual(a, b, type)
            XCTAssertEqual(a.deliveries.count, expected, type)
        }
        // Written pending, due at once by the database's clock.
        XCTAssertEqual(
            try pg.value(
                """
                SELECT count(*) FROM webhook_deliveries
                WHERE attempt_count = 0 AND next_attempt_at = created_at AND created_at <= now()
                  AND delivered_at IS NULL AND claim_token IS NULL
                """), "13")
    }

    func testEnvelopeBytesAreStoredAsSQLiteStoresThem() throws {
        let pg = try postgres()
        let id = try pg.addEndpoint(
            url: "http://127.0.0.1:9/", secret: "s", eventTypes: [], description: "",
            using: &SeededGenerator.shared
        )
        .id
        let samples = [
            #"{"a":1}"#,
            " \n{\"name\":\"Zoë\",\"emoji\":\"😀\",\"decomposed\":\"e\u{301}\",\"separator\":\"\u{2028}\"} \t",
            #"{"escapes":"\u0000\"\\\/\b\f\n\r\t\ud83d\ude00","big":123456789012345678901234567890,"f":1.10}"#,
            #"["nested",{"k":[true,false,null]},-0e-0]"#, #""just a string""#, "0",
            "{\"long\":\"" + String(repeating: "é€😀", count: 3000) + "\"}",
        ]
        for (index, sample) in samples.enumerated() {
            let data = Array(sample.utf8)
            let result = try pg.enqueue(
                eventType: "license.issued", data: data, idempotencyKey: nil, using: &SeededGenerator.shared)
            let deliveryID = try XCTUnwrap(result.deliveries.first?.id)
            // The server's own bytes, not the client's decoding of them.
            let row = try XCTUnwrap(
                pg.rows(
                    """
                    SELECT encode(convert_to(payload_json, 'UTF8'), 'hex'), keysat_rfc3339(created_at)
                    FROM webhook_deliveries WHERE id = $1
                    """, [deliveryID]
                ).first)
            let createdAt = try XCTUnwrap(Timestamp(rfc3339: row[1] ?? ""))
            // SQLite, at the same moment, stores these bytes (a blob).
            let lite = try WebhookStore(
                path: sqlitePath + "\(index)", create: true, clock: FixedClock(createdAt))
            defer { for suffix in ["", "-wal", "-shm"] { unlink(sqlitePath + "\(index)" + suffix) } }
            _ = try lite.addEndpoint(
                url: "http://127.0.0.1:9/", secret: "s", eventTypes: [], description: "",
                using: &SeededGenerator.shared)
            let liteID = try XCTUnwrap(
                lite.enqueue(
                    eventType: "license.issued", data: data, idempotencyKey: nil,
                    using: &SeededGenerator.shared
                ).deliveries.first?.id)
            let stored = try XCTUnwrap(
                lite.database.prepare("SELECT payload_json FROM webhook_deliveries WHERE id = ?").first(
                    [.text(liteID)]) { $0.rawBytes(0) })
            XCTAssertEqual(row[0], Identifiers.lowercaseHex(stored), sample)
            XCTAssertEqual(
                stored, Envelope.make(eventType: "license.issued", timestamp: createdAt, data: data))
            // And what a run reads to send and sign (inline, or deferred for a long payload).
            let due = try XCTUnwrap(pg.oldestPending(endpointID: id))
            XCTAssertEqual(due.id, deliveryID)
            XCTAssertEqual(due.payloadDeferred ? try pg.payload(of: due) : due.payload, stored, sample)
            try pg.connection.execute("DELETE FROM webhook_deliveries")
        }
    }

    func testEnqueueToNoSubscriberWritesNothingAndWakesNoRun() throws {
        let pg = try postgres()
        let listener = try PostgresConnection(try uri(of: pg))
        try listener.listen(PostgresStore.wakeUpChannel)
        let data = Array(#"{"a":1}"#.utf8)
        let none = try pg.enqueue(
            eventType: "license.issued", data: data, idempotencyKey: nil, using: &SeededGenerator.shared)
        XCTAssertEqual(none, EnqueueResult(eventType: "license.issued", deliveries: [], replayed: false))
        _ = try pg.addEndpoint(
            url: "http://127.0.0.1:9/", secret: "s", eventTypes: ["other.type"], description: "",
            using: &SeededGenerator.shared)
        let unsubscribed = try pg.enqueue(
            eventType: "license.issued", data: data, idempotencyKey: "k", using: &SeededGenerator.shared)
        XCTAssertEqual(unsubscribed.deliveries, [])
        XCTAssertEqual(try count(pg, "webhook_deliveries"), 0)
        XCTAssertEqual(try listener.notifications(waitingUpTo: 300), [])
        // The key is kept all the same, as on SQLite: its replay says "nothing" again.
        let replay = try pg.enqueue(
            eventType: "license.issued", data: data, idempotencyKey: "k", using: &SeededGenerator.shared)
        XCTAssertEqual(replay, EnqueueResult(eventType: "license.issued", deliveries: [], replayed: true))

        // A subscriber: one wake-up, after the commit; a replay wakes no one.
        _ = try pg.addEndpoint(
            url: "http://127.0.0.1:9/", secret: "s", eventTypes: [], description: "",
            using: &SeededGenerator.shared)
        _ = try pg.enqueue(
            eventType: "license.issued", data: data, idempotencyKey: "k2", using: &SeededGenerator.shared)
        XCTAssertEqual(try listener.notifications(waitingUpTo: 5000).map(\.channel), ["keysat_webhooks"])
        _ = try pg.enqueue(
            eventType: "license.issued", data: data, idempotencyKey: "k2", using: &SeededGenerator.shared)
        XCTAssertEqual(try listener.notifications(waitingUpTo: 300), [])
    }

    private func uri(of store: PostgresStore) throws -> String {
        cluster.connectionString(with: ["dbname": try store.value("SELECT current_database()") ?? ""])
    }

    // MARK: - Idempotency keys

    func testIdempotencyKeysAnswerAsSQLite() throws {
        let pg = try postgres()
        let lite = try sqlite()
        _ = try addEndpoints([(["*"], nil, 1), (["license.issued"], nil, 1)], to: pg, lite)
        let data = Array(#"{"n":1}"#.utf8)
        var pgIDs = SeededGenerator(state: 9)
        var liteIDs = SeededGenerator(state: 9)
        for replayed in [false, true, true] {
            let a = try pg.enqueue(
                eventType: "license.issued", data: data, idempotencyKey: "key-1", using: &pgIDs)
            let b = try lite.enqueue(
                eventType: "license.issued", data: data, idempotencyKey: "key-1", using: &liteIDs)
            XCTAssertEqual(a, b)
            XCTAssertEqual(a.replayed, replayed)
            XCTAssertEqual(a.deliveries.count, 2)
        }
        XCTAssertEqual(try count(pg, "webhook_deliveries"), 2)
        // The same key for other data, or another event: 65, in SQLite's words.
        let masked = { (error: KeysatError?) in
            error.map {
                "\($0.exitCode) "
                    + $0.message.replacingOccurrences(
                        of: #"at \S+ for"#, with: "at T for", options: .regularExpression)
            }
        }
        for (type, other) in [("license.issued", #"{"n":2}"#), ("machine.activated", #"{"n":1}"#)] {
            let a = failure {
                try pg.enqueue(
                    eventType: type, data: Array(other.utf8), idempotencyKey: "key-1", using: &pgIDs)
            }
            let b = failure {
                try lite.enqueue(
                    eventType: type, data: Array(other.utf8), idempotencyKey: "key-1", using: &liteIDs)
            }
            XCTAssertEqual(a?.exitCode, 65)
            XCTAssertEqual(masked(a), masked(b))
            assertRFC3339(a?.message.firstMatch(of: /at (\S+) for/).map { String($0.1) })
        }
        // A key written before its fingerprint was kept (SQLite's step 13) is compared by type.
        try pg.connection.execute("UPDATE keysat_webhooks_idempotency SET request_hash = NULL")
        try lite.database.execute("UPDATE keysat_webhooks_idempotency SET request_hash = NULL")
        let a = try pg.enqueue(
            eventType: "license.issued", data: Array("[]".utf8), idempotencyKey: "key-1", using: &pgIDs)
        let b = try lite.enqueue(
            eventType: "license.issued", data: Array("[]".utf8), idempotencyKey: "key-1", using: &liteIDs)
        XCTAssertEqual(a, b)
        XCTAssertTrue(a.replayed)
    }

    func testKeysAreKeptSevenDaysThenForgotten() throws {
        let pg = try postgres()
        _ = try pg.addEndpoint(
            url: "http://127.0.0.1:9/", secret: "s", eventTypes: [], description: "",
            using: &SeededGenerator.shared)
        let data = Array("{}".utf8)
        let first = try pg.enqueue(
            eventType: "license.issued", data: data, idempotencyKey: "old", using: &SeededGenerator.shared)
        _ = try pg.enqueue(
            eventType: "license.issued", data: data, idempotencyKey: "kept", using: &SeededGenerator.shared)
        try pg.connection.executeScript(
            """
            UPDATE keysat_webhooks_idempotency SET created_at = now() - interval '7 days 1 second' WHERE key = 'old';
            UPDATE keysat_webhooks_idempotency SET created_at = now() - interval '6 days 23 hours' WHERE key = 'kept';
            INSERT INTO keysat_webhooks_idempotency (key, event_type, deliveries_json, created_at)
                SELECT 'expired-' || g, 'license.issued', '[]', now() - interval '30 days' - g * interval '1 second'
                FROM generate_series(1, 150) g;
            """)
        // Older than 7 days: a new key, a new event.
        let again = try pg.enqueue(
            eventType: "license.issued", data: data, idempotencyKey: "old", using: &SeededGenerator.shared)
        XCTAssertFalse(again.replayed)
        XCTAssertNotEqual(again.deliveries, first.deliveries)
        XCTAssertEqual(
            try pg.value(
                "SELECT created_at > now() - interval '1 minute' FROM keysat_webhooks_idempotency WHERE key = 'old'"
            ), "t")
        // Younger: still answered.
        XCTAssertTrue(
            try pg.enqueue(
                eventType: "license.issued", data: data, idempotencyKey: "kept",
                using: &SeededGenerator.shared
            )
            .replayed)
        // Two keyed enqueues deleted the 150 other expired keys, 100 at a time.
        XCTAssertEqual(
            try pg.value("SELECT count(*) FROM keysat_webhooks_idempotency WHERE key LIKE 'expired-%'"), "0")
        XCTAssertEqual(try count(pg, "keysat_webhooks_idempotency"), 2)

        // SQLite agrees on the boundary.
        let clock = FixedClock(Timestamp(seconds: 1_800_000_000))
        let lite = try sqlite(clock: clock)
        _ = try lite.addEndpoint(
            url: "http://127.0.0.1:9/", secret: "s", eventTypes: [], description: "",
            using: &SeededGenerator.shared)
        _ = try lite.enqueue(
            eventType: "license.issued", data: data, idempotencyKey: "old", using: &SeededGenerator.shared)
        clock.current = clock.current.adding(seconds: 7 * 86_400 + 1)
        XCTAssertFalse(
            try lite.enqueue(
                eventType: "license.issued", data: data, idempotencyKey: "old", using: &SeededGenerator.shared
            )
            .replayed)
    }

    /// Two sessions look the key up, find nothing, and are held (a third session locks the
    /// endpoints) until both are past the look-up; let go, both insert the key: the second
    /// waits for the first's commit, writes nothing, and answers with the first's deliveries.
    func testTwoSessionsEnqueueingOneKeyAtOnceMakeOneEvent() throws {
        let uri = try freshDatabase()
        let setup = try PostgresStore(uri)
        for _ in 0..<2 {
            _ = try setup.addEndpoint(
                url: "http://127.0.0.1:9/", secret: "s", eventTypes: [], description: "",
                using: &SeededGenerator.shared)
        }
        let locker = try PostgresConnection(uri)
        try locker.execute("BEGIN")
        try locker.execute("LOCK TABLE webhook_endpoints IN ACCESS EXCLUSIVE MODE")
        let results = Results()
        let group = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: group) {
                results.add(
                    Result {
                        var generator = SystemRandomNumberGenerator()
                        return try PostgresStore(uri).enqueue(
                            eventType: "license.issued", data: Array("{}".utf8), idempotencyKey: "same",
                            using: &generator)
                    })
            }
        }
        let observer = try PostgresConnection(uri)
        let deadline = Date().addingTimeInterval(4)
        while try observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).rows[0][0] != "2" && Date() < deadline {
            usleep(10_000)
        }
        try locker.execute("COMMIT")
        group.wait()
        let answers = try results.values.map { try $0.get() }
        XCTAssertEqual(answers.count, 2)
        XCTAssertEqual(answers.map(\.replayed).sorted { !$0 && $1 }, [false, true])
        XCTAssertEqual(answers[0].deliveries, answers[1].deliveries)
        XCTAssertEqual(answers[0].deliveries.count, 2)
        XCTAssertEqual(try count(setup, "webhook_deliveries"), 2)
        XCTAssertEqual(try count(setup, "keysat_webhooks_idempotency"), 1)
    }

    /// The same without holding anyone: two sessions racing through 40 keys, in any
    /// interleaving the server gives; one event per key.
    func testRacingSessionsMakeOneEventPerKey() throws {
        let uri = try freshDatabase()
        let setup = try PostgresStore(uri)
        for _ in 0..<3 {
            _ = try setup.addEndpoint(
                url: "http://127.0.0.1:9/", secret: "s", eventTypes: [], description: "",
                using: &SeededGenerator.shared)
        }
        let keys = (0..<40).map { "race-\($0)" }
        let results = [Results(), Results()]
        let group = DispatchGroup()
        for session in results {
            DispatchQueue.global().async(group: group) {
                do {
                    let store = try PostgresStore(uri)
                    var generator = SystemRandomNumberGenerator()
                    for key in keys {
                        session.add(
                            Result {
                                try store.enqueue(
                                    eventType: "license.issued", data: Array("{}".utf8),
                                    idempotencyKey: key, using: &generator)
                            })
                    }
                } catch {
                    session.add(.failure(error))
                }
            }
        }
        group.wait()
        let a = try results[0].values.map { try $0.get() }
        let b = try results[1].values.map { try $0.get() }
        XCTAssertEqual(a.count, keys.count)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.deliveries, y.deliveries)
            XCTAssertNotEqual(x.replayed, y.replayed)
        }
        XCTAssertEqual(try count(setup, "webhook_deliveries"), keys.count * 3)
    }

    /// What threads hand back, under a lock.
    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [Result<EnqueueResult, any Error>] = []
        func add(_ result: Result<EnqueueResult, any Error>) { lock.withLock { stored.append(result) } }
        var values: [Result<EnqueueResult, any Error>] { lock.withLock { stored } }
    }

    /// Patterns and keysat-webhooks' own namespace (issue 22): PostgreSQL's Swift matching
    /// (`EventSubscription`) and SQLite's SQL (`WebhookStore.subscribes`) choose the same
    /// endpoints, and know the same types, for subscriptions written every way (an object's
    /// values count, as for names; stored text that is no pattern matches only itself).
    func testPatternsMatchAsOnSQLite() throws {
        let pg = try postgres()
        let lite = try sqlite()
        _ = try addEndpoints(
            [
                (["license.*"], nil, 1), (["license.a.*"], nil, 1), (["webhook.*"], nil, 1), (["*"], nil, 1),
                (["webhook.delivery.dead", "license.issued"], nil, 1), (["x"], #"["lic\u0065nse.*"]"#, 1),
                (["x"], #"["*.issued", "license*", ".*"]"#, 1), (["x"], #"["license.*", 7]"#, 1),
                (["license.*"], nil, 0), (["x"], #"{"a":"license.*"}"#, 1),
            ], to: pg, lite)
        let expected = [
            "license.issued": 6, "license": 1, "licenses.x": 1, "license.a.b": 6, "license.": 1,
            "webhook.delivery.dead": 2, "webhook.x": 1, "webhook": 1, "x": 1, "lic": 1,
        ]
        for (seed, (type, count)) in expected.sorted(by: { $0.key < $1.key }).enumerated() {
            var pgIDs = SeededGenerator(state: UInt64(seed))
            var liteIDs = SeededGenerator(state: UInt64(seed))
            let a = try pg.enqueue(eventType: type, data: Array("{}".utf8), idempotencyKey: nil, using: &pgIDs)
            let b = try lite.enqueue(eventType: type, data: Array("{}".utf8), idempotencyKey: nil, using: &liteIDs)
            XCTAssertEqual(a, b, type)
            XCTAssertEqual(a.deliveries.count, count, type)
        }
        for name in ["license.renewed", "license", "licenses.x", "license.a.b", "webhook.endpoint.failing", "webhook"] {
            XCTAssertEqual(try pg.isKnownEventType(name), try lite.isKnownEventType(name), name)
        }
        XCTAssertTrue(try pg.isKnownEventType("license.renewed"))
        XCTAssertFalse(try pg.isKnownEventType("licenses.x"))
        XCTAssertFalse(try pg.knownEventTypes().contains { $0.name.hasSuffix(".*") })
        XCTAssertFalse(try lite.knownEventTypes().contains { $0.name.hasSuffix(".*") })
    }

    // MARK: - Event types

    func testEventTypesAreKnownAsOnSQLite() throws {
        let pg = try postgres()
        let lite = try sqlite()
        _ = try addEndpoints(
            Self.subscriptionSpecs + [
                (["custom.one", "license.issued"], nil, 0), (["x"], #"{"k":"obj.value","n":5}"#, 1),
                (["x"], #"["esc\u0061ped"]"#, 1),
            ], to: pg, lite)
        for backend in [pg, lite] as [any EventQueue] {
            XCTAssertTrue(try backend.declareEventType("declared.one"))
            XCTAssertFalse(try backend.declareEventType("declared.one"))
            XCTAssertFalse(try backend.declareEventType("license.issued"))
            XCTAssertFalse(try backend.declareEventType("custom.one"))
            XCTAssertTrue(try backend.declareEventType("declared.two"))
            XCTAssertTrue(try backend.forgetEventType("declared.two"))
            XCTAssertFalse(try backend.forgetEventType("declared.two"))
            XCTAssertFalse(try backend.forgetEventType("never"))
            XCTAssertEqual(failure { try backend.declareEventType("bad name") }?.exitCode, 65)
        }
        let listed = { (backend: any EventQueue) in
            try backend.knownEventTypes().map { "\($0.name) \($0.source)" }
        }
        // One difference, chosen: SQLite's listing also shows the numbers and nested arrays of
        // `event_types` as names (json_each's values of any type), which no event matches
        // (its own isKnownEventType says no to them); here only strings are names.
        let notNames: Set = ["5 subscribed", "7 subscribed", #"["license.issued"] subscribed"#]
        XCTAssertEqual(try listed(pg), try listed(lite).filter { !notNames.contains($0) })
        XCTAssertFalse(try lite.isKnownEventType("5"))
        XCTAssertTrue(try listed(pg).contains("escaped subscribed"))
        for name in [
            "license.issued", "declared.one", "declared.two", "custom.one", "other.type", "obj.value",
            "escaped",
            "x", "*", "never", "lic", "a",
        ] {
            XCTAssertEqual(try pg.isKnownEventType(name), try lite.isKnownEventType(name), name)
        }
    }

    // MARK: - Endpoints

    func testEndpointsAnswerAsOnSQLite() throws {
        let pg = try postgres()
        let lite = try sqlite()
        var pgIDs = SeededGenerator(state: 3)
        var liteIDs = SeededGenerator(state: 3)
        let specs: [(String, [String], String, Bool)] = [
            ("http://127.0.0.1:9/a", [], "first", false),
            ("https://h.example/b?q=1", ["x.y", "license.issued"], "Zoë 😀", true),
            ("http://[::1]:8080/", ["*"], "", false),
        ]
        for (url, types, description, ordered) in specs {
            let a = try pg.addEndpoint(
                url: url, secret: "secret-\(url)", eventTypes: types, description: description,
                ordered: ordered,
                using: &pgIDs)
            let b = try lite.addEndpoint(
                url: url, secret: "secret-\(url)", eventTypes: types, description: description,
                ordered: ordered,
                using: &liteIDs)
            XCTAssertEqual(timeless(a), timeless(b))
            assertRFC3339(a.createdAt)
            XCTAssertEqual(a.createdAt, a.updatedAt)
            XCTAssertEqual(try pg.endpoint(id: a.id), a)
        }
        XCTAssertEqual(try pg.endpoints().map(timeless), try lite.endpoints().map(timeless))
        let ids = try pg.endpoints().map(\.id)

        // Changes, field by field.
        for change in [
            { (s: any EndpointCatalogue) in
                try s.updateEndpoint(
                    id: ids[0], url: "http://127.0.0.1:9/new", eventTypes: nil, description: nil, ordered: nil
                )
            },
            {
                try $0.updateEndpoint(
                    id: ids[1], url: nil, eventTypes: [], description: "changed", ordered: false)
            },
            {
                try $0.updateEndpoint(
                    id: ids[2], url: nil, eventTypes: ["a.b", "c.d"], description: nil, ordered: true)
            },
        ] {
            let a = try change(pg)
            let b = try change(lite)
            XCTAssertEqual(timeless(a), timeless(b))
            XCTAssertGreaterThan(a.updatedAt, a.createdAt)
            XCTAssertEqual(try pg.endpoint(id: a.id), a)
        }

        // Enabling and disabling, by hand and by a run.
        for backend in [pg, lite] as [any WebhookBackend] {
            XCTAssertTrue(try backend.setEndpointActive(id: ids[0], false))
            XCTAssertFalse(try backend.setEndpointActive(id: ids[0], false))
            XCTAssertTrue(try backend.disableEndpoint(id: ids[1], reason: "410 Gone", failingSince: nil))
            XCTAssertEqual(try backend.endpoint(id: ids[1]).disabledReason, "410 Gone")
            XCTAssertTrue(try backend.setEndpointActive(id: ids[1], true))
            XCTAssertNil(try backend.endpoint(id: ids[1]).disabledReason)
        }
        XCTAssertEqual(try pg.endpoints().map(timeless), try lite.endpoints().map(timeless))
        // `active` 2 (another program's) is not active: disabling changes nothing, enabling
        // writes 1, on both.
        try pg.connection.execute("UPDATE webhook_endpoints SET active = 2 WHERE id = $1", [ids[2]])
        try lite.database.prepare("UPDATE webhook_endpoints SET active = 2 WHERE id = ?").run([.text(ids[2])])
        for backend in [pg, lite] as [any WebhookBackend] {
            XCTAssertFalse(try backend.endpoint(id: ids[2]).active)
            XCTAssertFalse(try backend.setEndpointActive(id: ids[2], false))
        }
        XCTAssertEqual(try pg.value("SELECT active FROM webhook_endpoints WHERE id = $1", [ids[2]]), "2")
        XCTAssertTrue(try pg.setEndpointActive(id: ids[2], true))
        XCTAssertTrue(try lite.setEndpointActive(id: ids[2], true))
        XCTAssertEqual(try pg.value("SELECT active FROM webhook_endpoints WHERE id = $1", [ids[2]]), "1")
        _ = try pg.disableEndpoint(id: ids[1], reason: "r", failingSince: nil)
        assertRFC3339(try pg.endpoint(id: ids[1]).disabledAt)
    }

    func testUnknownEndpointsAreRefusedInSQLiteWords() throws {
        let pg = try postgres()
        let lite = try sqlite()
        let calls: [(any WebhookBackend) throws -> Any] = [
            { try $0.endpoint(id: "nope") },
            {
                try $0.updateEndpoint(
                    id: "nope", url: "http://h/", eventTypes: nil, description: nil, ordered: nil)
            },
            { try $0.setEndpointActive(id: "nope", false) },
            { try $0.removeEndpoint(id: "nope", force: true) },
            { try $0.rotateSecret(id: "nope", to: "s", graceSeconds: 60) },
        ]
        for call in calls {
            let a = failure { try call(pg) }
            let b = failure { try call(lite) }
            XCTAssertEqual(a?.exitCode, 65)
            XCTAssertEqual(a?.message, b?.message)
        }
        XCTAssertNil(try pg.previousSecretExpiry(id: "nope"))
        XCTAssertEqual(try pg.pendingDeliveryCount(endpointID: "nope"), 0)
    }

    func testRemovingAnEndpointTakesItsDeliveriesAndAttempts() throws {
        let pg = try postgres()
        let lite = try sqlite()
        let ids = try addEndpoints([(["*"], nil, 1), (["*"], nil, 1)], to: pg, lite)
        for backend in [pg, lite] as [any WebhookBackend] {
            for _ in 0..<2 {
                _ = try backend.enqueue(
                    eventType: "license.issued", data: Array("{}".utf8), idempotencyKey: nil,
                    using: &SeededGenerator.shared)
            }
            XCTAssertEqual(try backend.pendingDeliveryCount(endpointID: ids[0]), 2)
        }
        try pg.connection.execute(
            """
            INSERT INTO webhook_delivery_attempts (delivery_id, attempt_number, started_at, duration_ms, status_code)
            SELECT id, 1, now(), 5, 500 FROM webhook_deliveries
            """)
        let a = failure { try pg.removeEndpoint(id: ids[0], force: false) }
        let b = failure { try lite.removeEndpoint(id: ids[0], force: false) }
        XCTAssertEqual(a?.exitCode, 65)
        XCTAssertEqual(a?.message, b?.message)
        XCTAssertEqual(
            try pg.removeEndpoint(id: ids[0], force: true), try lite.removeEndpoint(id: ids[0], force: true))
        XCTAssertEqual(failure { try pg.endpoint(id: ids[0]) }?.exitCode, 65)
        XCTAssertEqual(try count(pg, "webhook_deliveries"), 2)
        XCTAssertEqual(try count(pg, "webhook_delivery_attempts"), 2)
        XCTAssertEqual(
            try pg.value(
                "SELECT count(*) FROM webhook_delivery_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
            ),
            "2")
        // Nothing pending: removed without --force.
        try pg.connection.execute("UPDATE webhook_deliveries SET delivered_at = now()")
        XCTAssertEqual(try pg.removeEndpoint(id: ids[1], force: false), 2)
        XCTAssertEqual(try count(pg, "webhook_delivery_attempts"), 0)
    }

    func testRotationKeepsTheOldSecretForTheGraceByTheDatabaseClock() throws {
        let pg = try postgres()
        let lite = try sqlite()
        let id = try addEndpoints([(["*"], nil, 1)], to: pg, lite)[0]
        let old = try pg.endpoint(id: id).secret
        let a = try pg.rotateSecret(id: id, to: "new-secret", graceSeconds: 86_400)
        let b = try lite.rotateSecret(id: id, to: "new-secret", graceSeconds: 86_400)
        XCTAssertEqual(timeless(a), timeless(b))
        XCTAssertEqual(a.secret, "new-secret")
        let expiry = try XCTUnwrap(pg.previousSecretExpiry(id: id))
        XCTAssertNotNil(try lite.previousSecretExpiry(id: id))
        assertRFC3339(expiry)
        XCTAssertEqual(Timestamp(rfc3339: expiry), Timestamp(rfc3339: a.updatedAt)?.adding(seconds: 86_400))
        XCTAssertEqual(try pg.value("SELECT previous_secret FROM webhook_endpoints WHERE id = $1", [id]), old)
        // The run signs with both meanwhile.
        _ = try pg.enqueue(
            eventType: "e.f", data: Array("{}".utf8), idempotencyKey: nil, using: &SeededGenerator.shared)
        XCTAssertEqual(try pg.oldestPending(endpointID: id)?.previousSecret, old)

        // No grace: the old secret goes at once.
        let c = try pg.rotateSecret(id: id, to: "newer", graceSeconds: 0)
        let d = try lite.rotateSecret(id: id, to: "newer", graceSeconds: 0)
        XCTAssertEqual(timeless(c), timeless(d))
        XCTAssertNil(try pg.previousSecretExpiry(id: id))
        XCTAssertNil(try lite.previousSecretExpiry(id: id))
        XCTAssertEqual(
            try pg.rows("SELECT previous_secret, previous_secret_expires_at FROM webhook_endpoints").first,
            [nil, nil])
    }
}

extension PostgresEventsEndpointsTests.SeededGenerator {
    /// For ids whose values do not matter.
    nonisolated(unsafe) static var shared = Self(state: 1)
}
