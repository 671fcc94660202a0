import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

#if canImport(Glibc)
    import Glibc
#endif

/// Durations and deadlines of a run against a wall clock stepped back an hour, as NTP may
/// (issue 20: `--linger 3` held the lock for 40 s and more, `--max-runtime 3` kept sending at
/// 30 s). Only the monotonic clock may decide them.
final class SteppedClockTests: XCTestCase {
    func testMaxRuntimeHoldsWhenTheWallClockStepsBack() throws {
        let store = FakeStore()
        let transport = FakeTransport(clock: FixedClock(FakeStore.t0))
        for _ in 0..<100 { store.add("a") }
        var polls = 0
        transport.onPoll = {
            polls += 1
            if polls == 3 {  // an hour back, once, early in the run
                transport.clock.current = Timestamp(microseconds: transport.clock.current.microseconds - 3_600_000_000)
            }
        }
        var options = DeliveryOptions()
        options.concurrency = 1
        options.maxRuntimeSeconds = 0.05  // 50 ms: 10 attempts of 5 ms
        let summary = try DeliveryRun.fake(store, transport, options: options).run(at: FakeStore.t0)
        XCTAssertEqual(summary.stoppedBy, .maxRuntime)
        XCTAssertEqual(summary.attempted, 10)
        XCTAssertGreaterThanOrEqual(summary.elapsedMS, 0)
    }

    /// A real run (SQLite file, lock, kick file) lingering on a clock whose wall time steps
    /// back an hour 0.2 s in, and forward again 4 s in (so that a run on the wall clock ends
    /// instead of hanging the suite for an hour).
    func testLingerHoldsWhenTheWallClockStepsBack() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stepped-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/keysat.db"
        _ = try WebhookStore(path: path, create: true)
        var deliverer = Deliverer(databasePath: path)
        deliverer.lingerSeconds = 1
        let clock = SteppingClock(stepAfter: 0.2, restoreAfter: 4, by: -3600)
        let started = SteppingClock.monotonicSeconds()
        let result = try deliverer.execute(
            dryRun: false, clock: clock, logger: Logger(program: "test", threshold: .error, environment: Environment([:]), write: { _ in }))
        let elapsed = SteppingClock.monotonicSeconds() - started
        guard case .ran = result else { return XCTFail("\(result)") }
        XCTAssertGreaterThanOrEqual(elapsed, 0.9)
        XCTAssertLessThan(elapsed, 3, "--linger 1 lingered \(elapsed) s on a clock stepped back")
    }
}

/// The system's clocks, with the wall clock stepped by `by` seconds from `stepAfter` seconds
/// after creation until `restoreAfter`; the monotonic clock untouched.
final class SteppingClock: TimeSource, @unchecked Sendable {
    // Unchecked: immutable after init.
    private let origin = SteppingClock.monotonicSeconds()
    private let stepAfter: Double
    private let restoreAfter: Double
    private let step: Int64

    init(stepAfter: Double, restoreAfter: Double, by seconds: Int64) {
        self.stepAfter = stepAfter
        self.restoreAfter = restoreAfter
        step = seconds * 1_000_000
    }

    static func monotonicSeconds() -> Double { Double(SystemClock().elapsed()) / 1e6 }

    func now() -> Timestamp {
        let since = Self.monotonicSeconds() - origin
        let wall = SystemClock().now().microseconds
        return Timestamp(microseconds: since >= stepAfter && since < restoreAfter ? wall + step : wall)
    }

    func elapsed() -> Int64 { SystemClock().elapsed() }
}
