import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

/// A store in memory: the rows a test puts in, the outcomes the run records, nothing else.
final class FakeStore: DeliveryStore {
    var rows: [DueDelivery] = []
    var recorded: [AttemptOutcome] = []
    /// Commits made (calls to `record` with outcomes).
    var commits = 0
    var disabled: [(String, String)] = []
    var failingSinceByEndpoint: [String: Timestamp] = [:]
    var payloads: [String: [UInt8]] = [:]
    private var nextRowID: Int64 = 0

    /// Adds a pending delivery; `due` is when it is due, in seconds after `FakeStore.t0`.
    @discardableResult
    func add(
        _ endpoint: String, id: String? = nil, due: Int64 = 0, attempts: Int = 0, ordered: Bool = false,
        active: Bool = true, key: String? = nil
    ) -> DueDelivery {
        nextRowID += 1
        var row = DueDelivery(
            id: id ?? "d\(nextRowID)", endpointID: endpoint, eventType: "license.issued",
            payload: Array(#"{"n":\#(nextRowID)}"#.utf8), attemptCount: attempts,
            nextAttemptAt: FakeStore.t0.adding(seconds: due).rfc3339, url: "http://\(endpoint).test/",
            secret: "secret-\(endpoint)", endpointActive: active)
        row.ordered = ordered
        if let key {
            row.orderingKey = key
            row.sequence = Int64(rows.filter { $0.endpointID == endpoint && $0.orderingKey == key }.count + 1)
        }
        row.rowID = nextRowID
        row.createdAt = Timestamp(microseconds: FakeStore.t0.microseconds + nextRowID).rfc3339
        rows.append(row)
        return row
    }

    static let t0 = Timestamp(seconds: 1_800_000_000)

    /// Set by a test: what other runs (as on another host) hold. Deliveries in `takenByOthers`
    /// are `.taken`, endpoints in `busyEndpoints` `.endpointBusy`; anything else is claimed with
    /// a token naming the delivery, and every claim asked for is kept.
    var takenByOthers: Set<String> = []
    var busyEndpoints: Set<String> = []
    /// Set by a test: other runs hold all of every endpoint's slots but this many.
    var slotsLeftByOthers: Int?
    /// Set by a test: claims of this endpoint's deliveries throw (a lost connection, say).
    var failingClaims: (endpoint: String, error: KeysatError)?
    private(set) var claims: [(id: String, perEndpoint: Int, inFlight: Int)] = []

    /// Set by a test: how many deliveries the run may claim at once.
    var claimBatch = 1
    /// The size of each call to `claim`.
    private(set) var claimCalls: [Int] = []
    /// Each call to `claim`: how many rows, what the run said it holds of the endpoint, its cap.
    private(set) var claimLog: [(size: Int, inFlight: Int, perEndpoint: Int)] = []
    /// The deliveries handed back (`release`), in order.
    private(set) var released: [String] = []

    func release(_ claimed: [DueDelivery]) throws { released += claimed.map(\.id) }

    func claim(_ deliveries: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws -> [Claim] {
        claimCalls.append(deliveries.count)
        claimLog.append((deliveries.count, inFlight, perEndpoint))
        return try deliveries.enumerated().map { index, delivery in
            if let slots = slotsLeftByOthers, inFlight + index >= slots { return .endpointBusy }
            return try claimOne(delivery, perEndpoint: perEndpoint, inFlight: inFlight)
        }
    }

    private func claimOne(_ delivery: DueDelivery, perEndpoint: Int, inFlight: Int) throws -> Claim {
        claims.append((delivery.id, perEndpoint, inFlight))
        if let failingClaims, failingClaims.endpoint == delivery.endpointID { throw failingClaims.error }
        if busyEndpoints.contains(delivery.endpointID) { return .endpointBusy }
        if takenByOthers.contains(delivery.id) { return .taken }
        var claimed = delivery
        claimed.claimToken = "token-" + delivery.id
        return .claimed(claimed)
    }

    func dueDeliveries(dueBy: Timestamp, retries: Bool, after cursor: DueCursor?, limit: Int) throws
        -> [DueDelivery]
    {
        rows.filter { row in
            row.nextAttemptAt <= dueBy.rfc3339 && (row.attemptCount > 0) == retries
                && cursor.map { (row.nextAttemptAt, row.rowID) > ($0.nextAttemptAt, $0.rowID) } ?? true
        }
        .sorted { ($0.nextAttemptAt, $0.rowID) < ($1.nextAttemptAt, $1.rowID) }
        .prefix(limit).map { $0 }
    }

    /// Set by a test: the next `prepareToRecord` or `record` throws it.
    var failure: KeysatError?
    private(set) var prepared = 0

    func prepareToRecord() throws {
        if let failure { throw failure }
        prepared += 1
    }

    func unschedulable(limit: Int) throws -> [DueDelivery] {
        rows.filter { $0.nextAttemptAt < "0" || $0.nextAttemptAt >= "21" }.prefix(limit).map { $0 }
    }

    func oldestPending(endpointID: String) throws -> DueDelivery? {
        rows.filter { $0.endpointID == endpointID }.min { $0.rowID < $1.rowID }
    }

    /// The pending row of the key with the lowest number (finished rows are gone from `rows`).
    func keyHead(endpointID: String, key: String, hold: Bool) throws -> DueDelivery? {
        rows.filter { $0.endpointID == endpointID && $0.orderingKey == key }.min { ($0.sequence ?? 0) < ($1.sequence ?? 0) }
    }

    func payload(of delivery: DueDelivery) throws -> [UInt8]? {
        rows.contains { $0.id == delivery.id } ? payloads[delivery.id] : nil
    }

    func record(_ outcomes: [AttemptOutcome]) throws {
        guard !outcomes.isEmpty else { return }
        if let failure { throw failure }
        commits += 1
        for outcome in outcomes {
            guard let index = rows.firstIndex(where: { $0.id == outcome.deliveryID }),
                rows[index].attemptCount == outcome.previousAttemptCount
            else { continue }
            recorded.append(outcome)
            if case .retry(let at) = outcome.result {
                rows[index].attemptCount += 1
                rows[index].nextAttemptAt = at.rfc3339
            } else {
                rows.remove(at: index)
            }
        }
    }

    func eraseExpiredSecrets(now: Timestamp) throws -> Int { 0 }

    func disableEndpoint(id: String, reason: String, failingSince: Timestamp?) throws -> Bool {
        guard !disabled.contains(where: { $0.0 == id }) else { return false }
        disabled.append((id, reason))
        return true
    }

    func takeProbes(everySeconds: Int64, limit: Int) throws -> [DueDelivery] { [] }

    func recoverEndpoint(id: String, reason: String) throws -> Int? { nil }

    func failingSince(endpointID: String) throws -> Timestamp? { failingSinceByEndpoint[endpointID] }

    /// The levels announced (`announceFailing`): endpoint, percent; each once per streak start.
    var announced: [(endpoint: String, since: Timestamp, percent: Int, data: String)] = []

    func announceFailing(endpointID: String, since: Timestamp, percent: Int, data: [UInt8]) throws -> Bool {
        let said = announced.last { $0.endpoint == endpointID }
        if let said, said.since == since, said.percent >= percent { return false }
        announced.append((endpointID, since, percent, String(decoding: data, as: UTF8.self)))
        return true
    }

    /// The recorded results of each delivery, by id.
    func result(of id: String) -> AttemptOutcome.Result? {
        recorded.last { $0.deliveryID == id }?.result
    }
}

/// A transport that answers by script: each request finishes `latencyMS` after it started (on
/// the fake clock, which every poll moves on by `tickMS`), with what `answer` says for its URL.
final class FakeTransport: Transport {
    struct Answer {
        var status: Int?
        var failure: HTTPResult.Failure?
        var retryAfter: String?
        var body = ""
        static func status(_ code: Int) -> Answer { Answer(status: code) }
        static let connectionRefused = Answer(
            failure: .transport(code: 7, message: "Failed to connect to host: Connection refused"))
    }

    let clock: FixedClock
    var tickMS: Int64 = 1
    var latencyMS: Int64 = 5
    var answer: (HTTPRequest) -> Answer = { _ in .status(204) }
    /// Called at each poll, before results are collected (a test's signal or clock jump).
    var onPoll: () -> Void = {}

    private(set) var started: [HTTPRequest] = []
    /// Requests in flight, with when they started on the wall clock and on the monotonic one
    /// (latency is measured on the latter, as libcurl's is).
    private var pending: [(request: HTTPRequest, started: Timestamp, elapsed: Int64)] = []
    private(set) var maxInFlight = 0
    private(set) var maxInFlightByHost: [String: Int] = [:]
    /// Requests in flight to the same endpoint as each request started, itself included.
    private(set) var inFlightToHostAtStart: [Int] = []

    init(clock: FixedClock) { self.clock = clock }

    var inFlight: Int { pending.count }

    func start(_ request: HTTPRequest) throws {
        started.append(request)
        pending.append((request, clock.now(), clock.elapsed()))
        maxInFlight = max(maxInFlight, pending.count)
        let host = Self.host(request.url)
        let count = pending.filter { Self.host($0.request.url) == host }.count
        maxInFlightByHost[host] = max(maxInFlightByHost[host] ?? 0, count)
        inFlightToHostAtStart.append(count)
    }

    func poll(timeoutMS: Int) throws -> [HTTPResult] {
        guard !pending.isEmpty else { return [] }
        clock.current = Timestamp(microseconds: clock.current.microseconds + tickMS * 1000)
        onPoll()
        let now = clock.now()
        let elapsed = clock.elapsed()
        let done = pending.filter { elapsed - $0.elapsed >= latencyMS * 1000 }
        pending.removeAll { elapsed - $0.elapsed >= latencyMS * 1000 }
        return done.map { request, started, _ in
            let answer = answer(request)
            return HTTPResult(
                tag: request.tag, status: answer.status, failure: answer.failure,
                requestBytes: request.body.count, retryAfter: answer.retryAfter,
                body: Array(answer.body.utf8),
                started: started, finished: now)
        }
    }

    /// The endpoint a request went to (`http://e1.test/` → `e1`).
    static func host(_ url: String) -> String {
        String(url.dropFirst("http://".count).prefix { $0 != "." })
    }

    /// The endpoints of the requests started, in order.
    var hosts: [String] { started.map { Self.host($0.url) } }
}

extension DeliveryRun {
    /// A run over `store` and `transport`, with the test's clock and a silent logger.
    static func fake(
        _ store: FakeStore, _ transport: FakeTransport, options: DeliveryOptions = DeliveryOptions(),
        stop: @escaping () -> Bool = { false }, logged: LogLines? = nil, claims: BackgroundClaims? = nil
    ) -> DeliveryRun {
        let logger = Logger(
            program: "keysat-deliver", threshold: .info, environment: Environment([:]),
            write: { line in logged?.append(line) })
        return DeliveryRun(
            store: store, options: options, clock: transport.clock, logger: logger, stop: stop, claims: claims,
            transport: { transport })
    }
}

/// Lines a logger wrote.
final class LogLines: @unchecked Sendable {
    // Unchecked: the run and the test share one thread.
    private(set) var lines: [String] = []
    func append(_ line: String) { lines.append(line) }
}
