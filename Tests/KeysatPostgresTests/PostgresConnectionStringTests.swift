import KeysatCore
import XCTest

@testable import KeysatPostgres

/// Finding a password in a connection string given on a command line. No server needed.
final class PostgresConnectionStringTests: XCTestCase {
    /// Strings and whether they carry a password, written by hand from libpq's documentation
    /// (<https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING>).
    static let cases: [(string: String, hasPassword: Bool)] = [
        ("postgresql://keysat:s3cret@db1/keysat", true),
        ("postgres://keysat:s3cret@db1:5432/keysat?sslmode=verify-full", true),
        ("postgresql://keysat:p%40ss%3Aword@db1/keysat", true),
        ("postgresql://keysat:s3cret@db1,db2:5433/keysat", true),
        ("postgresql://db1/keysat?user=keysat&password=s3cret", true),
        ("postgresql://db1/keysat?sslmode=verify-full&password=s3cret&connect_timeout=5", true),
        ("postgresql://keysat@db1/keysat", false),
        ("postgresql://keysat:@db1/keysat", false),
        ("postgresql://db1/keysat?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem", false),
        ("postgresql://db1/keysat?passfile=/etc/keysat/pgpass", false),
        ("postgresql:///keysat?host=/run/postgresql", false),
        ("postgresql://db1/keysat?password=", false),
        ("postgresql://", false),
        ("host=db1 dbname=keysat password=s3cret", true),
        ("password=s3cret", true),
        ("host=db1 password = 's3 cr\\'et' dbname=keysat", true),
        ("host=db1   password=\ts3cret", true),
        ("host=db1 dbname=keysat user=keysat", false),
        ("host=db1 password=''", false),
        ("host=db1 passfile=/etc/keysat/pgpass", false),
        ("service=keysat", false),
        ("host=db1 dbname='password=s3cret'", false),
        ("host=db1 application_name=password", false),
        ("", false),
        ("keysat", false),
    ]

    func testHasPasswordFindsEveryFormOfPassword() {
        for (string, expected) in Self.cases {
            XCTAssertEqual(PostgresConnectionString.hasPassword(string), expected, string)
        }
    }

    /// Checked against libpq's own parser (`PQconninfoParse`), an independent implementation:
    /// for every string libpq accepts, it finds a non-empty password exactly when we do.
    func testHasPasswordAgreesWithLibpq() throws {
        var compared = 0
        for (string, _) in Self.cases where !string.isEmpty && string != "keysat" {
            let options = try PostgresConnectionString.options(string)
            let libpqFinds = !(options["password"] ?? "").isEmpty
            XCTAssertEqual(PostgresConnectionString.hasPassword(string), libpqFinds, string)
            compared += 1
        }
        XCTAssertEqual(compared, Self.cases.count - 2)
    }

    /// A keyword libpq does not know is refused by it; we refuse it as a secret all the same.
    func testPasswordKeywordInAnyCaseCounts() throws {
        XCTAssertTrue(PostgresConnectionString.hasPassword("PASSWORD=s3cret host=db1"))
        XCTAssertThrowsError(try PostgresConnectionString.options("PASSWORD=s3cret host=db1")) {
            let error = $0 as! KeysatError
            XCTAssertEqual(error.exitCode, 64)
            XCTAssertFalse(error.message.contains("s3cret"), error.message)
        }
    }

    func testIsURI() {
        XCTAssertTrue(PostgresConnectionString.isURI("postgresql://db1/keysat"))
        XCTAssertTrue(PostgresConnectionString.isURI("postgres://db1/keysat"))
        XCTAssertFalse(PostgresConnectionString.isURI("host=db1"))
        XCTAssertFalse(PostgresConnectionString.isURI("/var/lib/keysat/keysat.db"))
    }
}
