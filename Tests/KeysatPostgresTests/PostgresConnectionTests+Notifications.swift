import Foundation
import KeysatCore
import KeysatTestSupport
import XCTest

@testable import KeysatPostgres

extension PostgresConnectionTests {
    func testNotificationSentByAnotherSessionWakesTheListener() throws {
        let listener = try cluster.connect()
        try listener.listen("keysat_wakeup")
        let sender = try cluster.connect()
        let senderPID = try sender.execute("SELECT pg_backend_pid()").rows[0][0]
        try sender.execute("SELECT pg_notify('keysat_wakeup', $1)", ["kick"])
        let started = Date()
        let received = try listener.notifications(waitingUpTo: 10_000)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertEqual(received.map(\.channel), ["keysat_wakeup"])
        XCTAssertEqual(received.map(\.payload), ["kick"])
        XCTAssertEqual(received.map { String($0.senderProcessID) }, [senderPID])
    }

    /// A notification sent inside a transaction is delivered at its commit, not before: the
    /// reason the planned enqueue can send it after its commit without losing anything.
    func testNotificationInsideATransactionArrivesAtCommitAndTheWaitTimesOut() throws {
        let listener = try cluster.connect()
        try listener.listen("keysat_wakeup")
        let sender = try cluster.connect()
        try sender.transaction {
            try sender.execute("NOTIFY keysat_wakeup")
            let started = Date()
            XCTAssertEqual(try listener.notifications(waitingUpTo: 200), [])
            XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.19)
        }
        XCTAssertEqual(try listener.notifications(waitingUpTo: 10_000).map(\.payload), [""])
    }

    func testListenRefusesAChannelNameThatIsNotPlain() throws {
        let connection = try cluster.connect()
        for name in ["", "Upper", "a; DROP TABLE x", "1abc", String(repeating: "a", count: 64)] {
            XCTAssertThrowsError(try connection.listen(name), name) {
                XCTAssertEqual(($0 as? KeysatError)?.exitCode, 70)
            }
        }
    }
}
