internal import CPostgresShim
import KeysatCore

/// What the tool needs to know about a libpq connection string without connecting: whether it
/// holds a password, and its options as libpq reads them.
///
/// Both forms are read: a URI (`postgresql://user:password@host:5432/db?sslmode=verify-full`)
/// and keyword/value pairs (`host=db1 dbname=keysat password='…'`).
/// See <https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING>.
public enum PostgresConnectionString {
    /// The URI schemes libpq accepts.
    static let uriPrefixes = ["postgresql://", "postgres://"]

    /// Whether `string` is a connection URI (rather than keyword/value pairs or a file path).
    public static func isURI(_ string: String) -> Bool {
        uriPrefixes.contains { string.hasPrefix($0) }
    }

    /// Whether `string` carries a non-empty password: a URI's `user:password@`, its
    /// `?password=` parameter, or a `password=` pair.
    ///
    /// A password on a command line is readable by every user of the host (`ps`, /proc) and
    /// lands in shell history, so the commands refuse one there and point to `PGPASSFILE`, a
    /// service file or `KEYSAT_DB` in a root-only file. Pure Swift, so the check costs nothing
    /// and does not need libpq; it reads the string as libpq's parser does (tested against
    /// `PQconninfoParse`), and matches the keyword in any case, so a misspelt `PASSWORD=`
    /// that libpq would reject is refused as a secret all the same.
    public static func hasPassword(_ string: String) -> Bool {
        if let prefix = uriPrefixes.first(where: { string.hasPrefix($0) }) {
            return uriHasPassword(Substring(string.dropFirst(prefix.count)))
        }
        return keywordPairs(string).contains { $0.key.lowercased() == "password" && !$0.value.isEmpty }
    }

    /// `string` as messages may show it: a URI without the password of its user information
    /// or its `password` parameter; anything else (keyword pairs) as "the PostgreSQL database",
    /// since its parts cannot be told apart without parsing.
    public static func withoutPassword(_ string: String) -> String {
        guard let prefix = uriPrefixes.first(where: { string.lowercased().hasPrefix($0) }) else {
            return "the PostgreSQL database"
        }
        var rest = Substring(string.dropFirst(prefix.count))
        var query: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        if let end = rest.firstIndex(where: { $0 == "@" || $0 == "/" }), rest[end] == "@",
            let colon = rest[..<end].firstIndex(of: ":")
        {
            rest = rest[..<colon] + rest[end...]
        }
        let parameters = query.split(separator: "&").filter { parameter in
            let key = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
            return percentDecoded(key).lowercased() != "password"
        }
        return String(string.prefix(prefix.count)) + rest + (parameters.isEmpty ? "" : "?" + parameters.joined(separator: "&"))
    }

    // MARK: - URI

    /// libpq reads user information up to the first `@` before any `/` (conninfo_uri_parse_options).
    private static func uriHasPassword(_ rest: Substring) -> Bool {
        if let end = rest.firstIndex(where: { $0 == "@" || $0 == "/" }), rest[end] == "@" {
            let userInfo = rest[..<end]
            if let colon = userInfo.firstIndex(of: ":"), userInfo.index(after: colon) < end {
                return true
            }
        }
        guard let question = rest.firstIndex(of: "?") else { return false }
        return rest[rest.index(after: question)...].split(separator: "&").contains { parameter in
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return pair.count == 2 && percentDecoded(pair[0]).lowercased() == "password" && !pair[1].isEmpty
        }
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
                let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Keyword/value pairs

    /// The pairs of a keyword/value string, read as libpq's conninfo_parse reads them: spaces
    /// around `=`, a value either single-quoted (with `\'` and `\\`) or up to the next space
    /// (with backslash escapes). Stops at the first thing that is not a pair.
    static func keywordPairs(_ string: String) -> [(key: String, value: String)] {
        var pairs: [(key: String, value: String)] = []
        var rest = Substring(string)
        while true {
            rest = rest.drop(while: \.isWhitespace)
            guard !rest.isEmpty else { return pairs }
            let key = rest.prefix { !$0.isWhitespace && $0 != "=" }
            rest = rest[key.endIndex...].drop(while: \.isWhitespace)
            guard rest.first == "=" else { return pairs }
            rest = rest.dropFirst().drop(while: \.isWhitespace)
            let (value, remainder) = readValue(rest)
            pairs.append((String(key), value))
            rest = remainder
        }
    }

    private static func readValue(_ text: Substring) -> (String, Substring) {
        var value = ""
        var rest = text
        let quoted = rest.first == "'"
        if quoted { rest = rest.dropFirst() }
        while let character = rest.first {
            if quoted ? character == "'" : character.isWhitespace {
                return (value, quoted ? rest.dropFirst() : rest)
            }
            rest = rest.dropFirst()
            if character == "\\", let escaped = rest.first {
                value.append(escaped)
                rest = rest.dropFirst()
            } else {
                value.append(character)
            }
        }
        return (value, rest)
    }
}

// MARK: - libpq's reading

extension PostgresConnectionString {
    /// The options `string` sets, as libpq parses it (`PQconninfoParse`), loading libpq.
    ///
    /// - Throws: `KeysatError` 64 when libpq cannot parse it; libpq's words are kept unless
    ///   the string may hold a password (they can quote the part that failed), 69/71 when
    ///   libpq cannot be loaded.
    public static func options(_ string: String) throws -> [String: String] {
        try PostgresLibrary.load()
        var error: UnsafeMutablePointer<CChar>?
        guard let options = keysat_pq_conninfo_parse(string, &error) else {
            guard let error else {
                throw KeysatError(.system, "cannot read the PostgreSQL connection string: out of memory")
            }
            let reason = PostgresFailure.oneLine(String(cString: error))
            keysat_pq_freemem(error)
            let mayQuoteSecret = hasPassword(string) || string.lowercased().contains("password")
            throw KeysatError(
                .usage,
                "the PostgreSQL connection string is not valid: "
                    + (mayQuoteSecret ? "libpq's message is withheld as it may quote the password" : reason))
        }
        defer { keysat_pq_conninfo_free(options) }
        var values: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        return values
    }
}
