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
            ["endpoint", "remove"], ["endpoint", "test"],
            ["deliveries", "list"], ["deliveries", "show"], ["deliveries", "retry"], ["purge"], ["stats"],
            ["listen"], ["verify"], ["units"], ["event-types", "list"], ["event-types", "add"],
            ["event-types", "remove"], ["copy"], ["trigger"], ["deliveries", "erase"], ["deliveries", "drop"],
        ]
        XCTAssertEqual(try runTool("/bin/bash", ["-n"], stdin: Data(completion.utf8)).status, 0, "bash -n")
        // The zsh and fish scripts are checked for every option here, and run by those shells
        // in testZshAndFishLoadAndCompleteTheScripts.
        let others = try ["zsh", "fish"].map {
            try runTool("keysat-webhooks", ["--generate-completion-script", $0])
        }
        for command in commands {
            let help = try runTool("keysat-webhooks", command + ["--help"])
            XCTAssertEqual(help.status, 0, command.joined(separator: " "))
            for option in options(inHelp: help.output) where option != "--help" {
                assertDocumented(option, man: man, completion: completion, command.joined(separator: " "))
                for script in others {
                    XCTAssertEqual(script.status, 0, script.stderr)
                    // fish names a long option without its dashes (`-l json`).
                    XCTAssertTrue(
                        script.output.contains(option) || script.output.contains("-l " + option.dropFirst(2)),
                        "\(option) is not in a completion script")
                }
            }
        }
        // An option's own words (its enumeration's values) are completed.
        XCTAssertTrue(completion.contains("hmac ed25519"), completion)
        XCTAssertTrue(others[1].output.contains("-x -a 'hmac ed25519'"), others[1].output)
    }
}

extension CompletionTests {
    /// The scripts as the shells run them: zsh and fish parse them, fish completes real command
    /// lines with them (subcommands at the top and below, an option's values) and says nothing
    /// on standard error, and zsh's completion system loads the function. Skipped only where
    /// the shells are not installed (`scripts/setup.sh test` installs them).
    func testZshAndFishLoadAndCompleteTheScripts() throws {
        let zsh = "/usr/bin/zsh", fish = "/usr/bin/fish"
        guard FileManager.default.isExecutableFile(atPath: zsh), FileManager.default.isExecutableFile(atPath: fish)
        else { throw XCTSkip("zsh or fish not installed") }
        let scratch = try Scratch()
        let fishScript = scratch.file("keysat-webhooks.fish")
        let zshFolder = scratch.file("zsh")
        try FileManager.default.createDirectory(atPath: zshFolder, withIntermediateDirectories: true)
        try runTool("keysat-webhooks", ["--generate-completion-script", "fish"]).stdout
            .write(to: URL(fileURLWithPath: fishScript))
        try runTool("keysat-webhooks", ["--generate-completion-script", "zsh"]).stdout
            .write(to: URL(fileURLWithPath: zshFolder + "/_keysat-webhooks"))
        XCTAssertEqual(try runTool(fish, ["-n", fishScript]).status, 0)
        XCTAssertEqual(try runTool(zsh, ["-n", zshFolder + "/_keysat-webhooks"]).status, 0)
        func complete(_ line: String) throws -> [String] {
            let result = try runTool(
                fish, ["--no-config", "-c", "source \(fishScript); complete -C '\(line)'"])
            XCTAssertEqual(result.stderr, "", line)
            return result.output.split(separator: "\n").map { String($0.split(separator: "\t")[0]) }
        }
        XCTAssertTrue(try complete("keysat-webhooks end").contains("endpoint"))
        XCTAssertTrue(try complete("keysat-webhooks endpoint up").contains("update"))
        XCTAssertTrue(try complete("keysat-webhooks endpoint update --order-on").contains("--order-on-dead"))
        XCTAssertEqual(
            Set(try complete("keysat-webhooks endpoint add --signature ")), ["hmac", "ed25519"])
        XCTAssertFalse(try complete("keysat-webhooks endpoint --").contains("--order-by"), "only at its command")
        let loaded = try runTool(
            zsh,
            [
                "-f", "-c",
                "fpath=(\(zshFolder) $fpath); autoload -U compinit; compinit -u -D; whence -w _keysat-webhooks",
            ])
        XCTAssertEqual(loaded.stderr, "")
        XCTAssertTrue(loaded.output.contains("_keysat-webhooks: function"), loaded.output)
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

/// `--json` on every command, parsed (issue 15).
final class JSONOutputTests: XCTestCase {
    private func object(_ result: ProcessResult, _ what: String) throws -> Any {
        XCTAssertEqual(result.status, 0, "\(what): \(result.stderr)")
        return try JSONSerialization.jsonObject(with: result.stdout)
    }

    func testEveryCommandPrintsJSONWithTheSameKeys() throws {
        let scratch = try Scratch()
        let path = try scratch.database()
        func webhooks(_ arguments: [String]) throws -> Any {
            try object(
                runTool("keysat-webhooks", arguments + ["--json", "--db", path]),
                arguments.joined(separator: " "))
        }
        let made = try XCTUnwrap(try webhooks(["init"]) as? [String: Any])
        XCTAssertEqual(made["database"] as? String, path)
        XCTAssertNotNil(made["schema_version"] as? Int)
        let added = try XCTUnwrap(
            try webhooks(["endpoint", "add", "http://127.0.0.1:9/a"]) as? [String: Any])
        let id = try XCTUnwrap(added["id"] as? String)
        XCTAssertEqual(
            (try webhooks(["endpoint", "disable", id]) as? [String: Any])?["active"] as? Bool, false)
        XCTAssertEqual(
            (try webhooks(["endpoint", "enable", id]) as? [String: Any])?["active"] as? Bool, true)
        XCTAssertEqual(
            (try webhooks(["endpoint", "update", id, "--description", "x"]) as? [String: Any])?["description"]
                as? String, "x")
        XCTAssertEqual((try webhooks(["endpoint", "list"]) as? [[String: Any]])?.first?["id"] as? String, id)
        let delivery = try XCTUnwrap(
            runTool("keysat-enqueue", ["--db", path, "license.issued", #"{"n":1.50}"#]).lines.first)
        let listed = try XCTUnwrap((try webhooks(["deliveries", "list"]) as? [[String: Any]])?.first)
        let shown = try XCTUnwrap(try webhooks(["deliveries", "show", delivery]) as? [String: Any])
        for record in [listed, shown] {
            XCTAssertEqual(record["id"] as? String, delivery)
            // The payload is a JSON value, the envelope as sent.
            let payload = try XCTUnwrap(record["payload"] as? [String: Any])
            XCTAssertEqual(payload["event_type"] as? String, "license.issued")
        }
        XCTAssertEqual(Set(listed.keys).subtracting(shown.keys), [])
        XCTAssertNotNil(shown["attempts"] as? [Any])
        let due = try object(
            runTool("keysat-deliver", ["--db", path, "--dry-run", "--json"]),
            "keysat-deliver --dry-run --json")
        let first = try XCTUnwrap((due as? [[String: Any]])?.first)
        XCTAssertEqual(first["id"] as? String, delivery)
        XCTAssertEqual(first["endpoint_id"] as? String, id)
        XCTAssertTrue(first["refused"] is NSNull, "loopback is allowed here: \(first)")
        XCTAssertEqual(
            (try webhooks(["deliveries", "retry", delivery]) as? [String: Any])?["requeued"] as? Int, 1)
        XCTAssertEqual(
            (try webhooks(["purge", "--older-than", "1d", "--dry-run"]) as? [String: Any])?["dry_run"]
                as? Bool, true)
        XCTAssertNotNil((try webhooks(["stats"]) as? [String: Any])?["endpoints"] as? [Any])
        XCTAssertNotNil(
            (try webhooks(["endpoint", "rotate-secret", id, "--grace", "0"]) as? [String: Any])?[
                "secret_whsec"])
        XCTAssertEqual(
            (try webhooks(["event-types", "add", "shop.refund"]) as? [String: Any])?["declared"] as? Bool,
            true)
        XCTAssertEqual(
            (try webhooks(["event-types", "remove", "shop.refund"]) as? [String: Any])?["removed"] as? Bool,
            true)
        XCTAssertEqual((try webhooks(["event-types"]) as? [[String: Any]])?.isEmpty, false)
        let units = try XCTUnwrap(try webhooks(["units"]) as? [String: Any])
        // A service, a timer and, for SQLite's file, a path unit watching the kick file;
        // PostgreSQL's runs are woken by NOTIFY: nothing to watch.
        XCTAssertEqual((units["files"] as? [[String: Any]])?.count, onPostgreSQL ? 2 : 3)
        let removed = try XCTUnwrap(try webhooks(["endpoint", "remove", id, "--force"]) as? [String: Any])
        XCTAssertEqual(removed["id"] as? String, id)
        XCTAssertEqual(removed["deliveries_deleted"] as? Int, 1)
    }
}

extension JSONOutputTests {
    func testVerifyPrintsItsVerdictAsJSON() throws {
        let scratch = try Scratch()
        let secret = "0123456789abcdef0123456789abcdef"
        let secretFile = try scratch.write("secret", secret + "\n", mode: 0o600)
        let body = Data(#"{"event_type":"e"}"#.utf8)
        let bodyFile = scratch.file("body")
        try body.write(to: URL(fileURLWithPath: bodyFile))
        // The signature by Python's hmac module, not by the code under test.
        let mac = try IndependentHMAC.sha256(key: Data(secret.utf8), message: body).map {
            String(format: "%02x", $0)
        }
        .joined()
        for (signature, valid) in [
            ("sha256=" + mac, true), ("sha256=" + String(repeating: "0", count: 64), false),
        ] {
            let result = try runTool(
                "keysat-webhooks",
                [
                    "verify", "--scheme", "keysat", "--secret-file", secretFile, "--header",
                    "X-Keysat-Signature: \(signature)",
                    "--json", bodyFile,
                ])
            XCTAssertEqual(result.status, valid ? 0 : 1, result.stderr)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
            XCTAssertEqual(object["valid"] as? Bool, valid)
            if valid {
                XCTAssertEqual(object["scheme"] as? String, "keysat")
            } else {
                XCTAssertNotNil(object["error"] as? String)
            }
        }
    }
}

/// Help for a person fits 100 columns in all three programs (issue 15).
final class HelpWidthTests: XCTestCase {
    func testEveryHelpFitsOneHundredColumns() throws {
        var helps: [(String, [String])] = [("keysat-enqueue", ["--help"]), ("keysat-deliver", ["--help"])]
        for command in [
            [], ["init"], ["endpoint"], ["endpoint", "add"], ["endpoint", "list"], ["endpoint", "show"],
            ["endpoint", "update"], ["endpoint", "rotate-secret"], ["endpoint", "enable"],
            ["endpoint", "disable"],
            ["endpoint", "remove"], ["endpoint", "test"], ["deliveries"], ["deliveries", "list"],
            ["deliveries", "show"], ["deliveries", "retry"], ["purge"], ["stats"], ["listen"], ["verify"],
            ["units"],
            ["event-types"], ["event-types", "add"], ["event-types", "remove"],
        ] {
            helps.append(("keysat-webhooks", command + ["--help"]))
        }
        for (program, arguments) in helps {
            let help = try runTool(program, arguments)
            XCTAssertEqual(help.status, 0, "\(program) \(arguments)")
            for line in help.lines {
                XCTAssertLessThanOrEqual(
                    line.count, 100, "\(program) \(arguments.joined(separator: " ")): \(line)")
            }
        }
    }
}
