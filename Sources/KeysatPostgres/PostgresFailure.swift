import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// A failed PostgreSQL call: its condition (an SQLSTATE) and a message that is safe to show.
///
/// Messages never carry a password or a bound parameter's value: the server's primary message
/// is kept (it names constraints, columns and SQL, not parameters) except for data exceptions
/// (class 22), whose messages quote the offending value; DETAIL, which quotes key values, is
/// never read. See <https://www.postgresql.org/docs/15/errcodes-appendix.html>.
struct PostgresFailure: Error, Equatable {
    /// The five-character SQLSTATE: the server's, or one inferred from libpq's words when the
    /// server sent none (the connection failed or was lost: class 08).
    var sqlState: String
    /// Whether the server sent `sqlState` (only then is it shown as the server's).
    var fromServer: Bool
    var message: String

    /// The one place where PostgreSQL's conditions become the tool's error classes.
    var keysatError: KeysatError {
        let kind = PostgresFailure.kind(sqlState: sqlState)
        let state = fromServer ? " (SQLSTATE \(sqlState))" : ""
        let advice = PostgresFailure.advice(
            sqlState: sqlState, kind: kind, message: message, fromServer: fromServer).map { "; \($0)" } ?? ""
        return KeysatError(kind, "PostgreSQL: \(message)\(state)\(advice)")
    }

    /// The error class of an SQLSTATE.
    static func kind(sqlState: String) -> KeysatError.Kind {
        switch sqlState {
        // Serialization failure, deadlock, lock_timeout, statement_timeout, the session ended
        // for idling in a transaction, the server shutting down or starting: try again later.
        case "40001", "40P01", "55P03", "57014", "25P03", "57P01", "57P02", "57P03": return .temporary
        case "3D000": return .noInput  // the database does not exist
        case "42501": return .permission  // insufficient privilege
        default: break
        }
        switch sqlState.prefix(2) {
        case "08": return .unavailable  // connection exception: refused, unreachable, lost
        case "28": return .permission  // invalid authorization: bad password, no pg_hba entry
        case "53": return .system  // insufficient resources: disk full, out of memory, connections
        case "22", "23": return .data  // data exception, integrity constraint violation
        default: return .internal
        }
    }

    private static func advice(sqlState: String, kind: KeysatError.Kind, message: String, fromServer: Bool)
        -> String?
    {
        if sqlState == "3D000" {
            // keysat-webhooks init makes the tables, not the database: that is its owner's
            // (CREATE DATABASE needs a privilege the programs' role should not hold).
            let name = databaseName(in: message).map { "createdb \($0)" } ?? "createdb"
            return "create it (\(name), as its owner), then run 'keysat-webhooks init'"
        }
        switch kind {
        // This process's limits (libpq's words, no server's state): the advice is to raise them.
        case .system where !fromServer && message.contains("Too many open files"):
            return KeysatError.exhaustionAdvice(EMFILE)
        case .system where !fromServer && message.contains("memory"):
            return KeysatError.exhaustionAdvice(ENOMEM)
        case .temporary: return "try again"
        case .unavailable: return "is the server running and reachable?"
        case .permission where sqlState.hasPrefix("28"):
            return "check the user and its password (PGPASSFILE, ~/.pgpass or a service file) and pg_hba.conf"
        default: return nil
        }
    }
}

// MARK: - Building failures

extension PostgresFailure {
    /// A failure the server reported for a statement.
    static func server(sqlState: String, primary: String) -> PostgresFailure {
        let message =
            sqlState.hasPrefix("22")
            ? "a value does not fit its type (the server's message is withheld: it may quote the value)"
            : oneLine(primary)
        return PostgresFailure(sqlState: sqlState, fromServer: true, message: message)
    }

    /// A connection that could not be opened, classified from libpq's message.
    ///
    /// libpq gives no SQLSTATE for a failed connection, only words: the server's FATAL message
    /// (in the server's `lc_messages`; English here) after libpq's own. Words not recognised
    /// are a connection failure (08006, exit 69).
    static func connection(_ libpqMessage: String) -> PostgresFailure {
        let text = oneLine(libpqMessage)
        let patterns: [(String, [String])] = [
            (
                "28P01",
                [
                    "password authentication failed", "authentication failed for user",
                    "no pg_hba.conf entry", "no password supplied", "role \"",
                ]
            ),
            ("42501", ["permission denied for database"]),
            ("3D000", ["database \""]),
            ("53300", ["too many clients already", "remaining connection slots are reserved"]),
            // This host, not the server, ran short: libpq's "could not create socket: Too many
            // open files", "out of memory" (insufficient resources, as the server's 53xxx: 71).
            ("53000", ["Too many open files", "Cannot allocate memory", "out of memory"]),
            (
                "57P03",
                [
                    "the database system is starting up", "the database system is shutting down",
                    "the database system is in recovery mode", "not yet accepting connections",
                ]
            ),
        ]
        let state = patterns.first { $0.1.contains(where: text.contains) }?.0 ?? "08006"
        return PostgresFailure(sqlState: state, fromServer: false, message: "cannot connect: \(text)")
    }

    /// The name in the server's `database "NAME" does not exist`, when it is one a shell
    /// word can hold as it is (no quoting to get wrong in the advice).
    static func databaseName(in message: String) -> String? {
        guard let start = message.firstRange(of: "database \""),
            let end = message[start.upperBound...].firstRange(of: "\" does not exist")
        else { return nil }
        let name = message[start.upperBound..<end.lowerBound]
        let plain = !name.isEmpty && name.unicodeScalars.allSatisfy {
            ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0)
        }
        return plain ? String(name) : nil
    }

    /// libpq's multi-line messages ("…failed: FATAL:  …\n\tIs the server running…?") on one line.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" })
            .joined(separator: " ")
    }
}
