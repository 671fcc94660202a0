internal import CPostgresShim
import KeysatCore

/// libpq, loaded with dlopen(3) the first time a PostgreSQL connection is opened.
///
/// Not linked, so that a program that only ever uses SQLite neither needs Debian's libpq5 nor
/// pays for loading it and its libraries (OpenSSL, Kerberos, LDAP) at every start: the same
/// choice as libcurl's (docs/DESIGN.md). See `CPostgresShim.h`.
enum PostgresLibrary {
    /// Loads libpq if it is not loaded yet.
    ///
    /// - Throws: `KeysatError` 69 naming the package to install when libpq.so.5 is missing,
    ///   71 when the process ran out of descriptors or memory loading it.
    static func load() throws {
        var message = [CChar](repeating: 0, count: 512)
        if keysat_pq_load(&message, message.count) != 0 {
            throw KeysatError.loading(
                "libpq",
                String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                package: "libpq5")
        }
    }

    /// The loaded libpq's version, e.g. 150018 for 15.18 (`PQlibVersion`).
    static var version: Int {
        Int(keysat_pq_lib_version())
    }
}
