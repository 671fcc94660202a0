import KeysatCore

/// Aligned columns for people reading a terminal.
public enum Table {
    /// Rows padded to their widest cell, two spaces apart, the last column unpadded. Cells are
    /// escaped for the terminal (`TerminalText`): they hold what receivers and other programs wrote.
    public static func render(_ rows: [[String]]) -> String {
        let rows = rows.map { $0.map { TerminalText.escape($0) } }
        guard let columns = rows.map(\.count).max(), columns > 0 else { return "" }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        var out = ""
        for row in rows {
            var line = ""
            for (index, cell) in row.enumerated() {
                line += cell
                if index < row.count - 1 {
                    line += String(repeating: " ", count: widths[index] - cell.count + 2)
                }
            }
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        return out
    }
}
