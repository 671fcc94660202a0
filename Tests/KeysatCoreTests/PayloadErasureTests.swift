import KeysatCore
import XCTest

/// The erasure marker, `--where` selections and the field they compare (issue 23).
final class PayloadErasureTests: XCTestCase {
    func testMarkerIsJSONAndNoEnvelopeLooksLikeOne() throws {
        let moment = try XCTUnwrap(Timestamp(rfc3339: "2026-12-06T10:00:00.000000+00:00"))
        let marker = Array(PayloadErasure.marker(at: moment).utf8)
        XCTAssertNoThrow(try JSONValidator.validate(marker))
        XCTAssertTrue(PayloadErasure.isErased(marker))
        XCTAssertEqual(PayloadErasure.erasedAt(marker), moment.rfc3339)
        let envelope = Envelope.make(
            eventType: "license.issued", timestamp: moment, data: Array(#"{"erased":true}"#.utf8))
        XCTAssertFalse(PayloadErasure.isErased(envelope))
    }

    func testSampleEnvelopeEndsWithTheTestMarkerAndRealOnesHaveNone() throws {
        let moment = try XCTUnwrap(Timestamp(rfc3339: "2026-12-06T10:00:00.000000+00:00"))
        let sample = String(
            decoding: Envelope.make(eventType: "a", timestamp: moment, data: Array("{}".utf8), test: true),
            as: UTF8.self)
        XCTAssertTrue(sample.hasSuffix(#","data":{},"test":true}"#), sample)
        let real = String(
            decoding: Envelope.make(eventType: "a", timestamp: moment, data: Array("{}".utf8)), as: UTF8.self)
        XCTAssertFalse(real.contains("test"), real)
        for (type, data) in EventSample.catalogue {
            XCTAssertNoThrow(try JSONValidator.validate(Array(data.utf8)), type)
        }
        XCTAssertEqual(EventSample.catalogue.map(\.eventType), EventType.catalogue)
    }

    func testMatchParsing() throws {
        let match = try PayloadErasure.Match(parsing: "data.customer.email=a=b@example.com")
        XCTAssertEqual(match.path, ["data", "customer", "email"])
        XCTAssertEqual(match.value, "a=b@example.com", "the first '=' separates")
        XCTAssertEqual(match.sqlitePath, #"$."data"."customer"."email""#)
        for bad in ["email=x", "data=x", "data.=x", "data.a..b=x", "data.a\"b=x", "data.a=", "data.a"] {
            XCTAssertThrowsError(try PayloadErasure.Match(parsing: bad), bad) { error in
                XCTAssertEqual((error as? KeysatError)?.exitCode, 64, bad)
            }
        }
    }

    func testFieldReadsStringsNumbersAndBooleansAsText() {
        let json =
            Array(
                #" {"data": {"email": "al\u0069ce@example.com", "n": 42, "ok": true, "none": null, "list": [1],"#
                    .utf8)
            + Array(#" "deep": {"a": {"b": "x\/y"}}, "email": "second"}, "email": "top"} "#.utf8)
        XCTAssertEqual(
            JSONStrings.field(json, path: ["data", "email"]), "alice@example.com",
            "escapes decoded, the first of duplicates")
        XCTAssertEqual(JSONStrings.field(json, path: ["data", "n"]), "42")
        XCTAssertEqual(JSONStrings.field(json, path: ["data", "ok"]), "true")
        XCTAssertEqual(JSONStrings.field(json, path: ["data", "deep", "a", "b"]), "x/y")
        XCTAssertNil(JSONStrings.field(json, path: ["data", "none"]))
        XCTAssertNil(JSONStrings.field(json, path: ["data", "list"]))
        XCTAssertNil(JSONStrings.field(json, path: ["data", "deep"]))
        XCTAssertNil(JSONStrings.field(json, path: ["data", "missing"]))
        XCTAssertNil(JSONStrings.field(json, path: ["data", "email", "x"]))
        XCTAssertNil(
            JSONStrings.field(Array(#"{"data":{"email":"a""#.utf8), path: ["data", "email"]), "not JSON")
    }
}
