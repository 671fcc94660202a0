import Foundation
import XCTest

/// Every `--help` of keysat-webhooks, read as a person reads it (issue 20: `endpoint test`,
/// `event-types` and `units` printed literal backslashes where a line was meant to continue;
/// `endpoint rotate-secret --grace` stated its default twice).
final class HelpTextTests: XCTestCase {
    func testNoHelpTextHasStrayBackslashesOrATwiceStatedDefault() throws {
        var pending: [[String]] = [[]]
        var seen = 0
        while let path = pending.popLast() {
            let help = try runTool("keysat-webhooks", path + ["--help"])
            XCTAssertEqual(help.status, 0, path.joined(separator: " "))
            seen += 1
            let name = (["keysat-webhooks"] + path).joined(separator: " ")
            for line in help.lines {
                XCTAssertFalse(line.hasSuffix("\\"), "\(name): \(line)")
                XCTAssertFalse(line.contains("\\ "), "\(name): \(line)")
            }
            for entry in entries(help.output) {
                let defaults = entry.components(separatedBy: "default").count - 1
                XCTAssertLessThanOrEqual(defaults, 1, "\(name) states a default twice: \(entry)")
            }
            pending += subcommands(help.output).map { path + [$0] }
        }
        XCTAssertGreaterThan(seen, 20, "every subcommand was read")
    }

    /// Each option's or argument's text, its wrapped lines joined.
    private func entries(_ help: String) -> [String] {
        var entries: [String] = []
        for line in help.split(separator: "\n") {
            if line.hasPrefix("  "), !line.hasPrefix("    "), line.dropFirst(2).first != " " {
                entries.append(String(line))
            } else if line.hasPrefix("    "), !entries.isEmpty {
                entries[entries.count - 1] += " " + line.trimmingCharacters(in: .whitespaces)
            } else {
                entries.append("")
            }
        }
        return entries
    }

    /// The names listed under SUBCOMMANDS:, as ArgumentParser prints them.
    private func subcommands(_ help: String) -> [String] {
        guard let section = help.range(of: "SUBCOMMANDS:\n") else { return [] }
        var names: [String] = []
        for line in help[section.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { break }
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let word = line.split(separator: " ").first
            else { continue }
            if word != "help" { names.append(String(word)) }
        }
        return names
    }
}
