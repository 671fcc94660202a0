import Glibc
import KeysatCore
import KeysatStore
import XCTest

/// `JSONStrings.topLevel` against an independent implementation: SQLite's JSON1, which
/// SQLite's store reads `event_types` with (`json_each` with `type = 'text'`, after
/// `json_valid`). The PostgreSQL backend reads the same column with `JSONStrings`, so an
/// endpoint subscribes to the same event types on either.
final class JSONStringsTests: XCTestCase {
    func testTopLevelStringsAreSQLiteJSONEachTexts() throws {
        let path = "/tmp/keysat-json-strings-\(UInt64.random(in: 0...UInt64.max)).db"
        defer { unlink(path) }
        let database = try Database(path: path, mode: .create)
        let documents = [
            #"["*"]"#, #"["license.issued","machine.activated"]"#, #"  [ "a" , "b" ]  "#, "[]", "{}",
            #""license.issued""#, #"{"x":"license.issued","y":["nested"],"z":"*"}"#,
            #"["a",1,2.5e3,true,false,null,["b"],{"c":"d"},"e"]"#, #"["lic\u0065nse.issued"]"#,
            #"["\"quoted\"","back\\slash","\/","\b\f\n\r\t"]"#, #"["\ud83d\ude00","é","e\u0301","\u2028"]"#,
            #"["[\"not nested\"]","{","}",","]"#, #"[-0.5,"after-number",1e-7,"z"]"#,
            "license.issued", #"["unterminated"#, #"["a",]"#, "", "   ", #"["a"] x"#, "[\"\u{1}\"]",
            #"[["deep",[["deeper"]]],"top"]"#, #"{"k":1,"k2":"v","k3":{"k4":"w"}}"#, "42", "null",
        ]
        let statement = try database.prepare(
            "SELECT value FROM json_each(CASE WHEN json_valid(?1) THEN ?1 ELSE '[]' END) WHERE type = 'text'")
        for document in documents {
            let sqlite = try statement.rows([.text(document)]) { $0.string(0) }
            XCTAssertEqual(
                (JSONStrings.topLevel(document) ?? []).map { Array($0.utf8) }, sqlite.map { Array($0.utf8) },
                document)
        }
        XCTAssertNil(JSONStrings.topLevel("[\"a\""))
        XCTAssertEqual(JSONStrings.topLevel("[]"), [])
    }
}
