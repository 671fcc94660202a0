import KeysatCore
import KeysatStore

/// Ordered endpoints take their deliveries one at a time, oldest first (by creation), as a
/// chain: the oldest pending delivery if it is due, then the next once that one is delivered
/// or dead; a retry holds back the rest until a later run. Their rows are not served from the
/// due pages but asked for, one by one, from the store.
struct OrderedChains {
    /// Endpoints whose chain this run has begun.
    private(set) var endpoints: Set<String> = []
    /// Deliveries (rowids) taken from chains in this run: none is attempted twice.
    private var taken: Set<Int64> = []

    func contains(_ endpoint: String) -> Bool { endpoints.contains(endpoint) }

    mutating func begin(_ endpoint: String) { endpoints.insert(endpoint) }

    /// `oldest` (the endpoint's oldest pending delivery) if it may go next: due at `t0`, or a
    /// row that cannot be sent as it stands (its time may never come: it is dead-lettered, and
    /// the chain moves on), and not yet taken in this run.
    mutating func next(_ oldest: DueDelivery?, dueBy t0: Timestamp) -> DueDelivery? {
        guard let oldest, oldest.defect != nil || (oldest.isDue ?? (oldest.nextAttemptAt <= t0.rfc3339)),
            taken.insert(oldest.rowID).inserted
        else {
            return nil
        }
        return oldest
    }

    /// Lets `rowID`, taken from its chain and not sent (its endpoint's rate limit had no token
    /// yet), be taken again when the chain goes on.
    mutating func retake(_ rowID: Int64) { taken.remove(rowID) }

    /// Whether a chain goes on after one of its deliveries ended with `result`.
    static func continues(after result: AttemptOutcome.Result) -> Bool {
        if case .retry = result { return false }
        return true
    }
}
