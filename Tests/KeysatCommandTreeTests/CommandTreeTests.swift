import KeysatCore
import XCTest

@testable import KeysatCommandTree

/// A small tree shaped like keysat-webhooks': shared options at the root (hidden) and in the
/// leaves, a group with a default subcommand, each kind of property.
private struct Shared: ParsableArguments {
    @Option(help: ArgumentHelp("The database.", valueName: "path"), completion: .file()) var db: String?
    @Option(help: "Wait this long.") var busyTimeoutMS = 5000
}

private struct Root: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tool", abstract: "A tool.", version: "1.2.3", subcommands: [Group.self, Copy.self])
    @OptionGroup(visibility: .hidden) var shared: Shared
}

private struct Group: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group", abstract: "Things.", subcommands: [Add.self, List.self], defaultSubcommand: List.self)
}

private enum Kind: String, ExpressibleByArgument, CaseIterable { case one, two }

private struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add a thing.", discussion: "A long discussion that goes on and on, so that it needs more than one line of eighty columns to be said.")
    @Argument(help: "The thing's URL.") var url: String
    @Option(name: .customLong("event"), help: ArgumentHelp("An event (repeatable).", valueName: "type"))
    var events: [String] = []
    @Option(help: "Its kind.") var kind: Kind = .one
    @Option(help: "Read the secret from this file.", completion: .file()) var secretFile: String?
    @Flag(help: "Print JSON.") var json = false
    @Flag(name: .customLong("no-ordered"), help: "In any order.") var notOrdered = false
    @OptionGroup var shared: Shared

    func validate() throws {
        if url == "bad" { throw ValidationError("'bad' is no URL") }
    }
}

private struct List: ParsableCommand {
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var shared: Shared
}

private struct Copy: ParsableCommand {
    @Option(name: .customLong("to"), help: ArgumentHelp("Where to.", valueName: "location")) var target: String
    @Argument(help: "Files.") var files: [String] = []
}

final class CommandTreeTests: XCTestCase {
    private let tree = CommandTree(Root.self)

    private func request(_ words: [String]) throws -> CommandTree.Request {
        var path: [any ParsableCommand.Type] = [Root.self]
        return try tree.request(for: words, path: &path)
    }

    private func command<T>(_ words: [String], as type: T.Type) throws -> T {
        guard case .run(let command) = try request(words) else { throw KeysatError(.internal, "printed") }
        return try XCTUnwrap(command as? T)
    }

    private func text(_ words: [String]) throws -> String {
        guard case .print(let text) = try request(words) else { throw KeysatError(.internal, "ran") }
        return text
    }

    private func usageError(_ words: [String]) -> String {
        do {
            _ = try request(words)
        } catch let error as KeysatError {
            XCTAssertEqual(error.kind, .usage)
            return error.message
        } catch let error as ValidationError {
            return error.message
        } catch {}
        XCTFail("\(words) was accepted")
        return ""
    }

    func testOptionsAreNamedAfterTheirPropertiesAndFilled() throws {
        let add = try command(
            [
                "--db", "group", "group", "add", "http://a", "--event", "a", "--event=b", "--secret-file", "s",
                "--kind", "two", "--json", "--no-ordered", "--busy-timeout-ms", "7",
            ], as: Add.self)
        XCTAssertEqual(add.url, "http://a")
        XCTAssertEqual(add.events, ["a", "b"])
        XCTAssertEqual(add.kind, .two)
        XCTAssertEqual(add.secretFile, "s")
        XCTAssertTrue(add.json)
        XCTAssertTrue(add.notOrdered)
        // Given before the subcommand words, a shared option reaches the command that runs.
        XCTAssertEqual(add.shared.db, "group")
        XCTAssertEqual(add.shared.busyTimeoutMS, 7)
        let plain = try command(["group", "add", "http://b"], as: Add.self)
        XCTAssertEqual(plain.events, [])
        XCTAssertEqual(plain.kind, .one)
        XCTAssertNil(plain.secretFile)
        XCTAssertFalse(plain.json)
        XCTAssertEqual(plain.shared.busyTimeoutMS, 5000)
        XCTAssertEqual(try command(["copy", "--to", "x", "a", "b"], as: Copy.self).files, ["a", "b"])
    }

    func testAGroupRunsItsDefaultSubcommand() throws {
        XCTAssertTrue(try command(["group", "--json"], as: List.self).json)
    }

    func testUsageErrorsSayWhatIsWrong() {
        XCTAssertEqual(usageError(["group", "ad"]), "'ad' is not a subcommand of 'tool group' (did you mean 'add'?)")
        XCTAssertEqual(usageError(["group", "add"]), "missing expected argument '<url>'")
        XCTAssertEqual(usageError(["group", "add", "u", "v"]), "unexpected argument 'v'")
        XCTAssertEqual(
            usageError(["group", "add", "u", "--kind", "three"]),
            "the value 'three' is invalid for '--kind' (one of: one, two)")
        XCTAssertEqual(usageError(["group", "add", "u", "--jsn"]), "unknown option '--jsn' (did you mean '--json'?)")
        XCTAssertEqual(usageError(["group", "add", "bad"]), "'bad' is no URL")
        XCTAssertEqual(usageError(["copy"]), "missing expected option '--to <location>'")
        XCTAssertEqual(usageError(["group", "list", "--busy-timeout-ms", "soon"]), "the value 'soon' is invalid for '--busy-timeout-ms'")
    }

    func testHelpListsEveryVisibleOptionWithItsValuesAndDefault() throws {
        let help = try text(["group", "add", "--help"])
        XCTAssertEqual(try text(["help", "group", "add"]), help)
        XCTAssertTrue(help.hasPrefix("OVERVIEW: Add a thing.\n\nA long discussion"), help)
        // Too long to list every option within 100 columns.
        XCTAssertTrue(help.contains("USAGE: tool group add <url> [options]\n"), help)
        XCTAssertTrue(try text(["copy", "--help"]).contains("USAGE: tool copy --to <location> [<files> ...]\n"))
        XCTAssertTrue(try text(["group", "list", "--help"]).contains("USAGE: tool group list [--json] [--db <path>]"))
        XCTAssertTrue(help.contains("\nARGUMENTS:\n  <url>                   The thing's URL.\n"), help)
        XCTAssertTrue(help.contains("\n  --event <type>          An event (repeatable).\n"), help)
        XCTAssertTrue(help.contains("\n  --kind <kind>           Its kind. (values: one, two; default: one)\n"), help)
        XCTAssertTrue(help.contains("\n  --busy-timeout-ms <busy-timeout-ms>\n                          Wait this long. (default: 5000)\n"), help)
        XCTAssertTrue(help.hasSuffix("  -h, --help              Show help information.\n\n"), help)
        for line in help.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, String(line)) }
        // The root's hidden group is not listed; its subcommands are, the default marked.
        let group = try text(["group", "--help"])
        XCTAssertTrue(group.contains("  list (default)  "), group)
        XCTAssertTrue(group.hasSuffix("  See 'tool help group <subcommand>' for detailed help.\n"), group)
        XCTAssertFalse(try text(["--help"]).contains("--db"))
        XCTAssertEqual(try text(["group", "add", "--version"]), "1.2.3\n")
    }

    func testCompletionsOfferEachCommandsOptionsAndValues() throws {
        let bash = try text(["--generate-completion-script", "bash"])
        XCTAssertTrue(bash.contains("        /group/add)\n"), bash)
        XCTAssertTrue(bash.contains("--secret-file|--db) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;"), bash)
        XCTAssertTrue(bash.contains("--kind) COMPREPLY=($(compgen -W \"one two\" -- \"$cur\")); return ;;"), bash)
        XCTAssertTrue(bash.contains("subcommands=\"add list\""), bash)
        let fish = try text(["--generate-completion-script", "fish"])
        XCTAssertTrue(fish.contains("-n '_tool_is group add' -l secret-file -r -F -d 'Read the secret from this file.'"), fish)
        XCTAssertTrue(try text(["--generate-completion-script", "zsh"]).hasPrefix("#compdef tool\n"))
        XCTAssertEqual(usageError(["--generate-completion-script", "tcsh"]), "completion scripts are made for bash, zsh and fish, not 'tcsh'")
    }

    func testPropertyNamesBecomeKebabCase() {
        XCTAssertEqual(kebab("secretFile"), "secret-file")
        XCTAssertEqual(kebab("busyTimeoutMS"), "busy-timeout-ms")
        XCTAssertEqual(kebab("json"), "json")
    }
}
