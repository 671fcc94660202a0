public import KeysatCore
public import KeysatStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A store whose outcomes are committed on a second thread, over a second connection, so that
/// the run's thread goes on sending while SQLite writes (issue 14: the commits were a sixth of a
/// busy run's time, spent with every transfer waiting).
///
/// Everything but `record` goes to the run's own store, after `drain` where the answer depends
/// on the outcomes recorded so far (the next delivery of an ordered chain, an endpoint's failing
/// streak) or where it writes itself (disabling an endpoint): so every rule sees what it saw when
/// commits were synchronous. A failed commit is thrown from the next call, as it would have been
/// from `record`, and at once from `checkRecording`, which the run asks before each request. The
/// writer's connection is opened by `prepareToRecord`, before the run's first request, and proved
/// with a small commit: an idle run pays nothing, and a run that could not record sends nothing.
///
/// At most `limit` outcomes wait uncommitted: past it, `record` waits for the writer. A disk
/// slower than the network would otherwise hold a whole backlog's outcomes in memory (peak RSS
/// growing with the rows due), and a crash would make more of them be sent again.
public final class BackgroundRecorder: DeliveryStore, @unchecked Sendable {
    // Unchecked: `store` is used only on the run's thread, `writer` only on the writer thread
    // once it is started (it is opened before),
    // and the queue only under `mutex`.
    private let store: any DeliveryStore
    private let openWriter: () throws -> any DeliveryStore
    private var writer: (any DeliveryStore)?
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queue: [[AttemptOutcome]] = []
    /// Outcomes handed over and not yet committed (queued or being written).
    private var uncommitted = 0
    private let limit: Int
    private var writing = false
    private var failure: (any Error)?
    /// Set (after `failure`, under the mutex) when a commit failed: read without the mutex by
    /// `checkRecording`, before every request. Taking the mutex there contended with the writer
    /// thread on every request (measured: 12 µs more CPU per delivery at concurrency 64).
    private let failed = Atomic<Bool>(false)
    /// Requests whose outcomes were in a batch whose commit failed.
    private var lost = 0
    private var closing = false
    private var thread: pthread_t?

    /// - Parameters:
    ///   - store: the run's store, for everything but `record`.
    ///   - limit: how many outcomes may wait uncommitted before `record` waits.
    ///   - writer: opens the writer's own connection to the same database (before the writer
    ///     thread starts; only that thread uses it afterwards).
    public init(
        _ store: any DeliveryStore, limit: Int = 2_000,
        writer: @escaping () throws -> any DeliveryStore
    ) {
        self.store = store
        self.limit = max(limit, 1)
        self.openWriter = writer
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        try? close()
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    // MARK: - The run's side

    public func record(_ outcomes: [AttemptOutcome]) throws {
        guard !outcomes.isEmpty else { return }
        try startIfNeeded()
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        // A batch larger than the limit waits for an empty queue, not for ever.
        while failure == nil && uncommitted > 0 && uncommitted + outcomes.count > limit {
            pthread_cond_wait(changed, mutex)
        }
        if let failure { throw failure }
        queue.append(outcomes)
        uncommitted += outcomes.count
        pthread_cond_broadcast(changed)
    }

    /// Opens the writer's connection and commits a small write through it, then starts the
    /// writer thread: before a run's first request, so that a run that cannot record sends
    /// nothing. The connection is opened here, on the run's thread, before the writer thread
    /// exists; from then on only that thread uses it.
    public func prepareToRecord() throws { try startIfNeeded() }

    public func checkRecording() throws {
        guard failed.load(ordering: .acquiring) else { return }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if let failure { throw failure }
    }

    public func unrecordedRequests() -> Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !queue.isEmpty || writing { pthread_cond_wait(changed, mutex) }
        return lost
    }

    /// Waits until every outcome handed over is committed; throws the first failed commit.
    public func drain() throws {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !queue.isEmpty || writing { pthread_cond_wait(changed, mutex) }
        if let failure { throw failure }
    }

    /// Drains, then ends the writer thread.
    public func close() throws {
        guard let thread else { return }
        pthread_mutex_lock(mutex)
        closing = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        pthread_join(thread, nil)
        self.thread = nil
        if let failure { throw failure }
    }

    public func dueDeliveries(dueBy: Timestamp, retries: Bool, after cursor: DueCursor?, limit: Int) throws
        -> [DueDelivery]
    {
        // A row recorded meanwhile is either delivered, dead or due after t0: never on a due page.
        try store.dueDeliveries(dueBy: dueBy, retries: retries, after: cursor, limit: limit)
    }

    public func unschedulable(limit: Int) throws -> [DueDelivery] { try store.unschedulable(limit: limit) }


    public func oldestPending(endpointID: String) throws -> DueDelivery? {
        try drain()
        return try store.oldestPending(endpointID: endpointID)
    }

    public func keyHead(endpointID: String, key: String, hold: Bool) throws -> DueDelivery? {
        try drain()
        return try store.keyHead(endpointID: endpointID, key: key, hold: hold)
    }

    public func payload(of delivery: DueDelivery) throws -> [UInt8]? { try store.payload(of: delivery) }

    public var claimBatch: Int { store.claimBatch }

    public func release(_ claimed: [DueDelivery]) throws { try store.release(claimed) }

    public func claim(_ deliveries: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
        -> [Claim]
    {
        try store.claim(deliveries, perEndpoint: perEndpoint, inFlight: inFlight, leaseSeconds: leaseSeconds)
    }

    public func eraseExpiredSecrets(now: Timestamp) throws -> Int {
        try drain()
        return try store.eraseExpiredSecrets(now: now)
    }

    public func disableEndpoint(id: String, reason: String, failingSince: Timestamp?) throws -> Bool {
        try drain()
        return try store.disableEndpoint(id: id, reason: reason, failingSince: failingSince)
    }

    public func takeProbes(everySeconds: Int64, limit: Int) throws -> [DueDelivery] {
        try store.takeProbes(everySeconds: everySeconds, limit: limit)
    }

    public func recoverEndpoint(id: String, reason: String) throws -> Int? {
        try drain()
        return try store.recoverEndpoint(id: id, reason: reason)
    }

    public func failingSince(endpointID: String) throws -> Timestamp? {
        try drain()
        return try store.failingSince(endpointID: endpointID)
    }

    public func announceFailing(endpointID: String, since: Timestamp, percent: Int, data: [UInt8]) throws
        -> Bool
    {
        try drain()
        return try store.announceFailing(endpointID: endpointID, since: since, percent: percent, data: data)
    }

    // MARK: - The writer's side

    /// Opens and proves the writer's connection (see `prepareToRecord`), then starts the thread.
    private func startIfNeeded() throws {
        guard thread == nil else { return }
        if writer == nil {
            let opened = try openWriter()
            try opened.prepareToRecord()
            writer = opened
        }
        // Unretained: `close` (and so `deinit`) joins the thread before `self` goes away.
        thread = try WorkerThread.start("records outcomes") { [unowned(unsafe) self] in self.writeLoop() }
    }

    /// Commits what the run hands over, batch after batch, until closed and drained.
    private func writeLoop() {
        pthread_mutex_lock(mutex)
        while true {
            while queue.isEmpty && !closing { pthread_cond_wait(changed, mutex) }
            if queue.isEmpty { break }
            // Everything queued meanwhile goes in one transaction.
            let batch = queue.flatMap { $0 }
            queue.removeAll(keepingCapacity: true)
            writing = true
            pthread_mutex_unlock(mutex)
            let error = commit(batch)
            pthread_mutex_lock(mutex)
            writing = false
            uncommitted -= batch.count
            if let error {
                if failure == nil { failure = error }
                failed.store(true, ordering: .releasing)
                lost += batch.lazy.filter(\.requested).count
            }
            pthread_cond_broadcast(changed)
        }
        pthread_mutex_unlock(mutex)
    }

    private func commit(_ batch: [AttemptOutcome]) -> (any Error)? {
        do {
            guard let writer else { throw KeysatError(.internal, "the writer's connection is not open") }
            try writer.record(batch)
            return nil
        } catch {
            return error
        }
    }
}
