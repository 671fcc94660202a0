public import KeysatCore

/// Payload retention and erasure (issue 23): payloads replaced by `PayloadErasure`'s marker,
/// rows, statuses and attempt history kept.
///
/// Both selections are read first, outside any write transaction (WAL: a reader blocks no
/// writer), as rowids; the rows are then erased in write transactions of at most
/// `erasureBatchSize` rows and `erasureBatchMicroseconds`, each row re-checked against the
/// selection as it is erased (a row changed meanwhile is left), so that keysat-enqueue and runs
/// never wait long for the write lock however large the payloads or the history. Every
/// connection has `secure_delete` on (`Database`), so the old payload's bytes are zeroed in the
/// pages they leave, overflow pages included; a checkpoint (`checkpointErasing`) then copies
/// the pages over the database file and truncates the WAL, which held the old page images.
extension WebhookStore {
    /// The most rows erased in one write transaction.
    public static let erasureBatchSize = 100
    /// A write transaction of erasures ends once it has lasted this long (on the monotonic
    /// clock), whatever its count: a row of a 1 MiB payload takes a millisecond or more to free.
    static let erasureBatchMicroseconds: Int64 = 50_000

    /// Erases the payloads of finished deliveries (delivered or dead) older than `cutoff`, as
    /// `purge` ages them (delivered ones from their delivery, dead ones from their creation).
    /// - Returns: how many were erased (with `dryRun`, would be).
    public func erasePayloads(before cutoff: Timestamp, dryRun: Bool) throws -> Int {
        let chosen = """
            d.created_at < :cutoff AND \(PurgeScope.allFinished.condition()) AND NOT \(PayloadErasure.condition())
            """
        let values: [(String, SQLValue)] = [(":cutoff", .text(cutoff.rfc3339))]
        let rows = try database.prepare(
            "SELECT d.rowid FROM webhook_deliveries AS d WHERE \(chosen) ORDER BY d.rowid"
        )
        .rows(named: values) { Int64($0.integer(0) ?? 0) }
        if dryRun || rows.isEmpty { return rows.count }
        return try eraseRows(rows, chosen: chosen, values: values).erased
    }

    /// Erases the payloads whose event data has `match`'s value at its path, whatever their
    /// state; the pending ones among them are dead-lettered (`PayloadErasure.reason`) and never
    /// sent. Reads the whole table once (no index knows the payloads), in a read transaction.
    /// - Returns: how many were erased, and how many of those were pending (with `dryRun`,
    ///   would be).
    public func erase(_ match: PayloadErasure.Match, dryRun: Bool) throws -> (erased: Int, pending: Int) {
        // Text only (the programs write text; json_valid of another program's blob is not
        // JSON), judged in a CASE so that nothing is parsed that is not text.
        let field = """
            (CASE WHEN typeof(d.payload_json) = 'text' AND json_valid(d.payload_json) THEN
               CASE json_type(d.payload_json, :path) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                 ELSE CAST(json_extract(d.payload_json, :path) AS TEXT) END END)
            """
        let chosen = "\(field) = :value"
        let values: [(String, SQLValue)] = [
            (":path", .text(match.sqlitePath)), (":value", .text(match.value)),
        ]
        let found = try database.prepare(
            """
            SELECT d.rowid, \(DeliveryRecord.State.pending.condition()) FROM webhook_deliveries AS d
            WHERE \(chosen) ORDER BY d.rowid
            """
        ).rows(named: values) { (Int64($0.integer(0) ?? 0), $0.integer(1) == 1) }
        if dryRun || found.isEmpty { return (found.count, found.filter(\.1).count) }
        return try eraseRows(found.map(\.0), chosen: chosen, values: values)
    }

    /// Erases the rows `rowids` that still match `chosen` (a condition on table `d`, with its
    /// `values`), in short write transactions, then checkpoints so that the old bytes are gone
    /// from the WAL too. A pending one is dead-lettered: `next_attempt_at` NULL, `last_error`
    /// "erased", its count one more, so that a run sending it right now records nothing over
    /// it (outcomes are written only where the count read still stands).
    private func eraseRows(_ rowids: [Int64], chosen: String, values: [(String, SQLValue)]) throws
        -> (erased: Int, pending: Int)
    {
        // Whether the row still matches, and is pending; then the write, by rowid.
        let check = try database.prepare(
            """
            SELECT \(DeliveryRecord.State.pending.condition()) FROM webhook_deliveries AS d
            WHERE d.rowid = :rowid AND \(chosen)
            """)
        let erase = try database.prepare(
            "UPDATE webhook_deliveries SET payload_json = :marker WHERE rowid = :rowid")
        let deadLetter = try database.prepare(
            """
            UPDATE webhook_deliveries SET payload_json = :marker, last_error = :reason, next_attempt_at = NULL,
                attempt_count = coalesce(attempt_count, 0) + 1
            WHERE rowid = :rowid
            """)
        var total = (erased: 0, pending: 0)
        var next = rowids.startIndex
        while next < rowids.endIndex {
            let batch = try database.writeTransaction { () throws -> (next: Int, erased: Int, pending: Int) in
                let started = clock.elapsed()
                let marker: SQLValue = .text(PayloadErasure.marker(at: clock.now()))
                var erased = 0
                var pending = 0
                var index = next
                while index < rowids.endIndex, index - next < Self.erasureBatchSize,
                    clock.elapsed() - started < Self.erasureBatchMicroseconds
                {
                    let row: [(String, SQLValue)] = [(":rowid", .integer(rowids[index]))]
                    index += 1
                    guard let wasPending = try check.rows(named: values + row, { $0.integer(0) == 1 }).first
                    else {
                        continue
                    }
                    if wasPending {
                        try deadLetter.run(
                            named: row + [(":marker", marker), (":reason", .text(PayloadErasure.reason))])
                        pending += 1
                    } else {
                        try erase.run(named: row + [(":marker", marker)])
                    }
                    erased += 1
                }
                return (index, erased, pending)
            }
            next = batch.next
            total.erased += batch.erased
            total.pending += batch.pending
        }
        try checkpointErasing()
        return total
    }
}
