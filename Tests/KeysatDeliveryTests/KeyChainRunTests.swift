import KeysatCore
import KeysatStore
import XCTest

@testable import KeysatDelivery

/// The run's side of ordering keys (issue 23), with a store whose runs claim: keyed rows go by
/// their key's chain, one claim each, in number order, a retrying head holding only its key;
/// rows without a key are claimed together as before.
final class KeyChainRunTests: XCTestCase {
    func testKeysGoInNumberOrderARetryHoldsOnlyItsKeyAndUnkeyedRowsAreClaimedTogether() throws {
        let store = FakeStore()
        let transport = FakeTransport(clock: FixedClock(FakeStore.t0))
        store.claimBatch = 32
        var keyOf: [String: String] = [:]
        var xInOrder: [String] = []
        for _ in 0..<3 {
            for key in ["x", "y"] {
                let id = store.add("a", key: key).id
                keyOf[id] = key
                if key == "x" { xInOrder.append(id) }
            }
        }
        let unkeyed = (0..<4).map { _ in store.add("a").id }
        let failing = store.rows.first { $0.orderingKey == "y" }!.id
        transport.answer = { request in
            request.headers.contains("X-Keysat-Delivery: \(failing)") ? .status(500) : .status(204)
        }
        var options = DeliveryOptions()
        options.concurrency = 16
        options.perEndpoint = 16
        _ = try DeliveryRun.fake(store, transport, options: options).run(at: FakeStore.t0)
        let started = transport.started.compactMap { request in
            request.headers.first { $0.hasPrefix("X-Keysat-Delivery: ") }.map { String($0.dropFirst(19)) }
        }
        XCTAssertEqual(started.filter { keyOf[$0] == "x" }, xInOrder, "x all went, in number order")
        XCTAssertEqual(started.filter { keyOf[$0] == "y" }, [failing], "y held behind its retrying head")
        XCTAssertEqual(Set(started.filter { keyOf[$0] == nil }), Set(unkeyed))
        let sequences = transport.started.compactMap { request in
            request.headers.first { $0.hasPrefix("X-Keysat-Sequence: ") }.map { String($0.dropFirst(19)) }
        }
        XCTAssertEqual(sequences.count, 4, "keyed requests carry their number, unkeyed ones none")
        XCTAssertTrue(store.claimCalls.contains(4), "the unkeyed rows in one claim: \(store.claimCalls)")
        XCTAssertEqual(store.rows.filter { keyOf[$0.id] == "y" }.count, 3, "y's rows all still pending")
    }
}
