/// Where a delivery's attempts are (schema step 12): under the delivery's history number
/// (`webhook_deliveries.keysat_webhooks_history`, the id of its first attempt, so new attempts
/// are appended to their index), or, for attempts written without one (before step 12, by an
/// older keysat-deliver or by another program), by delivery id. The one definition every
/// statement that reads or deletes a delivery's history uses.
enum AttemptHistory {
    /// SQL that is true when attempt `a` is one of delivery `d`'s. Each side is answered by
    /// one of the two partial indexes (`StatsQueryPlanTests` checks the plans), and both match
    /// the delivery id, so a number shared or written wrong by someone else mixes nothing.
    static func of(_ d: String, _ a: String) -> String {
        of(id: "\(d).id", number: "\(d).keysat_webhooks_history", a)
    }

    /// The same, for the delivery whose id and history number are the SQL expressions given.
    static func of(id: String, number: String, _ a: String) -> String {
        "((\(a).history_id = \(number) AND \(a).delivery_id = \(id)) OR (\(a).history_id IS NULL AND \(a).delivery_id = \(id)))"
    }
}
