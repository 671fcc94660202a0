import KeysatCommandLine
import KeysatCore
import XCTest

/// The hand-written parser of keysat-enqueue and keysat-deliver, as getopt_long users expect it.
final class OptionParserTests: XCTestCase {
    let parser = OptionParser([
        .init("--db", value: true, completion: .file), .init("-v", "--verbose"), .init("--json"),
        .init("--kick", optionalValue: true, completion: .words(["file", "spawn"])),
        .init("--concurrency", value: true), .init("--timeout", value: true),
        .init("--secret-option", value: true, hidden: true),
    ])

    func usage(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) -> String? {
        do {
            _ = try parser.parse(arguments)
            XCTFail("parsed \(arguments)", file: file, line: line)
            return nil
        } catch let error as KeysatError {
            XCTAssertEqual(error.kind, .usage, file: file, line: line)
            return error.message
        } catch {
            XCTFail("\(error)", file: file, line: line)
            return nil
        }
    }

    func testValuesFlagsAndPositionals() throws {
        let parsed = try parser.parse(["--db", "/a", "e", "-v", "--db=/b", "--json", "{}"])
        XCTAssertEqual(parsed.value("--db"), "/b", "the last one wins")
        XCTAssertEqual(parsed.all("--db"), ["/a", "/b"])
        XCTAssertTrue(parsed.has("--verbose"), "a short name is filed under the long one")
        XCTAssertTrue(parsed.has("--json"))
        XCTAssertEqual(parsed.positionals, ["e", "{}"])
    }

    func testDashDashEndsOptionsAndDashAndNegativeNumbersArePositional() throws {
        let parsed = try parser.parse(["-", "-5", "--", "--json", "-v"])
        XCTAssertEqual(parsed.positionals, ["-", "-5", "--json", "-v"])
        XCTAssertFalse(parsed.has("--json"))
    }

    func testAValueMayStartWithADash() throws {
        XCTAssertEqual(try parser.parse(["--db", "-odd-name"]).value("--db"), "-odd-name")
    }

    func testOptionalValues() throws {
        XCTAssertEqual(try parser.parse(["--kick"]).value("--kick"), "")
        XCTAssertEqual(try parser.parse(["--kick=spawn"]).value("--kick"), "spawn")
        // Without "=", the next word is not taken as its value.
        let parsed = try parser.parse(["--kick", "spawn"])
        XCTAssertEqual(parsed.value("--kick"), "")
        XCTAssertEqual(parsed.positionals, ["spawn"])
    }

    func testUsageErrors() {
        XCTAssertEqual(usage(["--db"]), "option '--db' needs a value")
        XCTAssertEqual(usage(["--json=yes"]), "option '--json' takes no value")
        XCTAssertEqual(
            usage(["--concurency", "4"]), "unknown option '--concurency' (did you mean '--concurrency'?)")
        XCTAssertEqual(usage(["--verb"]), "unknown option '--verb' (did you mean '--verbose'?)")
        XCTAssertEqual(usage(["--zzzzzz"]), "unknown option '--zzzzzz'")
        // Hidden options are never suggested.
        XCTAssertEqual(usage(["--secret-optio"]), "unknown option '--secret-optio'")
    }

    func testNumbersAndDurations() throws {
        let parsed = try parser.parse(["--concurrency", "16", "--timeout", "2m"])
        XCTAssertEqual(try parsed.integer("--concurrency", in: 1...1024, what: "1 to 1024"), 16)
        XCTAssertEqual(try parsed.seconds("--timeout"), 120)
        let bad = try parser.parse(["--concurrency", "0", "--timeout", "-1"])
        XCTAssertThrowsError(try bad.integer("--concurrency", in: 1...1024, what: "1 to 1024")) {
            XCTAssertEqual(($0 as? KeysatError)?.message, "'--concurrency' must be 1 to 1024")
        }
        XCTAssertThrowsError(try bad.seconds("--timeout"))
        XCTAssertEqual(try bad.seconds("--absent"), nil)
        let huge = try parser.parse(["--concurrency", "99999999999999999999999"])
        XCTAssertThrowsError(try huge.integer("--concurrency", in: 1...1024, what: "1 to 1024"))
    }

    func testEditDistance() {
        XCTAssertEqual(OptionParser.closest(to: "--dbb", among: ["--db", "--json"]), "--db")
        XCTAssertNil(OptionParser.closest(to: "--x", among: ["--json"]))
    }

    func testTheCompletionOffersExactlyTheVisibleOptions() {
        let script = parser.bashCompletion(program: "keysat-enqueue")
        for name in ["--db", "-v", "--verbose", "--json", "--kick", "--concurrency", "--timeout"] {
            XCTAssertTrue(script.contains(name), name)
        }
        XCTAssertFalse(script.contains("--secret-option"))
        XCTAssertTrue(script.contains("--kick=file --kick=spawn"), "an optional value is completed after =")
    }
}
