import KeysatCore

extension PostgresConnection {
    /// Runs `body` in one transaction: BEGIN, then COMMIT when `body` returns, ROLLBACK when
    /// it throws.
    ///
    /// A statement that failed inside `body` aborts the transaction even if `body` caught its
    /// error: PostgreSQL then answers COMMIT with a silent ROLLBACK, so that case is checked
    /// before committing and thrown (70), never reported as committed. Transactions do not
    /// nest (70): a savepoint is a decision for the caller's SQL.
    ///
    /// `settings` are `SET LOCAL` statements sent with BEGIN in the same round trip (fixed
    /// text, never a value from outside): they last until the transaction ends.
    ///
    /// - Throws: what `body` threw (after the rollback), or the failure of BEGIN or COMMIT
    ///   (COMMIT can fail for a serialization failure, 40001, exit 75: the work is undone).
    public func transaction<Value>(settings: [StaticString] = [], _ body: () throws -> Value) throws -> Value {
        guard !isInTransaction else {
            throw KeysatError(.internal, "PostgreSQL: a transaction was begun inside another")
        }
        if settings.isEmpty {
            try execute("BEGIN")
        } else {
            do {
                try executeScript((["BEGIN"] + settings.map { "SET LOCAL \($0)" }).joined(separator: "; "))
            } catch {
                rollBack()
                throw error
            }
        }
        let value: Value
        do {
            value = try body()
        } catch {
            rollBack()
            throw error
        }
        if isInFailedTransaction {
            rollBack()
            throw KeysatError(
                .internal,
                "PostgreSQL: a statement of the transaction failed and was not rethrown; rolled back")
        }
        try execute("COMMIT")
        return value
    }

    /// Ends a transaction without its changes. Its own failure is not reported: the
    /// transaction's error is the one that matters, and a broken session has no transaction
    /// left to roll back.
    private func rollBack() {
        guard isInTransaction else { return }
        _ = try? execute("ROLLBACK")
    }
}
