import KeysatCore

/// Whether a delivery row, as read, can be sent and its outcome recorded: rows come from other
/// programs too (Keysat's daemon, the sqlite3 shell), and their columns may hold anything.
///
/// A row that cannot be sent as it stands is never sent: a NULL id would go out without
/// `X-Keysat-Delivery` or `webhook-id` (receivers could not drop duplicates), and a count or a
/// time that does not parse could not be recorded, so every run would send it again (issue 20:
/// four runs, four requests, each run saying "delivered"). `record` dead-letters it instead,
/// matched by rowid and by exactly the values read (`fingerprint`), with `reason` in `last_error`.
enum DeliveryRowCheck {
    /// The longest delivery id sent in headers.
    static let maximumIDBytes = 255
    /// The largest `attempt_count` a row may hold (the backoff and the history count above it).
    static let maximumAttemptCount = 1_000_000

    /// Columns of the due query that hold the id, attempt_count and next_attempt_at, and the
    /// SQL quoting of all three when any is not of its expected type (NULL otherwise).
    struct Columns {
        var id: Int32
        var attemptCount: Int32
        var nextAttemptAt: Int32
        var oddTypes: Int32
    }

    /// `quote()` of the three columns, joined by spaces: what `record` compares against to touch
    /// a defective row only if it still holds what was read. Computed in SQL only for rows whose
    /// types are odd (a cheap `typeof` otherwise), and here for text and integers.
    static let fingerprintSQL = "quote(id) || ' ' || quote(attempt_count) || ' ' || quote(next_attempt_at)"

    /// The SQL column giving the fingerprint of rows with odd types, NULL for the others.
    static func oddTypesColumn(_ alias: String) -> String {
        let d = alias + "."
        return """
            CASE WHEN typeof(\(d)id) = 'text' AND typeof(\(d)attempt_count) = 'integer'
                      AND typeof(\(d)next_attempt_at) = 'text' THEN NULL
                 ELSE quote(\(d)id) || ' ' || quote(\(d)attempt_count) || ' ' || quote(\(d)next_attempt_at) END
            """
    }

    /// Why the row cannot be sent as it stands, and its fingerprint; `nil` when it can.
    ///
    /// Call it before any other read of the row: SQLite's type of a column is undefined once the
    /// column was read as another type (a blob read as text reads as text afterwards).
    static func defect(_ row: Row, _ columns: Columns) -> (reason: String, fingerprint: String)? {
        let reason = reasonIfAny(row, columns)
        guard let reason else { return nil }
        if let odd = row.text(columns.oddTypes) { return (reason, odd) }
        // Text and integers: quoted as SQLite's quote() does.
        let fingerprint = [
            quoted(row.string(columns.id)), String(row.integer(columns.attemptCount) ?? 0),
            quoted(row.string(columns.nextAttemptAt)),
        ].joined(separator: " ")
        return (reason, fingerprint)
    }

    private static func reasonIfAny(_ row: Row, _ columns: Columns) -> String? {
        if row.isNull(columns.id) { return "its id is NULL" }
        if !row.isText(columns.id) { return "its id is not text" }
        let id = row.string(columns.id)
        if id.isEmpty { return "its id is empty" }
        if id.utf8.count > maximumIDBytes { return "its id is longer than \(maximumIDBytes) bytes" }
        if !id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) {
            return "its id holds bytes a header cannot carry (only visible ASCII)"
        }
        guard row.isInteger(columns.attemptCount),
            let count = row.integer(columns.attemptCount), (0...maximumAttemptCount).contains(count)
        else {
            return "its attempt_count (\(described(row, columns.attemptCount))) is not a whole number from 0 to \(maximumAttemptCount)"
        }
        guard row.isText(columns.nextAttemptAt), Timestamp(rfc3339: row.string(columns.nextAttemptAt)) != nil else {
            return "its next_attempt_at (\(described(row, columns.nextAttemptAt))) is not a time"
        }
        return nil
    }

    /// A column's value for a message: its text, cut short, controls made visible.
    private static func described(_ row: Row, _ index: Int32) -> String {
        guard let text = row.text(index) else { return "NULL" }
        let short = text.count > 40 ? String(text.prefix(40)) + "…" : text
        return "'" + String(short.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) }) + "'"
    }

    private static func quoted(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'"
    }
}
