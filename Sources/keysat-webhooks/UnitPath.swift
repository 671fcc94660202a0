import Glibc
import KeysatBackends
import KeysatCommandTree
import KeysatStore

/// A path written into a systemd unit by `keysat-webhooks units` (issue 20: a newline in
/// `--bindir` added `ExecStartPre=` lines, a space split `ExecStart=`, `%h` was expanded; `--db`
/// took `..`, control characters and a trailing slash, which systemd refuses or reads as
/// another path).
///
/// What systemd would read differently is refused: a path that is not absolute and normal
/// (`.`, `..`, an empty component, a trailing slash), control characters, white space, quotes
/// and backslashes (systemd's word splitting and C escapes), and `$` (expanded in a command's
/// arguments but not in its first word, so no one escape holds across settings and versions).
/// `%` is escaped as `%%` where it is written (specifiers, expanded in every setting used here).
/// See systemd.unit(5) "Specifiers" and systemd.service(5) "Command lines".
struct UnitPath {
    let path: String

    /// - Throws: `ValidationError` (64) naming the option and what is wrong.
    init(_ path: String, option: String) throws {
        if let problem = Self.problem(path) {
            throw ValidationError("'\(option)' \(problem) (a systemd unit cannot hold it as given)")
        }
        self.path = path
    }

    /// A PostgreSQL URI for `Environment=KEYSAT_DB=`: what systemd or sh would read otherwise
    /// is refused as for a path, and so is a password, since a unit file is readable by every
    /// user (EnvironmentFile=/etc/default/keysat-webhooks, root's, may set one: it overrides).
    init(postgres uri: String, option: String) throws {
        if let problem = Self.characterProblem(uri) {
            throw ValidationError("'\(option)' \(problem) (a systemd unit cannot hold it as given)")
        }
        if Backends.hasPassword(uri) {
            throw ValidationError(
                "'\(option)' holds a password, which a unit file would show to every user: keep it in a passfile (PGPASSFILE) or set KEYSAT_DB in /etc/default/keysat-webhooks, which overrides the unit's"
            )
        }
        path = uri
    }

    /// What is wrong with `path` for a unit file, or `nil`.
    static func problem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "must be an absolute path" }
        if let problem = characterProblem(path) { return problem }
        guard path != "/", !path.hasSuffix("/") else { return "must not end with '/'" }
        let components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        if components.contains(where: { $0.isEmpty }) { return "must not hold '//'" }
        if components.contains(where: { $0 == "." || $0 == ".." }) {
            return "must not hold '.' or '..' components"
        }
        // systemd refuses a file name over 255 bytes as neither a name nor a path (fatal).
        if components.contains(where: { $0.utf8.count > 255 }) { return "has a component longer than 255 bytes" }
        return nil
    }

    /// What systemd's word splitting, C escapes or `$` expansion would read otherwise, or `nil`.
    private static func characterProblem(_ path: String) -> String? {
        guard path.utf8.count <= 4_095 else { return "is longer than 4095 bytes" }
        for scalar in path.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                return "must not hold control characters"
            }
            if scalar.properties.isWhitespace { return "must not hold spaces or other white space" }
            if "\"'\\$".unicodeScalars.contains(scalar) { return "must not hold quotes, backslashes or '$'" }
        }
        return nil
    }

    /// As systemd reads it back in Environment=, ExecStart=, PathChanged= and ReadWritePaths=.
    var setting: String { Self.doubling("%", in: path) }

    /// By Unicode scalar, never by Character: a prepended mark such as U+0600 joins the `%`
    /// after it into one grapheme, which then equals no `%` and was left single (a live `%h`).
    private static func doubling(_ character: Unicode.Scalar, in text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            out.append(scalar)
            if scalar == character { out.append(scalar) }
        }
        return String(out)
    }

    /// `path` with its links resolved, as systemd reads it (or `path` itself when it does not exist).
    private static func resolved(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }

    /// The folder, refused when it is one of the system's (ReadWritePaths=/ would undo
    /// ProtectSystem=strict).
    func databaseFolder(option: String) throws -> UnitPath {
        let folder = String(path[..<path.lastIndex(of: "/")!])
        let name = folder.isEmpty ? "/" : folder
        // systemd resolves links in ReadWritePaths=: a link to / is /.
        if DatabaseFolder.systemFolders.contains(name) || DatabaseFolder.systemFolders.contains(Self.resolved(name)) {
            throw ValidationError(
                "'\(option)' names a database directly in \(name), a system folder the service would have to write: put it in a folder of its own"
            )
        }
        return try UnitPath(name, option: option)
    }
}
