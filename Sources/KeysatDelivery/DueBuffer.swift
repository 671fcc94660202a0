import KeysatCore
import KeysatStore

/// The deliveries due at a run's start, read page by page and held per endpoint, so that
/// a busy or capped endpoint does not hold up the others.
///
/// Deliveries never attempted come first, then retries, each group oldest first. At most
/// `bufferLimit` rows are held in memory, whatever the backlog.
final class DueBuffer {
    private let store: any DeliveryStore
    private let t0: Timestamp
    private let pageSize: Int
    private let bufferLimit: Int
    private var retries = false
    private var cursor: DueCursor?
    private(set) var exhausted = false
    /// Rows waiting, per endpoint, in arrival order; `heads` index the next one.
    private var waiting: [String: [DueDelivery]] = [:]
    private var heads: [String: Int] = [:]
    /// Endpoints with rows waiting, in the order they first appeared (round robin).
    private var order: [String] = []
    private var nextTurn = 0
    private(set) var buffered = 0

    init(store: any DeliveryStore, t0: Timestamp, pageSize: Int, bufferLimit: Int) {
        self.store = store
        self.t0 = t0
        self.pageSize = pageSize
        self.bufferLimit = bufferLimit
    }

    /// Reads pages until the buffer is full or nothing due is left.
    func fill() throws {
        while !exhausted && buffered + pageSize <= max(bufferLimit, pageSize) {
            let page = try store.dueDeliveries(dueBy: t0, retries: retries, after: cursor, limit: pageSize)
            for delivery in page { append(delivery) }
            if let last = page.last {
                cursor = DueCursor(after: last)
            }
            if page.count < pageSize {
                if retries {
                    exhausted = true
                } else {
                    retries = true
                    cursor = nil
                }
            }
        }
    }

    private func append(_ delivery: DueDelivery) {
        if waiting[delivery.endpointID] == nil {
            waiting[delivery.endpointID] = []
            heads[delivery.endpointID] = 0
            order.append(delivery.endpointID)
        }
        waiting[delivery.endpointID]!.append(delivery)
        buffered += 1
    }

    /// The next delivery of the next endpoint, in turn, that `canStart` accepts.
    func next(where canStart: (String) -> Bool) -> DueDelivery? {
        guard !order.isEmpty else { return nil }
        for step in 0..<order.count {
            let index = (nextTurn + step) % order.count
            let endpoint = order[index]
            guard canStart(endpoint), let delivery = pop(endpoint) else { continue }
            // The next turn is the following endpoint's; when this one's last row was taken it
            // left the order, and the following one moved into its place.
            let stayed = index < order.count && order[index] == endpoint
            nextTurn = order.isEmpty ? 0 : (stayed ? index + 1 : index) % order.count
            return delivery
        }
        return nil
    }

    /// The next of `endpoint`'s rows; with `unkeyedOnly`, `nil` when it has an ordering key.
    private func pop(_ endpoint: String, unkeyedOnly: Bool = false) -> DueDelivery? {
        guard let rows = waiting[endpoint], let head = heads[endpoint], head < rows.count else { return nil }
        let delivery = rows[head]
        if unkeyedOnly && delivery.orderingKey != nil { return nil }
        heads[endpoint] = head + 1
        buffered -= 1
        if head + 1 == rows.count {
            forget(endpoint)
        } else if head + 1 >= 256 && head + 1 >= rows.count / 2 {
            // Rows taken are dropped now and then, or a busy endpoint's list would keep every
            // row (and payload) read in the run.
            waiting[endpoint]!.removeFirst(head + 1)
            heads[endpoint] = 0
        }
        return delivery
    }

    /// Up to `count` more of `endpoint`'s waiting rows, in order (to be claimed with one it
    /// just gave), stopping at a row with an ordering key (which goes by its key's chain).
    func take(_ endpoint: String, upTo count: Int) -> [DueDelivery] {
        var taken: [DueDelivery] = []
        while taken.count < count, let row = pop(endpoint, unkeyedOnly: true) { taken.append(row) }
        return taken
    }

    /// Puts `rows` (of one endpoint, taken from the buffer and not started) back at the head
    /// of their endpoint's rows, in order.
    func putBack(_ rows: [DueDelivery]) {
        guard let endpoint = rows.first?.endpointID else { return }
        if var waiting = waiting[endpoint], let head = heads[endpoint] {
            waiting.replaceSubrange(head..<head, with: rows)
            self.waiting[endpoint] = waiting
        } else {
            for row in rows { append(row) }
            return
        }
        buffered += rows.count
    }

    /// Drops every waiting row of `endpoint` (and rows of it read later); returns how many.
    func drop(_ endpoint: String) -> Int {
        var dropped = 0
        if let rows = waiting[endpoint], let head = heads[endpoint] { dropped = rows.count - head }
        buffered -= dropped
        forget(endpoint)
        return dropped
    }

    private func forget(_ endpoint: String) {
        waiting[endpoint] = nil
        heads[endpoint] = nil
        if let index = order.firstIndex(of: endpoint) {
            order.remove(at: index)
            if nextTurn > index { nextTurn -= 1 }
            if nextTurn >= order.count { nextTurn = 0 }
        }
    }

    /// Whether any row is waiting.
    var isEmpty: Bool { buffered == 0 }
}
