#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writing to standard output and standard error with write(2), unbuffered: the one way the
/// programs print, for people and for programs alike.
///
/// Whatever is written goes through `TerminalText.escape` keeping newlines and tabs, so no
/// control character, C1 control or bidirectional override from a database row, a receiver or
/// an argument reaches a terminal raw, whichever call site forgot it. JSON output is unchanged by
/// that (`JSONText` escapes those characters already; outside its strings they cannot appear).
/// A value printed inside a line is escaped by its call site with `TerminalText.escape(value)`
/// too, so that a newline in it cannot start a line of its own (`Table` does this for its cells).
public enum Output {
    /// Writes `text` to standard output.
    /// - Throws: `KeysatError` (io, 74) if it cannot be written (a closed pipe, a full disk).
    public static func standard(_ text: String) throws {
        guard write(text, to: 1) else {
            throw KeysatError.system(.io, "cannot write to standard output", errno: errno)
        }
    }

    /// Writes `text` to standard error, ignoring failure (there is nowhere else to tell).
    public static func error(_ text: String) {
        _ = write(text, to: 2)
    }

    /// Prints `NAME: error: MESSAGE` on standard error, one line (a newline in the message is
    /// escaped too), and exits with the error's sysexits code. A usage error names the help to
    /// read (`help`, e.g. "keysat-deliver --help").
    public static func fail(_ program: String, _ error: KeysatError, help: String? = nil) -> Never {
        var message = "\(program): error: \(TerminalText.escape(error.message))"
        if error.kind == .usage { message += " (see '\(help ?? program + " --help")')" }
        Output.error(message + "\n")
        exit(error.exitCode)
    }

    @discardableResult
    static func write(_ text: String, to fd: Int32) -> Bool {
        SystemCall.writeAll(fd, Array(TerminalText.escape(text, keepLayout: true).utf8))
    }
}
