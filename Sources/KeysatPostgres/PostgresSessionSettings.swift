/// The limits every PostgreSQL session of this tool runs under, set when it connects.
///
/// They are what keeps a stuck or careless run from harming the shared queue: a transaction
/// left open holds a snapshot that stops vacuum on the queue table (a held snapshot took a
/// SKIP LOCKED queue from ~800 to 517 jobs/s, NikolayS/PgQue#80), and a statement waiting on
/// a lock another host holds must give up and let the timer try again rather than pile up.
/// No transaction of this tool is meant to stay open across HTTP, so these can be short.
/// See <https://www.postgresql.org/docs/15/runtime-config-client.html>.
public struct PostgresSessionSettings: Sendable, Equatable {
    /// `statement_timeout`: the longest one statement may run (SQLSTATE 57014, exit 75).
    public var statementTimeoutMS: Int
    /// `lock_timeout`: the longest a statement waits for a lock (SQLSTATE 55P03, exit 75).
    public var lockTimeoutMS: Int
    /// `idle_in_transaction_session_timeout`: a session idle inside a transaction this long
    /// is ended by the server, its transaction rolled back (SQLSTATE 25P03).
    public var idleInTransactionTimeoutMS: Int
    /// `connect_timeout` in seconds, used only when neither the connection string nor
    /// `PGCONNECT_TIMEOUT` sets one: libpq's own default is to wait for ever on a host that
    /// drops packets.
    public var connectTimeoutSeconds: Int

    public init(
        statementTimeoutMS: Int = 30_000, lockTimeoutMS: Int = 5_000,
        idleInTransactionTimeoutMS: Int = 30_000, connectTimeoutSeconds: Int = 10
    ) {
        self.statementTimeoutMS = statementTimeoutMS
        self.lockTimeoutMS = lockTimeoutMS
        self.idleInTransactionTimeoutMS = idleInTransactionTimeoutMS
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    /// The settings as (name, value) pairs for `set_config`, values in milliseconds.
    var serverSettings: [(name: String, value: String)] {
        [
            ("statement_timeout", String(max(statementTimeoutMS, 0))),
            ("lock_timeout", String(max(lockTimeoutMS, 0))),
            ("idle_in_transaction_session_timeout", String(max(idleInTransactionTimeoutMS, 0))),
        ]
    }
}
