/// What a statement returned: its column names and rows, every value in PostgreSQL's text
/// format (`nil` for NULL), and how many rows it changed.
public struct PostgresResult: Sendable, Equatable {
    /// The result's column names, in order.
    public var columns: [String]
    /// The rows, each with one value per column.
    public var rows: [[String?]]
    /// The rows an INSERT, UPDATE, DELETE, MERGE, SELECT or COPY affected (`PQcmdTuples`);
    /// 0 for other commands.
    public var affectedRows: Int

    public init(columns: [String], rows: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }
}
