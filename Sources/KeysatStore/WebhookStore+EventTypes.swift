import KeysatCore

/// The event types an operator can expect: Keysat's own (`EventType.catalogue`), those declared
/// with `keysat-webhooks event-types add`, and those an endpoint subscribes to by name (a
/// pattern such as `license.*` is not listed, but the types it matches are known).
extension WebhookStore {
    /// Where an event type is known from.
    public enum EventTypeSource: String, Sendable {
        case keysat
        case declared
        case subscribed
    }

    /// Every known event type with where it is known from, sorted by name.
    public func knownEventTypes() throws -> [(name: String, source: EventTypeSource)] {
        var known: [String: EventTypeSource] = [:]
        for name in EventType.catalogue { known[name] = .keysat }
        for name in try database.prepare("SELECT name FROM keysat_webhooks_event_types").rows(
            [], { $0.string(0) })
        where known[name] == nil {
            known[name] = .declared
        }
        let subscribed = try database.prepare(
            """
            SELECT DISTINCT value FROM webhook_endpoints, json_each(webhook_endpoints.event_types)
            WHERE json_valid(event_types) AND value != '*' AND substr(value, -2) != '.*'
            """
        ).rows { $0.string(0) }
        for name in subscribed where known[name] == nil { known[name] = .subscribed }
        return known.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Whether `name` is known: Keysat's, declared, or subscribed to by name or by a pattern
    /// (one query at most, none for Keysat's own).
    public func isKnownEventType(_ name: String) throws -> Bool {
        if EventType.catalogue.contains(name) { return true }
        return try database.prepare(
            """
            SELECT EXISTS (SELECT 1 FROM keysat_webhooks_event_types WHERE name = ?1)
                OR EXISTS (SELECT 1 FROM webhook_endpoints, json_each(webhook_endpoints.event_types)
                           WHERE json_valid(event_types) AND (value = ?1 OR \(Self.patternMatches)))
            """
        ).first([.text(name)]) { $0.integer(0) == 1 } ?? false
    }

    /// Declares an event type; `false` when it already was known.
    @discardableResult
    public func declareEventType(_ name: String) throws -> Bool {
        try EventType.validate(name)
        if try isKnownEventType(name) { return false }
        try database.writeTransaction {
            try database.prepare(
                "INSERT OR IGNORE INTO keysat_webhooks_event_types (name, declared_at) VALUES (?, ?)"
            )
            .run([.text(name), .text(clock.now().rfc3339)])
        }
        return true
    }

    /// Forgets a declared event type; `false` when it was not declared.
    @discardableResult
    public func forgetEventType(_ name: String) throws -> Bool {
        try database.writeTransaction {
            try database.prepare("DELETE FROM keysat_webhooks_event_types WHERE name = ?").run([.text(name)])
            return database.changes > 0
        }
    }
}
