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
        try KeysatError.load("libpq", package: "libpq5") { keysat_pq_load($0, $1) }
    }

    /// The loaded libpq's version, e.g. 150018 for 15.18 (`PQlibVersion`).
    static var version: Int {
        Int(keysat_pq_lib_version())
    }
}
