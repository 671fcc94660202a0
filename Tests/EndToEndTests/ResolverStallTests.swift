import Foundation
import XCTest

/// Name resolution obeys the attempt's time limits, and a signal ends a run within its
/// documented time, even when the resolver never answers (issue 12, class 8).
final class ResolverStallTests: XCTestCase {
    func testAStalledResolverDoesNotOutliveTheTimeLimitsOrASignal() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root for a network namespace")
        let scratch = try Scratch()
        let script = Binaries.packageRoot.appendingPathComponent(
            "Tests/EndToEndTests/Fixtures/dns_stall_scenario.sh"
        )
        .path
        let result = try runTool(
            "/usr/bin/unshare", ["--mount", "--net", script, scratch.path, Binaries.directory.path],
            environment: ["KEYSAT_ALLOW_NETWORKS": ""])
        XCTAssertEqual(result.status, 0, result.stderr + result.output)
        let timings = try String(contentsOfFile: scratch.file("timings"), encoding: .utf8)
        var seen: [String: (status: Int, ms: Int)] = [:]
        for line in timings.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            seen[fields[0]] = (Int(fields[1]) ?? -1, Int(fields[2]) ?? -1)
        }
        // The lookups made for warnings (endpoint add) and for --dry-run give up too.
        XCTAssertLessThan(seen["add"]?.ms ?? .max, 6_500, timings)
        XCTAssertEqual(seen["dry-run"]?.status, 0, timings)
        XCTAssertLessThan(seen["dry-run"]?.ms ?? .max, 3_000, timings)
        // --timeout 2 --max-runtime 3: the attempt gives up at 2 s, the run ends by 3 s.
        XCTAssertEqual(seen["budget"]?.status, 0, timings)
        XCTAssertLessThan(seen["budget"]?.ms ?? .max, 3_500, "a stalled lookup held the run: \(timings)")
        // SIGTERM: the attempt in flight is abandoned at its timeout (2 s), then the run exits 0.
        XCTAssertEqual(seen["signal"]?.status, 0, timings)
        XCTAssertLessThan(
            seen["signal"]?.ms ?? .max, 3_000, "a stalled lookup held the run past SIGTERM: \(timings)")
        let rows = try String(contentsOfFile: scratch.file("rows.json"), encoding: .utf8)
        XCTAssertTrue(rows.contains("\"attempt_count\":2"), "both attempts were recorded: \(rows)")
        XCTAssertTrue(rows.contains("Resolving timed out") || rows.contains("resolve"), rows)
    }
}
