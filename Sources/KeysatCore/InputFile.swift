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
    public static func read(_ path: String, limit: Int, what: String) throws -> [UInt8]? {
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
}
