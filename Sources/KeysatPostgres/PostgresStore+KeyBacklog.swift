public import KeysatStore

/// `WebhookStore.keyBacklog`'s PostgreSQL side: the same query, times as RFC 3339 text.
extension PostgresStore {
    public func keyBacklog() throws -> [String: KeyBacklog] {
        var found: [String: KeyBacklog] = [:]
        for row in try rows(KeyBacklog.sql { "keysat_rfc3339(\($0))" }) {
            found[row[0] ?? ""] = KeyBacklog(heldKeys: Int(row[1] ?? "") ?? 0, oldestWaiting: row[2])
        }
        return found
    }
}
