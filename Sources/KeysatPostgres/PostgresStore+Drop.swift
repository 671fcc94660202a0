import KeysatCore
public import KeysatStore

/// `deliveries drop` (issue 23), as `WebhookStore.dropDead`.
extension PostgresStore {
    public func dropDead(ids: [String]) throws -> Int {
        let list = PostgresArray.literal(ids)
        return try transaction {
            var dead: [String: Bool] = [:]
            // Locked in id order, as `retry` locks them: a run's outcome for one waits, or is waited for.
            for row in try rows(
                """
                SELECT id, \(DeliveryRecord.State.dead.condition("")) FROM webhook_deliveries
                WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE
                """, [list])
            {
                dead[row[0] ?? ""] = row[1] == "t"
            }
            for id in ids {
                guard let isDead = dead[id] else { throw WebhookStore.noDelivery(id) }
                if !isDead { throw WebhookStore.notDead(id) }
            }
            try run("DELETE FROM webhook_delivery_attempts WHERE delivery_id = ANY($1::text[])", [list])
            try run("DELETE FROM webhook_deliveries WHERE id = ANY($1::text[])", [list])
            return Set(ids).count
        }
    }
}
