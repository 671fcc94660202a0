public import KeysatCore
public import KeysatStore

/// Payload retention and erasure on PostgreSQL, as SQLite's (`WebhookStore+Erasure`): the
/// marker and the selections are `PayloadErasure`'s, pending rows are dead-lettered
/// ("erased", their count one more, so that a run sending one now records nothing over it:
/// outcomes are written only where the count read still stands), and rows are changed in
/// statements of at most `WebhookStore`'s batch of 100, each its own transaction. Row locks,
/// not a database lock, so the batch only bounds how long one run waits for one row.
///
/// What erasure does not do here (man/keysat-webhooks.1): the old row versions stay in the
/// table's files (and in the WAL, its archives, replicas and backups) until VACUUM makes their
/// space reusable and later writes overwrite it; `VACUUM FULL webhook_deliveries` rewrites the
/// table at once, under an exclusive lock.
extension PostgresStore {
    /// The marker as SQL, at the database's present moment.
    private static let marker = "'\(PayloadErasure.markerPrefix)' || keysat_rfc3339(now()) || '\"}'"

    /// Erases the payloads of finished deliveries older than `cutoff` (aged as `purge` ages
    /// them), in batches that skip rows another session holds (they stay for the next run).
    public func erasePayloads(before cutoff: Timestamp, dryRun: Bool) throws -> Int {
        let chosen = """
            d.created_at < $1::timestamptz AND \(WebhookStore.PurgeScope.allFinished.condition(cutoff: "$1::timestamptz"))
            AND NOT \(PayloadErasure.condition()) AND \(Self.unleased)
            """
        if dryRun {
            return Int(
                try value("SELECT count(*) FROM webhook_deliveries AS d WHERE \(chosen)", [cutoff.rfc3339])
                    ?? "") ?? 0
        }
        var total = 0
        while true {
            let row =
                try rows(
                    """
                    WITH page AS MATERIALIZED (
                        SELECT d.seq FROM webhook_deliveries AS d WHERE \(chosen)
                        ORDER BY d.created_at, d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED),
                    erased AS (
                        UPDATE webhook_deliveries AS d SET payload_json = \(Self.marker)
                        FROM page WHERE d.seq = page.seq RETURNING 1)
                    SELECT (SELECT count(*) FROM page), (SELECT count(*) FROM erased)
                    """, [cutoff.rfc3339, String(WebhookStore.erasureBatchSize)]
                ).first ?? []
            let chosenCount = Int((row.first ?? nil) ?? "") ?? 0
            total += Int((row.count > 1 ? row[1] : nil) ?? "") ?? 0
            if chosenCount < WebhookStore.erasureBatchSize { return total }
        }
    }

    /// Erases the payloads `match` selects, whatever their state. PostgreSQL 15 has no test
    /// of JSON text that does not fail the statement on another program's invalid row (no
    /// `IS JSON`), so the payloads are read in pages by `seq` and matched here
    /// (`JSONStrings.field`), then erased by `seq` in batches.
    public func erase(_ match: PayloadErasure.Match, dryRun: Bool) throws -> (erased: Int, pending: Int) {
        var found: [(seq: String, pending: Bool)] = []
        var after = "0"
        while true {
            let page = try rows(
                """
                SELECT d.seq, d.payload_json, \(DeliveryRecord.State.pending.condition()) FROM webhook_deliveries AS d
                WHERE d.seq > $1::bigint AND NOT \(PayloadErasure.condition()) ORDER BY d.seq LIMIT 500
                """, [after])
            // Compared as bytes, as SQLite's `=` does: Swift's `==` on strings would take
            // canonically equivalent text (U+212B for U+00C5) as the same value and erase it too.
            let wanted = Array(match.value.utf8)
            for row in page
            where JSONStrings.field(Array((row[1] ?? "").utf8), path: match.path).map({ Array($0.utf8) }) == wanted {
                found.append((row[0] ?? "", row[2] == "t"))
            }
            guard page.count == 500, let last = page.last?[0] ?? nil else { break }
            after = last
        }
        if dryRun || found.isEmpty { return (found.count, found.filter(\.pending).count) }
        var total = (erased: 0, pending: 0)
        var next = found.startIndex
        while next < found.endIndex {
            let batch = found[next..<min(next + WebhookStore.erasureBatchSize, found.endIndex)]
            next = batch.endIndex
            let row =
                try rows(
                    """
                    WITH chosen AS MATERIALIZED (
                        SELECT d.seq, \(DeliveryRecord.State.pending.condition()) AS was_pending FROM webhook_deliveries AS d
                        WHERE d.seq = ANY($1::bigint[]) AND NOT \(PayloadErasure.condition()) ORDER BY d.seq FOR UPDATE OF d),
                    erased AS (
                        UPDATE webhook_deliveries AS d SET payload_json = \(Self.marker),
                            last_error = CASE WHEN chosen.was_pending THEN $2 ELSE d.last_error END,
                            attempt_count = CASE WHEN chosen.was_pending THEN d.attempt_count + 1 ELSE d.attempt_count END,
                            next_attempt_at = CASE WHEN chosen.was_pending THEN NULL ELSE d.next_attempt_at END
                        FROM chosen WHERE d.seq = chosen.seq RETURNING chosen.was_pending)
                    SELECT count(*), count(*) FILTER (WHERE was_pending) FROM erased
                    """, [PostgresArray.literal(batch.map(\.seq)), PayloadErasure.reason]
                ).first ?? []
            total.erased += Int((row.first ?? nil) ?? "") ?? 0
            total.pending += Int((row.count > 1 ? row[1] : nil) ?? "") ?? 0
        }
        return total
    }
}
