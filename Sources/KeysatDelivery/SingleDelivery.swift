public import KeysatCore
public import KeysatStore

/// A store seen through one delivery: a run over it sends that delivery alone, whatever else is
/// due, and records its outcome in the store (`keysat-webhooks endpoint test`).
public final class SingleDelivery: DeliveryStore {
    private let store: any DeliveryStore
    private var delivery: DueDelivery?

    /// - Parameter delivery: sent once, whatever its `next_attempt_at` says.
    public init(_ delivery: DueDelivery, in store: any DeliveryStore) {
        self.store = store
        var alone = delivery
        alone.ordered = false  // it goes out now, not after the endpoint's older deliveries
        self.delivery = alone
    }

    public func dueDeliveries(dueBy: Timestamp, retries: Bool, after cursor: DueCursor?, limit: Int) throws
        -> [DueDelivery]
    {
        guard !retries, cursor == nil, let delivery else { return [] }
        self.delivery = nil
        return [delivery]
    }

    public func unschedulable(limit: Int) throws -> [DueDelivery] { [] }
    public func oldestPending(endpointID: String) throws -> DueDelivery? { nil }
    public func keyHead(endpointID: String, key: String, hold: Bool) throws -> DueDelivery? { nil }
    public func payload(of delivery: DueDelivery) throws -> [UInt8]? { try store.payload(of: delivery) }
    /// Sent whatever its time says: the row is written not yet due (`writeTestDelivery`), so no
    /// run takes it meanwhile, and its outcome is written where no run holds it.
    public var claimBatch: Int { 1 }
    public func claim(_ deliveries: [DueDelivery], perEndpoint: Int, inFlight: Int, leaseSeconds: Double) throws
        -> [Claim]
    {
        deliveries.map { .claimed($0) }
    }
    public func record(_ outcomes: [AttemptOutcome]) throws { try store.record(outcomes) }
    public func prepareToRecord() throws { try store.prepareToRecord() }
    public func checkRecording() throws { try store.checkRecording() }
    public func unrecordedRequests() -> Int { store.unrecordedRequests() }
    public func eraseExpiredSecrets(now: Timestamp) throws -> Int { 0 }
    public func disableEndpoint(id: String, reason: String, failingSince: Timestamp?) throws -> Bool {
        try store.disableEndpoint(id: id, reason: reason, failingSince: failingSince)
    }
    /// One delivery is sent, no probe.
    public func takeProbes(everySeconds: Int64, limit: Int) throws -> [DueDelivery] { [] }
    public func recoverEndpoint(id: String, reason: String) throws -> Int? { nil }
    public func failingSince(endpointID: String) throws -> Timestamp? { nil }
    public func announceFailing(endpointID: String, since: Timestamp, percent: Int, data: [UInt8]) throws
        -> Bool
    {
        false
    }
}
