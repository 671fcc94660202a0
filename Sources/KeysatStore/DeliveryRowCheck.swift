import KeysatCore

/// Whether a delivery row, as read, can be sent and its outcome recorded: rows come from other
/// programs too (Keysat's daemon, the sqlite3 shell), and their columns may hold anything.
///
/// A row that cannot be sent as it stands is never sent: a NULL id would go out without
/// `X-Keysat-Delivery` or `webhook-id` (receivers could not drop duplicates), and a count or a
/// time that does not parse could not be recorded, so every run would send it again (issue 20:
/// four runs, four requests, each run saying "delivered"). `record` dead-letters it instead,
/// matched by rowid and by exactly the values read (`fingerprint`), with `reason` in `last_error`.
///
/// Everything is judged on the stored bytes, never on a Swift `String` made from them: such a
/// string ends at a NUL and replaces bytes that are not UTF-8, so a run would send, page and
/// match a value other than the stored one (the adversarial pass of issue 20: an id with a NUL
/// was sent by every run, a time with one was paged twice).
public enum DeliveryRowCheck {
    /// The longest delivery id sent in headers.
    static let maximumIDBytes = 255
    /// The largest `attempt_count` a row may hold (the backoff and the history count above it).
    public static let maximumAttemptCount = 1_000_000

    /// Columns of a query that hold the id, attempt_count and next_attempt_at.
    struct Columns {
        var id: Int32
        var attemptCount: Int32
        var nextAttemptAt: Int32
    }

    /// The three columns' types and stored bytes, as `fingerprint` compares them in SQL: what
    /// `record` matches before touching a defective row, so that a row repaired meanwhile is
    /// left alone. Computed in SQL only in that statement, never for every row read.
    static let fingerprintSQL = """
        typeof(id) || ':' || hex(id) || ' ' || typeof(attempt_count) || ':' || hex(attempt_count) || ' '
            || typeof(next_attempt_at) || ':' || hex(next_attempt_at)
        """

    /// Why the row cannot be sent as it stands, and its fingerprint; `nil` when it can.
    ///
    /// Call it before any other read of the row: SQLite's type of a column is undefined once the
    /// column was read as another type (a blob read as text reads as text afterwards).
    static func defect(_ row: Row, _ columns: Columns) -> (reason: String, fingerprint: String)? {
        let all = [columns.id, columns.attemptCount, columns.nextAttemptAt]
        let types = all.map { row.typeName($0) }
        let count = types[1] == "integer" ? row.integer(columns.attemptCount) : nil
        // The common case checked on the stored bytes in place; copies only for a defect.
        let reason =
            row.withRawBytes(columns.id) { id in
                row.withRawBytes(columns.nextAttemptAt) { next in
                    Self.reason(types: types, count: count, id: id, next: next)
                }
            }
        guard let reason else { return nil }
        let bytes = all.map { row.rawBytes($0) }
        let shown = reason.replacingPlaceholder(with: described(types[1], bytes[1]), described(types[2], bytes[2]))
        let fingerprint = zip(types, bytes).map { "\($0):\(hex($1))" }.joined(separator: " ")
        return (shown, fingerprint)
    }

    /// Why a row of a typed backend (PostgreSQL: text ids, integer counts, timestamptz times)
    /// cannot be sent as it stands, in the same words as SQLite's, or `nil`.
    public static func defect(id: String, attemptCount: Int) -> String? {
        let types = ["text", "integer", "text"]
        let reason = Array(id.utf8).withUnsafeBytes { id in
            "2000-01-01T00:00:00.000000+00:00".utf8CString.dropLast().map { UInt8(bitPattern: $0) }.withUnsafeBytes {
                next in
                Self.reason(types: types, count: attemptCount, id: id, next: next)
            }
        }
        return reason?.split(separator: "{count}", omittingEmptySubsequences: false).joined(separator: String(attemptCount))
    }

    /// Why the row cannot be sent, with `{count}` and `{next}` standing for the values (worded
    /// only for a defect).
    private static func reason(types: [String], count: Int?, id: UnsafeRawBufferPointer, next: UnsafeRawBufferPointer)
        -> String?
    {
        if let defect = idDefect(type: types[0], id) { return defect }
        if let defect = countDefect(count) { return defect }
        guard types[2] == "text", next.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }), Timestamp(rfc3339Bytes: next) != nil
        else {
            return "its next_attempt_at ({next}) is not a time"
        }
        return nil
    }

    /// Why a delivery id of SQLite type `type` and bytes `id` cannot go out in a header, or
    /// `nil`: also what `keysat-webhooks copy` requires of every delivery it copies.
    static func idDefect(type: String, _ id: UnsafeRawBufferPointer) -> String? {
        if type == "null" { return "its id is NULL" }
        if type != "text" { return "its id is not text (\(type))" }
        if id.isEmpty { return "its id is empty" }
        if id.count > maximumIDBytes { return "its id is longer than \(maximumIDBytes) bytes" }
        if !id.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) {
            return "its id holds bytes a header cannot carry (only visible ASCII)"
        }
        return nil
    }

    /// Why an attempt count (`nil`: not an integer) is out of range, or `nil`.
    static func countDefect(_ count: Int?) -> String? {
        guard let count, (0...maximumAttemptCount).contains(count) else {
            return "its attempt_count ({count}) is not a whole number from 0 to \(maximumAttemptCount)"
        }
        return nil
    }

    /// A column's value for a message: its type and text, cut short, anything but visible
    /// ASCII shown as `?`.
    static func described(_ type: String, _ bytes: [UInt8]) -> String {
        if type == "null" { return "NULL" }
        let shown = String(decoding: bytes.prefix(40).map { $0 >= 0x20 && $0 < 0x7f ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
        return "\(type) '\(shown)\(bytes.count > 40 ? "…" : "")'"
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    /// `{count}` and `{next}` replaced by `count` and `next`.
    fileprivate func replacingPlaceholder(with count: String, _ next: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let after = rest[open...]
            if after.hasPrefix("{count}") {
                out += count
                rest = after.dropFirst(7)
            } else if after.hasPrefix("{next}") {
                out += next
                rest = after.dropFirst(6)
            } else {
                out += "{"
                rest = after.dropFirst()
            }
        }
        return out + rest
    }
}
