import Dispatch
import Foundation
import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

/// Outcomes committed on the writer thread: all of them, in order, before `drain` returns, and
/// a failed commit reported to the run.
final class BackgroundRecorderTests: XCTestCase {
    /// A writer that records batches, slowly, and fails when told to.
    final class SlowWriter: DeliveryStore, @unchecked Sendable {
        var claimBatch: Int { 1 }
        func claim(_ deliveries: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
            -> [Claim]
        { deliveries.map { .claimed($0) } }
        // Unchecked: touched by the writer thread only, and read by the test after `drain`.
        var batches: [[String]] = []
        var failAt: Int?
        func dueDeliveries(dueBy: Timestamp, retries: Bool, after cursor: DueCursor?, limit: Int) throws
            -> [DueDelivery]
        { [] }
        func unschedulable(limit: Int) throws -> [DueDelivery] { [] }
        func prepareToRecord() throws {}
        func oldestPending(endpointID: String) throws -> DueDelivery? { nil }
        func payload(of delivery: DueDelivery) throws -> [UInt8]? { nil }
        func record(_ outcomes: [AttemptOutcome]) throws {
            usleep(2000)
            if let failAt, batches.count == failAt {
                throw KeysatError(.io, "database: disk full", cause: .sqlite(13))
            }
            batches.append(outcomes.map(\.deliveryID))
        }
        func eraseExpiredSecrets(now: Timestamp) throws -> Int { 0 }
        func disableEndpoint(id: String, reason: String, failingSince: Timestamp?) throws -> Bool { true }
        func takeProbes(everySeconds: Int64, limit: Int) throws -> [DueDelivery] { [] }
        func recoverEndpoint(id: String, reason: String) throws -> Int? { nil }
        func failingSince(endpointID: String) throws -> Timestamp? { nil }
    }

    func outcome(_ id: String) -> AttemptOutcome {
        AttemptOutcome(
            deliveryID: id, previousAttemptCount: 0, result: .delivered, statusCode: 204, error: nil,
            startedAt: Timestamp(seconds: 0), finishedAt: Timestamp(seconds: 0))
    }

    func testEveryOutcomeIsCommittedInOrderBeforeDrainReturns() throws {
        let writer = SlowWriter()
        let recorder = BackgroundRecorder(FakeStore()) { writer }
        let ids = (0..<200).map { "d\($0)" }
        for chunk in stride(from: 0, to: ids.count, by: 10) {
            try recorder.record(ids[chunk..<chunk + 10].map(outcome))
        }
        try recorder.drain()
        XCTAssertEqual(writer.batches.flatMap { $0 }, ids)
        XCTAssertLessThan(writer.batches.count, 20, "batches queued meanwhile go in one commit")
        try recorder.close()
    }

    func testAFailedCommitIsThrownToTheRun() throws {
        let writer = SlowWriter()
        writer.failAt = 0
        let recorder = BackgroundRecorder(FakeStore()) { writer }
        try recorder.record([outcome("a")])
        XCTAssertThrowsError(try recorder.drain()) {
            XCTAssertEqual(($0 as? KeysatError)?.cause, .sqlite(13))
        }
        XCTAssertThrowsError(try recorder.record([outcome("b")]))
        XCTAssertThrowsError(try recorder.close())
    }

    /// The writer is opened and proved before the run's first request: a writer that cannot open
    /// fails the run there (and not the process), before anything was sent.
    func testAWriterThatCannotOpenFailsBeforeTheFirstRequest() throws {
        let recorder = BackgroundRecorder(FakeStore()) { throw KeysatError(.permission, "read-only") }
        XCTAssertThrowsError(try recorder.prepareToRecord()) {
            XCTAssertEqual(($0 as? KeysatError)?.kind, .permission)
        }
        XCTAssertThrowsError(try recorder.record([outcome("a")]))
    }

    func testAWriterThatCannotCommitItsProofFailsBeforeTheFirstRequest() throws {
        final class FullDisk: DeliveryStore {
        var claimBatch: Int { 1 }
        func claim(_ deliveries: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
            -> [Claim]
        { deliveries.map { .claimed($0) } }
            func dueDeliveries(dueBy: Timestamp, retries: Bool, after cursor: DueCursor?, limit: Int) throws
                -> [DueDelivery]
            { [] }
            func unschedulable(limit: Int) throws -> [DueDelivery] { [] }
            func prepareToRecord() throws { throw KeysatError(.io, "disk full", cause: .sqlite(13)) }
            func oldestPending(endpointID: String) throws -> DueDelivery? { nil }
            func payload(of delivery: DueDelivery) throws -> [UInt8]? { nil }
            func record(_ outcomes: [AttemptOutcome]) throws {}
            func eraseExpiredSecrets(now: Timestamp) throws -> Int { 0 }
            func disableEndpoint(id: String, reason: String, failingSince: Timestamp?) throws -> Bool { true }
            func takeProbes(everySeconds: Int64, limit: Int) throws -> [DueDelivery] { [] }
            func recoverEndpoint(id: String, reason: String) throws -> Int? { nil }
            func failingSince(endpointID: String) throws -> Timestamp? { nil }
        }
        let recorder = BackgroundRecorder(FakeStore()) { FullDisk() }
        XCTAssertThrowsError(try recorder.prepareToRecord()) {
            XCTAssertEqual(($0 as? KeysatError)?.cause, .sqlite(13))
        }
    }

    /// A failed commit is seen at once by `checkRecording` (asked before each request), and the
    /// requests it held are counted.
    func testAFailedCommitIsSeenBeforeTheNextRequestAndCounted() throws {
        let writer = SlowWriter()
        writer.failAt = 0
        let recorder = BackgroundRecorder(FakeStore()) { writer }
        try recorder.prepareToRecord()
        XCTAssertNoThrow(try recorder.checkRecording())
        var unsent = outcome("b")
        unsent.requested = false
        try recorder.record([outcome("a"), unsent, outcome("c")])
        XCTAssertEqual(recorder.unrecordedRequests(), 2, "a and c were sent; b was not")
        XCTAssertThrowsError(try recorder.checkRecording()) {
            XCTAssertEqual(($0 as? KeysatError)?.cause, .sqlite(13))
        }
    }

    /// A writer that commits only when the test lets it.
    final class GatedWriter: DeliveryStore, @unchecked Sendable {
        var claimBatch: Int { 1 }
        func claim(_ deliveries: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
            -> [Claim]
        { deliveries.map { .claimed($0) } }
        let gate = DispatchSemaphore(value: 0)
        func dueDeliveries(dueBy: Timestamp, retries: Bool, after cursor: DueCursor?, limit: Int) throws
            -> [DueDelivery]
        { [] }
        func unschedulable(limit: Int) throws -> [DueDelivery] { [] }
        func prepareToRecord() throws {}
        func oldestPending(endpointID: String) throws -> DueDelivery? { nil }
        func payload(of delivery: DueDelivery) throws -> [UInt8]? { nil }
        func record(_ outcomes: [AttemptOutcome]) throws { gate.wait() }
        func eraseExpiredSecrets(now: Timestamp) throws -> Int { 0 }
        func disableEndpoint(id: String, reason: String, failingSince: Timestamp?) throws -> Bool { true }
        func takeProbes(everySeconds: Int64, limit: Int) throws -> [DueDelivery] { [] }
        func recoverEndpoint(id: String, reason: String) throws -> Int? { nil }
        func failingSince(endpointID: String) throws -> Timestamp? { nil }
    }

    /// Past the limit, the run waits for the writer instead of holding a backlog in memory.
    func testRecordWaitsWhileTheLimitIsUncommitted() throws {
        let writer = GatedWriter()
        let recorder = BackgroundRecorder(FakeStore(), limit: 10) { writer }
        try recorder.record((0..<10).map { outcome("a\($0)") })  // up to the limit: at once
        let returned = Returned()
        let extra = [outcome("b")]
        let thread = Thread {
            try? recorder.record(extra)
            returned.set()
        }
        thread.start()
        XCTAssertFalse(returned.wait(seconds: 0.2), "record went past the limit")
        writer.gate.signal()  // the first batch commits: room for the next
        XCTAssertTrue(returned.wait(seconds: 5))
        writer.gate.signal()
        try recorder.drain()
        try recorder.close()
    }

    func testNothingRecordedStartsNoThread() throws {
        var opened = false
        let recorder = BackgroundRecorder(FakeStore()) {
            opened = true
            return SlowWriter()
        }
        try recorder.drain()
        try recorder.close()
        XCTAssertFalse(opened)
    }
}

/// A flag one thread sets and another waits for.
private final class Returned: @unchecked Sendable {
    private let condition = NSCondition()
    private var done = false

    func set() {
        condition.lock()
        done = true
        condition.signal()
        condition.unlock()
    }

    /// Whether it was set within `seconds`.
    func wait(seconds: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while !done { if !condition.wait(until: deadline) { break } }
        return done
    }
}
