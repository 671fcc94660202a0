public import KeysatCore

#if canImport(Glibc)
    import Glibc
#endif

/// /etc/default/keysat-webhooks as a run started by `keysat-enqueue --kick=spawn` reads it: the
/// `KEYSAT_*` settings the systemd service reads (`EnvironmentFile=`) and the cron line sources,
/// so that a spawned run allows the receivers, and writes the metrics file, the operator set
/// there (issue 20: without it, a receiver allowed in the file was refused).
///
/// The file is hostile input: it is used only when it is a regular file owned by root or by
/// this user and writable by no one else (otherwise another user could widen the network
/// policy of the runs this user starts), at most 64 KiB; each line must be blank, a comment, or
/// `KEYSAT_NAME=value` with a value of printable characters that reads the same to systemd and
/// to sh (no `$`, backquote, backslash or quote inside; unquoted, no white space or shell
/// operator either; one pair of quotes around it is removed; CRLF endings allowed). Any other
/// line is skipped, and so is its setting, for the service's cron line as for a spawned run.
public enum DefaultsFile {
    /// The file the package installs.
    public static let standardPath = "/etc/default/keysat-webhooks"
    /// Names another file (the tests use it; an operator without /etc/default may too).
    public static let pathVariable = "KEYSAT_DEFAULTS_FILE"
    static let maximumBytes = 65_536

    /// The file to read: `$KEYSAT_DEFAULTS_FILE`, else `standardPath`.
    public static func path(in environment: Environment = .process) -> String {
        environment[pathVariable].flatMap { $0.isEmpty ? nil : $0 } ?? standardPath
    }

    /// The `KEYSAT_*` assignments of the file at `path`, in order; empty when the file is
    /// missing or cannot be trusted.
    public static func assignments(at path: String) -> [(name: String, value: String)] {
        guard let text = trustedText(at: path) else { return [] }
        // Lines by byte, never by Character: "\r\n" is one Character, and a file with CRLF
        // endings read as one line lost every setting after the first.
        return Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).compactMap {
            (line: ArraySlice<UInt8>) -> (name: String, value: String)? in
            let content = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            return assignment(String(decoding: content, as: UTF8.self))
        }
    }

    /// One line as an assignment, or `nil` for a comment, a blank line or a line not accepted.
    static func assignment(_ line: String) -> (name: String, value: String)? {
        guard let equals = line.firstIndex(of: "=") else { return nil }
        let name = String(line[..<equals])
        var value = Substring(line[line.index(after: equals)...])
        guard name.hasPrefix("KEYSAT_"), name.utf8.count <= 64,
            name.utf8.allSatisfy({ isNameByte($0) })
        else { return nil }
        var quoted = false
        if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
            value = value.dropFirst().dropLast()
            quoted = true
        }
        // What sh would read otherwise than systemd: unquoted, white space ends the value (and
        // runs the rest as a command) and ; & | < > ( ) * ? [ ] # ~ are the shell's; quoted, only
        // quotes, $, ` and \ are (refused in both).
        var refused: Set<Unicode.Scalar> = ["$", "`", "\\", "\"", "'"]
        if !quoted { refused.formUnion([" ", "\t", ";", "&", "|", "<", ">", "(", ")", "*", "?", "[", "]", "#", "~"]) }
        guard
            value.unicodeScalars.allSatisfy({
                $0.value >= 0x20 && $0.value != 0x7F && !(0x80..<0xA0).contains($0.value)
                    && !refused.contains($0)
            })
        else { return nil }
        return (name, String(value))
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "_")
    }

    /// The file's text when it is a regular file that only root or this user can change.
    private static func trustedText(at path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
            info.st_uid == 0 || info.st_uid == geteuid(), info.st_mode & 0o022 == 0,
            info.st_size <= maximumBytes
        else { return nil }
        var bytes = [UInt8](repeating: 0, count: maximumBytes + 1)
        var count = 0
        while count < bytes.count {
            let got = bytes.withUnsafeMutableBytes {
                read(descriptor, $0.baseAddress! + count, $0.count - count)
            }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            count += got
        }
        guard count <= maximumBytes, !bytes[0..<count].contains(0) else { return nil }
        return String(decoding: bytes[0..<count], as: UTF8.self)
    }
}
