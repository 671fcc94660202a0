#if canImport(Glibc)
    import Glibc
#endif

/// Path arithmetic the tools share.
public enum FilePath {
    /// The folder holding `path`: "/" for a file at the root, "." for a bare name.
    public static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The folder of the running program (/proc/self/exe), or `nil` when it cannot be read.
    public static func ownFolder() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.contains("/") ? folder(of: path) : nil
    }
}
