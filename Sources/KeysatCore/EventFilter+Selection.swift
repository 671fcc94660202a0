/// Which endpoints take an event: the one rule of both backends' enqueues (keysat-enqueue's
/// events, `trigger`'s samples, keysat-deliver's own).
extension EventFilter {
    /// The stored filters of the endpoints subscribed to an event, by their place among them.
    ///
    /// Two arrays in a plain struct, not a dictionary or a list of (id, filter) pairs: the
    /// first use of such a generic type costs keysat-enqueue's start the runtime's instantiation
    /// of its metadata and, for a dictionary, a scan of every protocol conformance (callgrind:
    /// 45,000 instructions for the pairs even when no endpoint has a filter, 120,000 for an
    /// `[Int: String]`); an empty `Stored` costs nothing.
    public struct Stored: Sendable {
        var places: [Int] = []
        var texts: [String] = []

        public init() {}

        /// Adds the filter of the endpoint at `place` (0-based, in the subscribers' order).
        public mutating func add(_ text: String, at place: Int) {
            places.append(place)
            texts.append(text)
        }

        public var isEmpty: Bool { places.isEmpty }
    }

    /// The ids among `ids` (subscribed endpoints, in order) that take the event: those without
    /// a filter, those whose filter matches the envelope, and those whose stored filter this
    /// program cannot read (another program wrote it): their row is written and keysat-deliver
    /// holds it until the filter is repaired, so that the event is neither lost nor sent where
    /// it may not belong.
    ///
    /// Nothing is parsed when no endpoint has a filter; otherwise the data once, and each
    /// filter once.
    public static func receivers(
        _ ids: [String], filters: Stored, eventType: String, timestamp: Timestamp, data: [UInt8], test: Bool = false
    ) -> [String] {
        guard !filters.isEmpty else { return ids }
        let envelope = Self.envelope(eventType: eventType, timestamp: timestamp, data: data, test: test)
        return ids.indices.compactMap { place in
            guard let stored = filters.places.firstIndex(of: place), let envelope,
                let filter = try? EventFilter(filters.texts[stored])
            else { return ids[place] }
            return filter.matches(envelope) ? ids[place] : nil
        }
    }
}
