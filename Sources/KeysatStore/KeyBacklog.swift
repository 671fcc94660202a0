/// What `stats` and `endpoint show` say of an endpoint's ordering keys (issue 23): the keys held
/// back (their oldest delivery failed and waits for a retry, or, with `--order-on-dead hold`, is
/// dead) that have newer deliveries waiting behind it, and when the oldest of those was created.
public struct KeyBacklog: Sendable, Equatable {
    public var heldKeys = 0
    /// RFC 3339; `nil` when no key is held.
    public var oldestWaiting: String?

    public init(heldKeys: Int = 0, oldestWaiting: String? = nil) {
        self.heldKeys = heldKeys
        self.oldestWaiting = oldestWaiting
    }

    /// The query, per endpoint, for both backends (`oldest` wraps the time for output): heads
    /// (`h`) that failed, with no older delivery of their key before them, joined to the
    /// pending deliveries of the key behind them (`w`). It reads only unfinished keyed rows
    /// (the partial index on endpoint, key and number), never the history.
    public static func sql(oldest: (String) -> String) -> String {
        let holds = """
            EXISTS (SELECT 1 FROM webhook_endpoints AS e WHERE e.id = h.endpoint_id AND e.order_on_dead = 'hold')
            """
        return """
            SELECT h.endpoint_id, count(DISTINCT h.keysat_webhooks_ordering_key), \(oldest("min(w.created_at)"))
            FROM webhook_deliveries AS h
            JOIN webhook_deliveries AS w ON w.endpoint_id = h.endpoint_id
                AND w.keysat_webhooks_ordering_key = h.keysat_webhooks_ordering_key
                AND w.keysat_webhooks_sequence > h.keysat_webhooks_sequence
                AND w.delivered_at IS NULL AND w.next_attempt_at IS NOT NULL
            WHERE h.keysat_webhooks_ordering_key IS NOT NULL AND h.delivered_at IS NULL
              AND h.keysat_webhooks_sequence IS NOT NULL AND h.attempt_count > 0
              AND (h.next_attempt_at IS NOT NULL OR \(holds))
              AND NOT EXISTS (
                  SELECT 1 FROM webhook_deliveries AS o
                  WHERE o.endpoint_id = h.endpoint_id AND o.keysat_webhooks_ordering_key = h.keysat_webhooks_ordering_key
                    AND o.delivered_at IS NULL AND o.keysat_webhooks_sequence < h.keysat_webhooks_sequence
                    AND (o.next_attempt_at IS NOT NULL OR \(holds)))
            GROUP BY h.endpoint_id
            """
    }
}

extension WebhookStore {
    /// Held ordering keys per endpoint id (`KeyBacklog`); endpoints without any are left out.
    public func keyBacklog() throws -> [String: KeyBacklog] {
        var found: [String: KeyBacklog] = [:]
        let rows = try database.prepare(KeyBacklog.sql { $0 }).rows([]) { row in
            (row.string(0), KeyBacklog(heldKeys: row.integer(1) ?? 0, oldestWaiting: row.text(2)))
        }
        for (endpoint, backlog) in rows { found[endpoint] = backlog }
        return found
    }
}
