import KeysatCore

/// The columns of one SQLite row being copied, each checked to be what both backends hold
/// exactly, or an error naming the row and the column.
///
/// SQLite stores whatever another program wrote (issue 20): a time that is not one, a NULL id,
/// a blob or bytes that are not UTF-8 in a text column, a real in an integer one. PostgreSQL
/// cannot hold them as they are, and changing them would be a silent change of the queue, so
/// the copy stops on the first one, naming it (65), before anything is committed. The checks
/// read each column's type first (SQLite's type is undefined once a column was converted) and
/// judge the stored bytes, never a `String` made from them (which ends at a NUL and replaces
/// what is not UTF-8).
struct CopiedColumns {
    let row: Row
    let table: QueueTable
    /// How the message names the row: "rowid 12", or a WITHOUT ROWID table's key.
    let which: String
    let path: String

    /// The error for column `column`, `what` saying "its <column> is …".
    func defect(_ column: String, _ what: String) -> KeysatError {
        KeysatError(
            .data,
            "cannot copy \(table.name) \(which): \(what): nothing was copied; fix or delete that row in \(path) (with the sqlite3 shell), then copy again"
        )
    }

    private func shown(_ index: Int32) -> String {
        let type = row.typeName(index)
        return DeliveryRowCheck.described(type, row.rawBytes(index))
    }

    // MARK: - Text

    /// Text as both backends hold it: valid UTF-8 without NUL (PostgreSQL's text has no NUL).
    func text(_ index: Int32, _ column: String) throws -> String {
        guard let value = try optionalText(index, column) else {
            throw defect(column, "its \(column) is NULL")
        }
        return value
    }

    func optionalText(_ index: Int32, _ column: String) throws -> String? {
        let type = row.typeName(index)
        if type == "null" { return nil }
        guard type == "text" else { throw defect(column, "its \(column) is not text (\(shown(index)))") }
        let bytes = row.rawBytes(index)
        if bytes.contains(0) {
            throw defect(column, "its \(column) holds a NUL byte, which PostgreSQL's text cannot hold")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw defect(column, "its \(column) is not UTF-8 text")
        }
        return text
    }

    /// An id or a key: text, not empty.
    func key(_ index: Int32, _ column: String) throws -> String {
        let value = try text(index, column)
        if value.isEmpty { throw defect(column, "its \(column) is empty") }
        return value
    }

    /// A delivery id as a run can send it (`DeliveryRowCheck`): visible ASCII, at most 255 bytes.
    func deliveryID(_ index: Int32, _ column: String) throws -> String {
        let type = row.typeName(index)
        if let reason = row.withRawBytes(index, { DeliveryRowCheck.idDefect(type: type, $0) }) {
            throw defect(column, "its \(column)" + reason.dropFirst("its id".count))
        }
        return try text(index, column)
    }

    // MARK: - Numbers

    /// An integer of PostgreSQL's `integer` (32 bits) within `range`.
    func integer(
        _ index: Int32, _ column: String, in range: ClosedRange<Int> = Int(Int32.min)...Int(Int32.max)
    )
        throws -> Int
    {
        guard let value = try optionalInteger(index, column, in: range) else {
            throw defect(column, "its \(column) is NULL")
        }
        return value
    }

    func optionalInteger(
        _ index: Int32, _ column: String, in range: ClosedRange<Int> = Int(Int32.min)...Int(Int32.max)
    ) throws -> Int? {
        let type = row.typeName(index)
        if type == "null" { return nil }
        guard type == "integer", let value = row.integer(index) else {
            throw defect(column, "its \(column) is not an integer (\(shown(index)))")
        }
        guard range.contains(value) else {
            throw defect(
                column, "its \(column) (\(value)) is not from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A positive 64-bit id (attempt ids, history numbers), small enough that the copy may
    /// number it after the target's own.
    func optionalRowNumber(_ index: Int32, _ column: String) throws -> Int64? {
        try optionalInteger(index, column, in: 1...(1 << 52)).map(Int64.init)
    }

    // MARK: - Times

    /// A time: RFC 3339 text that PostgreSQL's `timestamptz` holds exactly (microseconds at
    /// most, a year from 1 to 9999). Its spelling may change (`Z` for `+00:00`, a space for
    /// `T`): the instant never does.
    func time(_ index: Int32, _ column: String) throws -> Timestamp {
        guard let value = try optionalTime(index, column) else {
            throw defect(column, "its \(column) is NULL")
        }
        return value
    }

    func optionalTime(_ index: Int32, _ column: String) throws -> Timestamp? {
        let type = row.typeName(index)
        if type == "null" { return nil }
        let bytes = row.rawBytes(index)
        guard type == "text", let time = CopiedColumns.time(bytes) else {
            throw defect(column, "its \(column) (\(DeliveryRowCheck.described(type, bytes))) is not a time")
        }
        return time
    }

    /// `bytes` as a time both backends hold exactly, or `nil`.
    static func time(_ bytes: [UInt8]) -> Timestamp? {
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }),
            let time = bytes.withUnsafeBytes({ Timestamp(rfc3339Bytes: $0) }),
            !bytes.starts(with: "0000".utf8)
        else { return nil }
        // Digits after the sixth of the fraction would be dropped: only zeros may be.
        if bytes.count > 20, bytes[19] == UInt8(ascii: ".") {
            let digits = bytes[20...].prefix { $0 >= 48 && $0 <= 57 }
            if digits.dropFirst(6).contains(where: { $0 != 48 }) { return nil }
        }
        return time
    }

    /// A per-minute summary's key, "YYYY-MM-DDTHH:MM".
    func minute(_ index: Int32, _ column: String) throws -> Timestamp {
        let type = row.typeName(index)
        let bytes = row.rawBytes(index)
        guard type == "text", bytes.count == 16, let time = CopiedColumns.time(bytes + Array(":00Z".utf8))
        else {
            throw defect(
                column,
                "its \(column) (\(DeliveryRowCheck.described(type, bytes))) is not a minute (YYYY-MM-DDTHH:MM)"
            )
        }
        return time
    }
}
