public import KeysatCore
public import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// Claims answered on a thread and a connection of their own while the run's thread drives the
/// transfers: for a store whose claim is a round trip to a server (`DeliveryStore.claimBatch`
/// above 1, PostgreSQL). Measured (docs/BENCHMARKS.md, tenth session): the run's thread spent
/// 42 % of a PostgreSQL run waiting for claims and every transfer waited with it.
///
/// One claim at a time: `begin` hands it over and returns; `answer(wait:)` takes the answers
/// back, or the claim's failure. The claimer's connection is opened by the first `begin`, on the
/// run's thread, before the claimer's thread starts; from then on only that thread uses it. It
/// belongs to the same process, so its claims are the run's (`PostgresStore.runID`): counted
/// with the run's other attempts in flight, ended by the run's outcomes. The run's side is used
/// by one thread.
public final class BackgroundClaims: @unchecked Sendable {
    // Unchecked: `claimer` is used only on the claimer's thread once it is started (it is
    // opened before), `outstanding` only on the run's thread, the rest only under `mutex`.
    private struct Request: @unchecked Sendable {
        var rows: [DueDelivery]
        var perEndpoint: Int
        var inFlight: Int
        var leaseSeconds: Double
        var wake: (@Sendable () -> Void)?
    }

    private let open: () throws -> any DeliveryStore
    private var claimer: (any DeliveryStore)?
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var request: Request?
    private var answered: Result<[Claim], any Error>?
    private var closing = false
    private var thread: pthread_t?
    /// A claim handed over whose answer the run has not taken (the run's thread only).
    public private(set) var outstanding = false

    /// - Parameter open: opens the claimer's own connection to the run's database.
    public init(open: @escaping () throws -> any DeliveryStore) {
        self.open = open
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        close()
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    // MARK: - The run's side

    /// Hands a claim over (`DeliveryStore.claim`, same arguments) and returns at once; `wake`
    /// is called on the claimer's thread once the answer is there (it ends the run's `poll`).
    /// At most one claim is outstanding: the run takes its answer before the next.
    public func begin(
        _ rows: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double,
        wake: (@Sendable () -> Void)?
    ) throws {
        guard !outstanding else {
            throw KeysatError(.internal, "a claim was begun while another was outstanding")
        }
        try startIfNeeded()
        pthread_mutex_lock(mutex)
        request = Request(
            rows: rows, perEndpoint: perEndpoint, inFlight: inFlight, leaseSeconds: leaseSeconds, wake: wake)
        answered = nil
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        outstanding = true
    }

    /// The outstanding claim's answers (or the failure it threw), waiting for them with `wait`;
    /// `nil` when none is outstanding, or without `wait` when it is not answered yet.
    public func answer(wait: Bool) -> Result<[Claim], any Error>? {
        guard outstanding else { return nil }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while wait && answered == nil { pthread_cond_wait(changed, mutex) }
        guard let answer = answered else { return nil }
        answered = nil
        outstanding = false
        return answer
    }

    /// Ends the claimer's thread once it has answered what it was given; closes its connection.
    public func close() {
        guard let thread else { return }
        pthread_mutex_lock(mutex)
        closing = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        pthread_join(thread, nil)
        self.thread = nil
        claimer = nil
    }

    // MARK: - The claimer's side

    private func startIfNeeded() throws {
        guard thread == nil else { return }
        if claimer == nil { claimer = try open() }
        // Unretained: `close` (and so `deinit`) joins the thread before `self` goes away.
        thread = try WorkerThread.start("claims deliveries") { [unowned(unsafe) self] in self.claimLoop() }
    }

    private func claimLoop() {
        pthread_mutex_lock(mutex)
        while true {
            while request == nil && !closing { pthread_cond_wait(changed, mutex) }
            guard let next = request else { break }
            request = nil
            pthread_mutex_unlock(mutex)
            let result = Result {
                guard let claimer else {
                    throw KeysatError(.internal, "the claimer's connection is not open")
                }
                return try claimer.claim(
                    next.rows, perEndpoint: next.perEndpoint, inFlight: next.inFlight,
                    leaseSeconds: next.leaseSeconds)
            }
            pthread_mutex_lock(mutex)
            answered = result
            // Under the mutex: the run cannot take the answer, end its round and free the
            // transport that `wake` ends the poll of before the wake-up is delivered.
            next.wake?()
            pthread_cond_broadcast(changed)
        }
        pthread_mutex_unlock(mutex)
    }
}
