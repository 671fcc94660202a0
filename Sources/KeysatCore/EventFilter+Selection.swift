/// Which endpoints take an event: the one rule of both backends' enqueues (keysat-enqueue's
/// events, `trigger`'s samples, keysat-deliver's own).
extension EventFilter {
    /// The ids among `candidates` (subscribed endpoints, in order, each with its stored
    /// filter) that take the event: those without a filter, those whose filter matches the
    /// envelope, and those whose stored filter this program cannot read (another program wrote
    /// it): their row is written and keysat-deliver holds it until the filter is repaired, so
    /// that the event is neither lost nor sent where it may not belong.
    ///
    /// Nothing is parsed when no candidate has a filter; otherwise the data once, and each
    /// filter once.
    public static func receivers(
        _ candidates: [(id: String, filter: String?)], eventType: String, timestamp: Timestamp, data: [UInt8],
        test: Bool = false
    ) -> [String] {
        guard candidates.contains(where: { $0.filter != nil }) else { return candidates.map(\.id) }
        let envelope = Self.envelope(eventType: eventType, timestamp: timestamp, data: data, test: test)
        return candidates.compactMap { candidate in
            guard let text = candidate.filter, let envelope, let filter = try? EventFilter(text) else {
                return candidate.id
            }
            return filter.matches(envelope) ? candidate.id : nil
        }
    }
}
