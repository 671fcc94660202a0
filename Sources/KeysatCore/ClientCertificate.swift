#if canImport(Glibc)
    import Glibc
#endif

/// A client certificate an endpoint's TLS handshakes present (`endpoint add|update
/// --client-cert PATH --client-key PATH`): for receivers that accept only clients they know
/// (mutual TLS). The files' paths are stored, not their contents: the key stays in a file only
/// its owner (and its group) can read, and a new certificate takes effect at the next run
/// without touching the database. On a PostgreSQL queue shared by several hosts, each host
/// needs the files at the same paths.
public struct ClientCertificate: Sendable, Equatable {
    /// Absolute paths of PEM files.
    public var certificate: String
    public var key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }

    /// The pair as given on a command line: paths made absolute (a run has another working
    /// folder), both files checked as a run checks them.
    /// - Throws: `KeysatError`: 66 a file missing or unreadable, 65 not PEM, 77 a key others can read.
    public static func given(certificate: String, key: String, workingDirectory: String) throws -> ClientCertificate {
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : workingDirectory + (workingDirectory.hasSuffix("/") ? "" : "/") + path
        }
        let pair = ClientCertificate(certificate: absolute(certificate), key: absolute(key))
        try pair.check()
        return pair
    }

    /// Whether the files are there, readable by this process, PEM, and the key not readable by
    /// others (as the database is kept): what a run checks once per endpoint before sending.
    public func check() throws {
        for (path, what) in [(certificate, "client certificate"), (key, "client key")] {
            var status = stat()
            guard stat(path, &status) == 0 else {
                throw KeysatError(.noInput, "\(what) \(path): \(String(cString: strerror(errno)))")
            }
            guard status.st_mode & S_IFMT == S_IFREG else {
                throw KeysatError(.noInput, "\(what) \(path) is not a regular file")
            }
            if what == "client key" && status.st_mode & S_IROTH != 0 {
                throw KeysatError(
                    .permission, "client key \(path) can be read by every user of this host: chmod o-r '\(path)'")
            }
            guard let file = fopen(path, "r") else {
                throw KeysatError(.noInput, "\(what) \(path): \(String(cString: strerror(errno)))")
            }
            var head = [UInt8](repeating: 0, count: 4096)
            let count = fread(&head, 1, head.count, file)
            fclose(file)
            guard String(decoding: head.prefix(count), as: UTF8.self).contains("-----BEGIN ") else {
                throw KeysatError(.data, "\(what) \(path) is not in PEM form (-----BEGIN …)")
            }
        }
    }
}
