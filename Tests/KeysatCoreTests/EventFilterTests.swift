import KeysatCore
import XCTest

/// The filter language (issue 23) by hand-worked cases: each operator matching and not, the
/// choices where MongoDB-style matchers differ (absent fields, arrays, types), and refusals
/// naming the offending part.
final class EventFilterTests: XCTestCase {
    private let moment = Timestamp(rfc3339: "2026-12-06T10:00:00.000000+00:00")!

    /// Whether `filter` takes a `license.issued` event with `data`.
    private func takes(_ filter: String, _ data: String, test: Bool = false, line: UInt = #line) -> Bool {
        do {
            let compiled = try EventFilter(filter)
            let envelope = try XCTUnwrap(
                EventFilter.envelope(eventType: "license.issued", timestamp: moment, data: Array(data.utf8), test: test))
            return compiled.matches(envelope)
        } catch {
            XCTFail("\(filter): \(error)", line: line)
            return false
        }
    }

    private func check(_ cases: [(String, String, Bool)], line: UInt = #line) {
        for (filter, data, expected) in cases {
            XCTAssertEqual(takes(filter, data, line: line), expected, "\(filter) on \(data)", line: line)
        }
    }

    func testFieldsNestedObjectsAndTheEnvelope() {
        check([
            (#"{"data":{"plan":"pro"}}"#, #"{"plan":"pro","seats":3}"#, true),
            (#"{"data":{"plan":"pro"}}"#, #"{"plan":"free"}"#, false),
            (#"{"data":{"plan":"pro"}}"#, #"{"seats":3}"#, false),
            (#"{"data":{"customer":{"tier":"gold"}}}"#, #"{"customer":{"tier":"gold","id":7}}"#, true),
            (#"{"data":{"customer":{"tier":"gold"}}}"#, #"{"customer":"gold"}"#, false),
            (#"{"event_type":"license.issued"}"#, "{}", true),
            (#"{"event_type":{"$startsWith":"machine."}}"#, "{}", false),
            (#"{"timestamp":{"$gte":"2026-12-06T00:00:00"}}"#, "{}", true),
            (#"{"data":{"a.b":1}}"#, #"{"a":{"b":1}}"#, false),  // keys are names, not paths
            (#"{"data":{"a.b":1}}"#, #"{"a.b":1}"#, true),
            ("{}", "null", true),
            (#"{"data":{}}"#, "[1]", false),
            (#"{"data":{}}"#, #"{"x":1}"#, true),
        ])
        XCTAssertTrue(takes(#"{"test":true}"#, "{}", test: true))
        XCTAssertFalse(takes(#"{"test":true}"#, "{}"))
        XCTAssertTrue(takes(#"{"test":{"$exists":false}}"#, "{}"))
    }

    func testEqualityHasNoCoercionButComparesNumbersByValue() {
        check([
            (#"{"data":{"n":1}}"#, #"{"n":1.0}"#, true),
            (#"{"data":{"n":1}}"#, #"{"n":10e-1}"#, true),
            (#"{"data":{"n":1}}"#, #"{"n":"1"}"#, false),
            (#"{"data":{"n":"1"}}"#, #"{"n":1}"#, false),
            (#"{"data":{"n":true}}"#, #"{"n":1}"#, false),
            (#"{"data":{"n":0}}"#, #"{"n":-0.0}"#, true),
            (#"{"data":{"n":null}}"#, #"{"n":null}"#, true),
            (#"{"data":{"n":null}}"#, "{}", false),  // null is a value, not absence
            (#"{"data":{"n":{"$eq":9007199254740993}}}"#, #"{"n":9007199254740992}"#, false),
            (#"{"data":{"s":"é"}}"#, #"{"s":"e\u0301"}"#, false),  // scalars, not canonical equivalence
            (#"{"data":{"o":{"$eq":{"a":1,"b":[1,2]}}}}"#, #"{"o":{"b":[1,2],"a":1}}"#, true),
            (#"{"data":{"o":{"$eq":{"a":1}}}}"#, #"{"o":{"a":1,"b":2}}"#, false),  // $eq on an object is exact
            (#"{"data":{"o":{"a":1}}}"#, #"{"o":{"a":1,"b":2}}"#, true),  // a nested filter is not
        ])
    }

    func testEachValueOperator() {
        check([
            (#"{"data":{"plan":{"$eq":"pro"}}}"#, #"{"plan":"pro"}"#, true),
            (#"{"data":{"plan":{"$eq":"pro"}}}"#, #"{"plan":"team"}"#, false),
            (#"{"data":{"plan":{"$ne":"pro"}}}"#, #"{"plan":"team"}"#, true),
            (#"{"data":{"plan":{"$ne":"pro"}}}"#, #"{"plan":"pro"}"#, false),
            (#"{"data":{"plan":{"$ne":"pro"}}}"#, "{}", true),
            (#"{"data":{"plan":{"$in":["pro","team"]}}}"#, #"{"plan":"team"}"#, true),
            (#"{"data":{"plan":{"$in":["pro","team"]}}}"#, #"{"plan":"free"}"#, false),
            (#"{"data":{"plan":{"$in":["pro"]}}}"#, "{}", false),
            (#"{"data":{"plan":{"$nin":["pro","team"]}}}"#, #"{"plan":"free"}"#, true),
            (#"{"data":{"plan":{"$nin":["pro","team"]}}}"#, #"{"plan":"pro"}"#, false),
            (#"{"data":{"plan":{"$nin":["pro"]}}}"#, "{}", true),
            (#"{"data":{"seats":{"$gt":10}}}"#, #"{"seats":11}"#, true),
            (#"{"data":{"seats":{"$gt":10}}}"#, #"{"seats":10}"#, false),
            (#"{"data":{"seats":{"$gte":10}}}"#, #"{"seats":10.0}"#, true),
            (#"{"data":{"seats":{"$gte":10}}}"#, #"{"seats":9.99}"#, false),
            (#"{"data":{"seats":{"$lt":10}}}"#, #"{"seats":-1e3}"#, true),
            (#"{"data":{"seats":{"$lt":10}}}"#, #"{"seats":1e1}"#, false),
            (#"{"data":{"seats":{"$lte":10}}}"#, #"{"seats":10}"#, true),
            (#"{"data":{"seats":{"$lte":10}}}"#, #"{"seats":10.000001}"#, false),
            (#"{"data":{"seats":{"$gt":10}}}"#, #"{"seats":"11"}"#, false),  // a string is not a number
            (#"{"data":{"seats":{"$gt":"10"}}}"#, #"{"seats":11}"#, false),
            (#"{"data":{"seats":{"$gt":"10"}}}"#, #"{"seats":"9"}"#, true),  // strings compare as strings
            (#"{"data":{"seats":{"$lt":5}}}"#, "{}", false),
            (#"{"data":{"big":{"$gt":9007199254740992}}}"#, #"{"big":9007199254740993}"#, true),
            (#"{"data":{"x":{"$gt":1,"$lt":5}}}"#, #"{"x":3}"#, true),
            (#"{"data":{"x":{"$gt":1,"$lt":5}}}"#, #"{"x":5}"#, false),
            (#"{"data":{"email":{"$startsWith":"ops@"}}}"#, #"{"email":"ops@example.com"}"#, true),
            (#"{"data":{"email":{"$startsWith":"ops@"}}}"#, #"{"email":"dev@example.com"}"#, false),
            (#"{"data":{"email":{"$startsWith":"1"}}}"#, #"{"email":12}"#, false),
            (#"{"data":{"deleted_at":{"$exists":false}}}"#, "{}", true),
            (#"{"data":{"deleted_at":{"$exists":false}}}"#, #"{"deleted_at":null}"#, false),
            (#"{"data":{"deleted_at":{"$exists":true}}}"#, #"{"deleted_at":null}"#, true),
            (#"{"data":{"deleted_at":{"$exists":true}}}"#, "{}", false),
            (#"{"data":{"plan":{"$not":{"$in":["free","trial"]}}}}"#, #"{"plan":"pro"}"#, true),
            (#"{"data":{"plan":{"$not":{"$in":["free","trial"]}}}}"#, #"{"plan":"free"}"#, false),
            (#"{"data":{"plan":{"$not":"free"}}}"#, "{}", true),
        ])
    }

    func testArraysMatchByElementOrAsAWhole() {
        check([
            (#"{"data":{"tags":"vip"}}"#, #"{"tags":["new","vip"]}"#, true),
            (#"{"data":{"tags":"vip"}}"#, #"{"tags":["new"]}"#, false),
            (#"{"data":{"tags":["new","vip"]}}"#, #"{"tags":["new","vip"]}"#, true),
            (#"{"data":{"tags":["vip","new"]}}"#, #"{"tags":["new","vip"]}"#, false),
            (#"{"data":{"tags":{"$in":["vip","gold"]}}}"#, #"{"tags":["new","vip"]}"#, true),
            (#"{"data":{"tags":{"$nin":["vip"]}}}"#, #"{"tags":["new","vip"]}"#, false),
            (#"{"data":{"tags":{"$ne":"vip"}}}"#, #"{"tags":["new","vip"]}"#, false),
            (#"{"data":{"scores":{"$gt":90}}}"#, #"{"scores":[50,95]}"#, true),
            (#"{"data":{"scores":{"$gt":90}}}"#, #"{"scores":[50,60]}"#, false),
            (#"{"data":{"items":{"sku":"A"}}}"#, #"{"items":[{"sku":"B"},{"sku":"A"}]}"#, true),
            (#"{"data":{"items":{"sku":"C"}}}"#, #"{"items":[{"sku":"B"},{"sku":"A"}]}"#, false),
        ])
    }

    func testLogicalOperators() {
        check([
            (#"{"$or":[{"data":{"plan":"pro"}},{"data":{"seats":{"$gte":100}}}]}"#, #"{"plan":"free","seats":100}"#, true),
            (#"{"$or":[{"data":{"plan":"pro"}},{"data":{"seats":{"$gte":100}}}]}"#, #"{"plan":"free","seats":5}"#, false),
            (#"{"$and":[{"data":{"plan":"pro"}},{"data":{"seats":{"$gte":100}}}]}"#, #"{"plan":"pro","seats":100}"#, true),
            (#"{"$and":[{"data":{"plan":"pro"}},{"data":{"seats":{"$gte":100}}}]}"#, #"{"plan":"pro","seats":99}"#, false),
            (#"{"$not":{"data":{"plan":"free"}}}"#, #"{"plan":"pro"}"#, true),
            (#"{"$not":{"data":{"plan":"free"}}}"#, #"{"plan":"free"}"#, false),
            (#"{"$not":{"data":{"plan":"free"}}}"#, "{}", true),
            (#"{"event_type":"license.issued","$not":{"data":{"plan":"free"}}}"#, #"{"plan":"free"}"#, false),
        ])
    }

    /// Duplicate keys in event data: the first counts, as SQLite's `json_extract` and
    /// `deliveries erase --where` read them.
    func testTheFirstOfDuplicateKeysCounts() {
        check([
            (#"{"data":{"plan":"pro"}}"#, #"{"plan":"pro","plan":"free"}"#, true),
            (#"{"data":{"plan":"free"}}"#, #"{"plan":"pro","plan":"free"}"#, false),
        ])
    }

    func testRefusalsNameTheOffendingPart() {
        let refusals: [(String, String)] = [
            (#"{"data":{"plan":{"$regex":"p"}}}"#, "filter: at data.plan: unknown operator '$regex'"),
            (#"{"$nor":[]}"#, "filter: unknown operator '$nor'"),
            (#"{"$or":[{"data":{"x":{"$gt":[1]}}}]}"#,
             "filter: at $or[0].data.x: '$gt' compares numbers with numbers and strings with strings, not an array"),
            (#"{"$and":[]}"#, "filter: at $and: '$and' takes a non-empty array of filters"),
            (#"{"$or":{"a":1}}"#, "filter: at $or: '$or' takes a non-empty array of filters"),
            (#"{"$not":[1]}"#, "filter: at $not: a filter must be a JSON object, not an array"),
            (#"{"data":{"plan":{"$in":"pro"}}}"#, "filter: at data.plan: '$in' takes an array of values, not a string"),
            (#"{"data":{"x":{"$exists":1}}}"#, "filter: at data.x: '$exists' takes true or false, not a number"),
            (#"{"data":{"x":{"$startsWith":1}}}"#, "filter: at data.x: '$startsWith' takes a string, not a number"),
            (#"{"data":{"x":{"$eq":1,"y":2}}}"#, "filter: at data.x: mixes operators ('$eq') with fields ('y'): use $and"),
            (#"{"data":{"x":{"$or":[]}}}"#,
             "filter: at data.x: '$or' combines filters: put it beside the fields, not in a field's value"),
            (#"{"$eq":1}"#, #"filter: '$eq' applies to a field's value: write {"FIELD": {"$eq": …}}"#),
            (#"{"data":{"plan":1,"plan":2}}"#, #"filter: at data: duplicate key "plan""#),
            (#"{"data":{"a b":{"$lt":null}}}"#, #"filter: at data."a b": '$lt' compares numbers with numbers and strings with strings, not null"#),
            (#"["data"]"#, "filter: a filter must be a JSON object, not an array"),
            (#"{"data":"#, "filter: not valid JSON: unexpected end of input at byte 8"),
            ("", "filter: not valid JSON: empty input, expected a JSON value at byte 0"),
        ]
        for (filter, message) in refusals {
            XCTAssertThrowsError(try EventFilter(filter), filter) { error in
                XCTAssertEqual(error as? KeysatError, KeysatError(.data, message), filter)
            }
        }
    }

    func testSizeAndDepthAreBounded() throws {
        let deep = String(repeating: #"{"a":"#, count: 33) + "1" + String(repeating: "}", count: 33)
        XCTAssertThrowsError(try EventFilter(deep)) { error in
            let message = (error as? KeysatError)?.message ?? ""
            XCTAssertTrue(message.hasPrefix("filter: at a.a.a."), message)
            XCTAssertTrue(message.hasSuffix(": nested deeper than 32 levels"), message)
        }
        let shallowEnough = String(repeating: #"{"a":"#, count: 32) + "1" + String(repeating: "}", count: 32)
        XCTAssertNoThrow(try EventFilter(shallowEnough))
        // Arrays count as levels too; brackets in strings (after an escaped quote) do not.
        let arrays = #"{"data":{"tags":{"$in":"# + String(repeating: "[", count: 30) + "1"
            + String(repeating: "]", count: 30) + "}}}"
        XCTAssertThrowsError(try EventFilter(arrays)) { error in
            let message = (error as? KeysatError)?.message ?? ""
            XCTAssertTrue(message.hasPrefix("filter: at data.tags.$in[0][0]"), message)
            XCTAssertTrue(message.hasSuffix(": nested deeper than 32 levels"), message)
        }
        XCTAssertNoThrow(
            try EventFilter(
                #"{"data":{"tags":{"$in":"# + String(repeating: "[", count: 29) + "1"
                    + String(repeating: "]", count: 29) + "}}}"))
        let brackets = #"{"data":{"s":"\""# + String(repeating: "[{", count: 40) + #"\\"}}"#
        XCTAssertTrue(takes(brackets, #"{"s":"\""# + String(repeating: "[{", count: 40) + #"\\"}"#))
        let long = #"{"data":{"plan":{"$in":["# + String(repeating: #""x","#, count: 3000) + #""y"]}}}"#
        XCTAssertThrowsError(try EventFilter(long)) { error in
            XCTAssertEqual((error as? KeysatError)?.message, "filter: longer than 8192 bytes")
        }
        let hostile = String(repeating: "[", count: 100_000)
        XCTAssertThrowsError(try EventFilter(hostile))
    }

    func testStoredTextIsCompactAndEmptyTakesEverything() throws {
        XCTAssertEqual(try EventFilter(" { \"data\" : { \"n\" : 1.50 , \"s\":\"a\\u0041\" } } ").text, #"{"data":{"n":1.50,"s":"aA"}}"#)
        XCTAssertTrue(EventFilter.isReadable(#"{"data":{"plan":"pro"}}"#))
        XCTAssertFalse(EventFilter.isReadable(#"{"data":{"plan":{"$regex":"."}}}"#))
        XCTAssertFalse(EventFilter.isReadable("not json"))
    }

    /// The one rule of both backends' enqueues: filters decide, an unreadable stored filter
    /// keeps its endpoint (held by the run, never lost), no filter parses nothing.
    func testReceivers() {
        var filters = EventFilter.Stored()
        filters.add(#"{"data":{"plan":"pro"}}"#, at: 1)
        filters.add(#"{"data":{"plan":"free"}}"#, at: 2)
        filters.add("{oops", at: 3)
        XCTAssertEqual(
            EventFilter.receivers(
                ["a", "b", "c", "d"], filters: filters, eventType: "license.issued", timestamp: moment,
                data: Array(#"{"plan":"pro"}"#.utf8)),
            ["a", "b", "d"])
        XCTAssertEqual(
            EventFilter.receivers(
                ["a", "b"], filters: EventFilter.Stored(), eventType: "x", timestamp: moment,
                data: Array("not json".utf8)),
            ["a", "b"])
    }
}
