#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reading whole inputs (a data file, a secret file, standard input) with a size limit.
public enum InputFile {
    /// Reads all of `path` (`-` for standard input), refusing more than `limit` bytes.
    ///
    /// - Parameters:
    ///   - what: how the input is named in errors ("data file", "secret file").
    /// - Returns: the bytes, or `nil` when there were more than `limit` (reading stops at
    ///   `limit + 1`, so a huge input is not read whole).
    /// - Throws: `KeysatError` (noInput, 66) when the file cannot be opened, (io, 74) on a read error.
    public static func read(_ path: String, limit: Int, what: String, guarding guardMode: ModeGuard? = nil)
        throws -> [UInt8]?
    {
        let fd: Int32
        if path == "-" {
            fd = 0
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                let code = errno
                throw KeysatError.system(
                    code == EACCES ? .permission : .noInput, "cannot read \(what) \(path)", errno: code)
            }
        }
        defer { if fd != 0 { close(fd) } }
        if let guardMode, fd != 0 {
            // The file opened, not the path again: no other file can take its place between.
            var info = stat()
            if fstat(fd, &info) == 0, UInt32(info.st_mode) & guardMode.refused != 0 {
                throw KeysatError(
                    .permission,
                    "\(what) \(path) \(guardMode.because) (mode 0\(String(info.st_mode & 0o7777, radix: 8))): chmod \(guardMode.fix) '\(path)'")
            }
        }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while result.count <= limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw KeysatError.system(
                    .io, "cannot read \(what) \(path == "-" ? "from standard input" : path)", errno: code)
            }
            result += chunk[0..<count]
        }
        return result.count > limit ? nil : result
    }

    /// Permission bits a file holding a key must not have (`read(_:limit:what:guarding:)`).
    public struct ModeGuard: Sendable {
        public var refused: UInt32
        /// Why, after the file's name: "can be read by every user of this host".
        public var because: String
        /// chmod's argument that repairs it: "o-r".
        public var fix: String

        public init(refused: UInt32, because: String, fix: String) {
            self.refused = refused
            self.because = because
            self.fix = fix
        }

        /// A private key: others may neither read nor write it (group access is this project's
        /// way of sharing, docs/DESIGN.md), as ssh refuses such a key.
        public static let privateKey = ModeGuard(
            refused: 0o007, because: "can be read or written by users outside its owner and group", fix: "o-rwx")
        /// A key whose holder decides what verifies: others may not write it.
        public static let trustedKey = ModeGuard(
            refused: 0o002, because: "can be written by every user, who could replace the key", fix: "o-w")
    }
}
