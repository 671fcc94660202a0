import Foundation
import XCTest

/// Every option a program's --help lists is in its completion and its man page (issue 15): the
/// three cannot drift apart unnoticed.
final class CompletionTests: XCTestCase {
    /// The long options (`--name`) a help text lists.
    private func options(inHelp text: String) -> Set<String> {
        var found: Set<String> = []
        for word in text.split(whereSeparator: { " ,[]=<>()\n".contains($0) }) where word.hasPrefix("--") {
            let name = word.prefix { $0 == "-" || $0.isLetter || $0.isNumber }
            if name.count > 2 { found.insert(String(name)) }
        }
        return found
    }

    private func manPage(_ name: String) throws -> String {
        try String(contentsOf: Binaries.packageRoot.appendingPathComponent("man/\(name).1"), encoding: .utf8)
    }

    private func assertDocumented(_ option: String, man: String, completion: String, _ what: String) {
        XCTAssertTrue(completion.contains(option), "\(what): \(option) is not in the bash completion")
        // mdoc writes --name as `Fl -name`.
        XCTAssertTrue(man.contains("Fl -" + option.dropFirst(2)), "\(what): \(option) is not in the man page")
    }

    func testTheHandParsedProgramsCompleteAndDocumentEveryOption() throws {
        for program in ["keysat-enqueue", "keysat-deliver"] {
            let help = try runTool(program, ["--help"])
            XCTAssertEqual(help.status, 0)
            let completion = try runTool(program, ["--generate-completion-script", "bash"])
            XCTAssertEqual(completion.status, 0, completion.stderr)
            XCTAssertEqual(
                try runTool("/bin/bash", ["-n"], stdin: completion.stdout).status, 0, "\(program): bash -n")
            let listed = options(inHelp: help.output)
            XCTAssertGreaterThan(listed.count, 5, help.output)
            let man = try manPage(program)
            for option in listed {
                assertDocumented(option, man: man, completion: completion.output, program)
            }
            // Path options complete file names.
            XCTAssertTrue(completion.output.contains("--db|"), completion.output)
            XCTAssertTrue(completion.output.contains("compgen -f"), completion.output)
        }
    }

    func testKeysatWebhooksCompletesAndDocumentsEveryOptionOfEverySubcommand() throws {
        let completion = try runTool("keysat-webhooks", ["--generate-completion-script", "bash"]).output
        let man = try manPage("keysat-webhooks")
        let commands = [
            ["init"], ["endpoint", "add"], ["endpoint", "list"], ["endpoint", "show"],
            ["endpoint", "update"],
            ["endpoint", "rotate-secret"], ["endpoint", "enable"], ["endpoint", "disable"],
            ["endpoint", "remove"],
            ["deliveries", "list"], ["deliveries", "show"], ["deliveries", "retry"], ["purge"], ["stats"],
            ["listen"], ["verify"], ["units"],
        ]
        for command in commands {
            let help = try runTool("keysat-webhooks", command + ["--help"])
            XCTAssertEqual(help.status, 0, command.joined(separator: " "))
            for option in options(inHelp: help.output) where option != "--help" {
                assertDocumented(option, man: man, completion: completion, command.joined(separator: " "))
            }
        }
    }
}

/// One voice for errors in the three programs (issue 15): one line, `NAME: error: …`, naming
/// the subcommand's own help, with "did you mean" for mistyped options and subcommands.
final class UsageErrorTests: XCTestCase {
    func testUsageErrorsAreOneLineWithTheirOwnHelpAndASuggestion() throws {
        let cases: [(String, [String], String)] = [
            (
                "keysat-deliver", ["--concurency", "3"],
                "keysat-deliver: error: unknown option '--concurency' (did you mean '--concurrency'?) (see 'keysat-deliver --help')"
            ),
            (
                "keysat-enqueue", ["--idempotency", "k", "e"],
                "keysat-enqueue: error: unknown option '--idempotency' (did you mean '--idempotency-key'?) (see 'keysat-enqueue --help')"
            ),
            (
                "keysat-webhooks", ["endpoint", "ad", "x"],
                "keysat-webhooks: error: 'ad' is not a subcommand of 'keysat-webhooks endpoint' (did you mean 'add'?) (see 'keysat-webhooks endpoint --help')"
            ),
            (
                "keysat-webhooks", ["stat"],
                "keysat-webhooks: error: 'stat' is not a subcommand of 'keysat-webhooks' (did you mean 'stats'?) (see 'keysat-webhooks --help')"
            ),
        ]
        for (program, arguments, expected) in cases {
            let result = try runTool(program, arguments)
            XCTAssertEqual(result.status, 64, "\(program) \(arguments)")
            XCTAssertEqual(result.stderr, expected + "\n")
        }
        let option = try runTool("keysat-webhooks", ["endpoint", "list", "--jsn"])
        XCTAssertEqual(option.status, 64)
        XCTAssertEqual(option.stderr.split(separator: "\n").count, 1, option.stderr)
        XCTAssertTrue(option.stderr.contains("'--json'"), option.stderr)
        XCTAssertTrue(
            option.stderr.hasSuffix("(see 'keysat-webhooks endpoint list --help')\n"), option.stderr)
        let missing = try runTool("keysat-webhooks", ["--db", "/nonexistent", "purge"])
        XCTAssertTrue(missing.stderr.hasSuffix("(see 'keysat-webhooks purge --help')\n"), missing.stderr)
    }
}
