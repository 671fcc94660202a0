public import KeysatCore

/// `deliveries drop` (issue 23): deletes dead deliveries, so that a key held by one
/// (`--order-on-dead hold`) goes on without re-sending it.
extension WebhookStore {
    /// Deletes the dead deliveries `ids` and their attempts, in one transaction; returns how
    /// many. - Throws: `KeysatError` (data, 65) naming an id that is unknown or not dead:
    /// nothing is deleted then.
    public func dropDead(ids: [String]) throws -> Int {
        try database.writeTransaction {
            let state = try database.prepare(
                "SELECT \(DeliveryRecord.State.dead.condition("")) FROM webhook_deliveries WHERE id = ?")
            for id in ids {
                guard let dead = try state.first([.text(id)], { $0.integer(0) == 1 }) else { throw Self.noDelivery(id) }
                if !dead { throw Self.notDead(id) }
            }
            let attempts = try database.prepare(
                """
                DELETE FROM webhook_delivery_attempts WHERE id IN
                    (SELECT a.id FROM webhook_deliveries AS d JOIN webhook_delivery_attempts AS a
                     ON \(AttemptHistory.of("d", "a")) WHERE d.id = ?)
                """)
            let delivery = try database.prepare("DELETE FROM webhook_deliveries WHERE id = ?")
            for id in Set(ids) {
                try attempts.run([.text(id)])
                try delivery.run([.text(id)])
            }
            return Set(ids).count
        }
    }

    /// The refusal to drop a delivery that is not dead, in the same words on every backend.
    public static func notDead(_ id: String) -> KeysatError {
        KeysatError(
            .data,
            "delivery \(id) is not dead: only dead deliveries can be dropped (nothing was dropped); a pending one is still being delivered")
    }
}
