internal import CPostgresShim
import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// Waiting for notifications, for a run that lingers (docs/POSTGRES.md, "wake-ups"): no thread,
/// no event loop, one poll(2) on the session's socket with the run's own timeout.
/// See <https://www.postgresql.org/docs/15/libpq-notify.html>.
extension PostgresConnection {
    /// Starts listening on `channel`, a plain lowercase identifier (LISTEN takes no parameter,
    /// so the name is checked rather than quoted).
    public func listen(_ channel: String) throws {
        let valid =
            channel.first.map { $0 == "_" || ("a"..."z").contains($0) } == true
            && channel.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
            && channel.utf8.count <= 63
        guard valid else {
            throw KeysatError(.internal, "PostgreSQL: '\(channel)' is not a plain channel name")
        }
        try execute("LISTEN \(channel)")
    }

    /// The notifications that arrived, waiting up to `timeoutMS` for the first if none has.
    ///
    /// - Returns: every notification received so far, in order; empty when the time ran out.
    /// - Throws: `KeysatError` 69 when the connection was lost.
    public func notifications(waitingUpTo timeoutMS: Int) throws -> [PostgresNotification] {
        var received = try drainNotifications()
        guard received.isEmpty else { return received }
        let deadline = monotonicMS() + max(timeoutMS, 0)
        while received.isEmpty {
            let remaining = deadline - monotonicMS()
            guard remaining > 0 else { break }
            var descriptor = pollfd(fd: keysat_pq_socket(handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(clamping: remaining))
            if ready < 0 && errno != EINTR {
                throw KeysatError.system(.internal, "PostgreSQL: waiting for notifications", errno: errno)
            }
            received = try drainNotifications()
        }
        return received
    }

    /// Reads what the server sent (without blocking) and takes every notification in it.
    private func drainNotifications() throws -> [PostgresNotification] {
        guard keysat_pq_consume_input(handle) == 1 else {
            throw PostgresFailure(
                sqlState: "08006", fromServer: false,
                message: "connection lost: "
                    + PostgresFailure.oneLine(String(cString: keysat_pq_error_message(handle)))
            ).keysatError
        }
        var received: [PostgresNotification] = []
        while let notification = keysat_pq_notifies(handle) {
            let value = notification.pointee
            received.append(
                PostgresNotification(
                    channel: String(cString: value.relname),
                    payload: value.extra.map { String(cString: $0) } ?? "",
                    senderProcessID: value.be_pid))
            keysat_pq_freemem(notification)
        }
        return received
    }

    private func monotonicMS() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }
}
