import KeysatCore
import KeysatPostgres
public import KeysatStore

#if canImport(Glibc)
    import Glibc
#endif

/// `keysat-webhooks copy`: a whole queue from one backend to another (SQLite to PostgreSQL to
/// move over, PostgreSQL to SQLite for a way back, or either to its own kind).
///
/// The order of tables and the checks are here, once; each backend reads and writes its own
/// SQL (`QueueExport`, `QueueImport`). The source is read within one snapshot; the target is
/// written in one transaction, its counts read back inside it and compared before COMMIT, so
/// that any failure leaves it as it was. Batches keep memory bounded whatever the queue's size.
public struct QueueCopy {
    /// Where the queue is read from and written to, as given (a file or a `postgresql://` URI).
    public var source: String
    public var target: String
    /// Copy into a target that has endpoints or deliveries already (keys that collide are still
    /// refused).
    public var intoNonempty = false
    public var limit = CopyBatchLimit()
    public var busyTimeoutMS = 5000

    public init(source: String, target: String) {
        self.source = source
        self.target = target
    }

    /// What was copied.
    public struct Report: Sendable {
        /// The source and the target as messages show them (no password).
        public var source: String
        public var target: String
        /// Rows written per table.
        public var copied: QueueTableCounts
        /// What copied attempt ids were numbered after: the target's largest (0 when empty).
        public var attemptIDOffset: Int64
    }

    /// Opens both, creates or upgrades the target's schema (as `init` does), then copies.
    ///
    /// - Throws: `KeysatError`: 64 when both name one database; 73 when the target has
    ///   endpoints or deliveries and `intoNonempty` is not set; 75 when deliveries of a
    ///   PostgreSQL source are under a live lease (a run is sending them); 65 for a row the
    ///   target cannot hold or a key it has already, naming it; 70 when the counts read back do
    ///   not match. The target's rows are then as they were (its schema stays, as `init` made it).
    public func run() throws -> Report {
        // The target is only ever named on a command line.
        try QueueCopy.refusePassword(in: target, option: "--to")
        let from = try Backends.open(source, readOnly: true, busyTimeoutMS: busyTimeoutMS)
        try refuseSameDatabase(from)
        let to = try Backends.open(target, create: true, busyTimeoutMS: busyTimeoutMS)
        return try copy(from: from, to: to)
    }

    /// Copies between two open backends.
    public func copy(from: any WebhookBackend, to: any WebhookBackend) throws -> Report {
        try from.exporting { reader in
            let leases = try reader.liveLeases()
            if leases > 0 {
                throw KeysatError(
                    .temporary,
                    "\(leases) deliver\(leases == 1 ? "y" : "ies") in \(from.location) \(leases == 1 ? "is" : "are") being sent by a run (a live lease): stop keysat-deliver's timers on every host, wait for the runs to end, then copy again"
                )
            }
            let expected = try reader.counts()
            return try to.importing { writer in
                let before = try writer.counts()
                let endpoints = before[.endpoints, default: 0]
                let deliveries = before[.deliveries, default: 0]
                if !intoNonempty, endpoints + deliveries > 0 {
                    throw KeysatError(
                        .cannotCreate,
                        "\(to.location) already has \(endpoints) endpoint\(endpoints == 1 ? "" : "s") and \(deliveries) deliver\(deliveries == 1 ? "y" : "ies"): copy into a new, empty database, or add --into-nonempty to add this queue to it"
                    )
                }
                let offset = try writer.largestAttemptID()
                var copied: QueueTableCounts = [:]
                for table in QueueTable.allCases {
                    copied[table] = 0
                    try reader.read(table, limit: limit) { batch in
                        try writer.write(try QueueCopy.numbered(batch, after: offset))
                        copied[table, default: 0] += batch.count
                    }
                }
                try writer.finishWriting()
                let after = try writer.counts()
                for table in QueueTable.allCases {
                    let read = copied[table, default: 0]
                    let source = expected[table, default: 0]
                    let written = after[table, default: 0] - before[table, default: 0]
                    guard read == source, written == source else {
                        throw KeysatError(
                            .internal,
                            "\(table.name): \(source) rows in the source, \(read) read, \(written) more in the target: nothing was copied (rolled back)"
                        )
                    }
                }
                return Report(
                    source: from.location, target: to.location, copied: copied, attemptIDOffset: offset)
            }
        }
    }

    /// Refuses a PostgreSQL location with a password given on a command line, which every user
    /// of the host can read (ps, /proc), as for --db (64): a passfile or a service file holds it.
    public static func refusePassword(in location: String, option: String) throws {
        guard Backends.kind(of: location) == .postgresql, PostgresConnectionString.hasPassword(location)
        else { return }
        throw KeysatError(
            .usage,
            "\(option) holds a password, which every user of this host could read on the command line: put it in a passfile (PGPASSFILE, ~/.pgpass) or a service file (PGSERVICEFILE) instead"
        )
    }

    /// `batch` with its attempt ids and history numbers after `offset`, the target's largest
    /// attempt id: the history keeps its order and its links, and never takes an id the target
    /// has. An empty target (offset 0) gets them as they were.
    static func numbered(_ batch: CopyBatch, after offset: Int64) throws -> CopyBatch {
        guard offset != 0 else { return batch }
        func shifted(_ value: Int64?) throws -> Int64? {
            guard let value else { return nil }
            let (sum, overflow) = value.addingReportingOverflow(offset)
            if overflow {
                throw KeysatError(.data, "attempt ids do not fit after the target's largest (\(offset))")
            }
            return sum
        }
        switch batch {
        case .deliveries(var rows):
            for index in rows.indices { rows[index].history = try shifted(rows[index].history) }
            return .deliveries(rows)
        case .attempts(var rows):
            for index in rows.indices {
                rows[index].id = try shifted(rows[index].id)!
                rows[index].history = try shifted(rows[index].history)
            }
            return .attempts(rows)
        default:
            return batch
        }
    }

    /// Refuses a target that is the source itself (the same file, by device and inode, or the
    /// same URI): it would be refused as not empty, or, with --into-nonempty, collide on its
    /// first key; said plainly instead.
    private func refuseSameDatabase(_ from: any WebhookBackend) throws {
        let same: Bool
        switch (Backends.kind(of: source), Backends.kind(of: target)) {
        case (.sqlite, .sqlite):
            var a = stat()
            var b = stat()
            same =
                stat(source, &a) == 0 && stat(target, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
        case (.postgresql, .postgresql):
            same = source == target
        default:
            same = false
        }
        if same { throw KeysatError(.usage, "--to names the database being copied (\(from.location))") }
    }
}
