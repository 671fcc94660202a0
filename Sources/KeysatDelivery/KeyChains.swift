import KeysatCore
import KeysatStore

/// Deliveries with an ordering key (issue 23) go one at a time per endpoint and key, by
/// sequence number, as a chain per key: a key's chain begins when a row of it first comes off
/// the due pages, with the key's head as the store says it (`DeliveryStore.keyHead`: its
/// lowest pending number, not the row that came), and goes on with the next head once an
/// attempt is delivered or dead (dead: unless the endpoint holds on dead); a retry holds the
/// key until a later run. Rows of a begun key that come off the pages are never sent as they
/// come, so a key has at most one attempt in flight in a run, and the store's claim keeps it so
/// across runs. Other keys, and rows without a key, go on at full speed.
struct KeyChains {
    /// Keys (endpoint, NUL, key, as UTF-8 bytes) this run has begun. Bytes, not a `String`:
    /// Swift's strings are equal when canonically equivalent ("é" as one code point or two, K
    /// and the Kelvin sign), the databases' keys only when their bytes are, and a key taken for
    /// another was never sent while the other came first.
    private var begun: Set<[UInt8]> = []
    /// Deliveries (rowids) taken from chains in this run: none is attempted twice.
    private var taken: Set<Int64> = []

    private static func name(_ row: DueDelivery) -> [UInt8] {
        Array(row.endpointID.utf8) + [0] + Array((row.orderingKey ?? "").utf8)
    }

    /// Begins `row`'s key; `false` when this run has begun it already (its chain, under way or
    /// held, serves it).
    mutating func begin(_ row: DueDelivery) -> Bool { begun.insert(Self.name(row)).inserted }

    func contains(_ row: DueDelivery) -> Bool { begun.contains(Self.name(row)) }

    /// Forgets `row`'s key, which could not start now (no slot, no room, no token): a row of
    /// it put back in the due buffer begins it again, from the store's head.
    mutating func release(_ row: DueDelivery) {
        begun.remove(Self.name(row))
        taken.remove(row.rowID)
    }

    /// `head` (its key's head) if it may go next: due at `t0` (by the store's clock where it
    /// judges), or a row that cannot be sent as it stands (dead-lettered, and the key moves on),
    /// and not yet taken in this run.
    mutating func next(_ head: DueDelivery?, dueBy t0: Timestamp) -> DueDelivery? {
        guard let head, head.defect != nil || (head.isDue ?? (head.nextAttemptAt <= t0.rfc3339)),
            taken.insert(head.rowID).inserted
        else {
            return nil
        }
        return head
    }

    /// Whether a key goes on after one of its deliveries ended with `result`: not after a
    /// retry; after a dead one unless the endpoint holds its keys on dead (`--order-on-dead
    /// hold`, `EndpointSettings.holdOnDead`).
    static func continues(after result: AttemptOutcome.Result, hold: Bool) -> Bool {
        switch result {
        case .delivered: return true
        case .retry: return false
        case .dead: return !hold
        }
    }
}
