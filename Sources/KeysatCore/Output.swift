#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writing to standard output and standard error with write(2), unbuffered.
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

    /// Prints `NAME: error: MESSAGE` on standard error, one line, and exits with the error's
    /// sysexits code. A usage error names the help to read (`help`, e.g. "keysat-deliver --help").
    public static func fail(_ program: String, _ error: KeysatError, help: String? = nil) -> Never {
        var message = "\(program): error: \(error.message)"
        if error.kind == .usage { message += " (see '\(help ?? program + " --help")')" }
        Output.error(message + "\n")
        exit(error.exitCode)
    }

    @discardableResult
    static func write(_ text: String, to fd: Int32) -> Bool { SystemCall.writeAll(fd, Array(text.utf8)) }
}
