#if canImport(Glibc)
    import Glibc
#endif
import KeysatCommandLine
import KeysatCore

/// Parses a program's command line against its tree of commands and runs the one it names:
/// keysat-webhooks' `endpoint add …`. The words that name subcommands are taken first; the
/// rest are parsed by one `OptionParser` made from the options of every command on the path
/// (so `--db` may come before the subcommand words too), and each command's properties are
/// filled from it. Every error leaves through `Output.fail`, that is `KeysatError`'s exit codes.
public struct CommandTree {
    let root: any ParsableCommand.Type

    public init(_ root: any ParsableCommand.Type) { self.root = root }

    var program: String { root.commandName }

    /// The words every command takes besides its own options.
    static let builtIn: [OptionParser.Option] = [
        .init("-h", "--help"), .init("--version"),
        .init("--generate-completion-script", value: true, completion: .words(["bash", "zsh", "fish"]), hidden: true),
    ]

    /// What the command line asks for: text to print (help, the version, a completion script)
    /// or a command, its options filled and checked, to run.
    enum Request {
        case print(String)
        case run(any ParsableCommand)
    }

    /// Runs the command `arguments` (without the program's name) name, and exits.
    public func main(_ arguments: [String]) -> Never {
        var path: [any ParsableCommand.Type] = [root]
        do {
            switch try request(for: arguments, path: &path) {
            case .print(let text): try Output.standard(text)
            case .run(let command): try command.run()
            }
            exit(0)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch let error as KeysatError {
            Output.fail(program, error, help: helpCommand(path))
        } catch let error as ValidationError {
            Output.fail(program, KeysatError(.usage, error.message), help: helpCommand(path))
        } catch {
            Output.fail(program, KeysatError(.internal, "\(error)"))
        }
    }

    /// Parses `arguments`; `path` is left at the commands named so far, for the error's help.
    /// - Throws: `KeysatError` (usage) or `ValidationError` for what cannot be run.
    func request(for arguments: [String], path: inout [any ParsableCommand.Type]) throws -> Request {
        var words = arguments
        let asksHelp = takeHelpWord(&words)
        let rest = try resolve(words, into: &path)
        if asksHelp || rest.prefix(while: { $0 != "--" }).contains(where: { $0 == "-h" || $0 == "--help" }) {
            return .print(CommandHelp(path: path, program: program).text())
        }
        while let fallback = path.last!.configuration.defaultSubcommand { path.append(fallback) }
        return try parse(path, rest)
    }

    /// `program help endpoint add` asks for that command's help, as `--help` does.
    func takeHelpWord(_ words: inout [String]) -> Bool {
        guard words.first == "help", !root.configuration.subcommands.contains(where: { $0.commandName == "help" })
        else { return false }
        words.removeFirst()
        return true
    }

    func helpCommand(_ path: [any ParsableCommand.Type]) -> String {
        (path.map { $0.commandName } + ["--help"]).joined(separator: " ")
    }

    /// Appends to `path` (the root) the commands the words name; returns the words left for
    /// their options.
    func resolve(_ words: [String], into path: inout [any ParsableCommand.Type]) throws -> [String] {
        var rest: [String] = []
        var options = Self.builtIn + Self.declarations(of: root.init()).map(\.option)
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            if word == "--" {
                rest += words[(index - 1)...]
                break
            }
            if word.hasPrefix("-"), word.count > 1 {
                rest.append(word)
                // An option's value is no subcommand word: `--db purge` names a file.
                if !word.contains("="), options.contains(where: { $0.takesValue && $0.names.contains(word) }),
                    index < words.count
                {
                    rest.append(words[index])
                    index += 1
                }
                continue
            }
            let current = path.last!
            let subcommands = current.configuration.subcommands
            guard !subcommands.isEmpty else {
                rest.append(word)
                continue
            }
            guard let next = subcommands.first(where: { $0.commandName == word }) else {
                throw unknownSubcommand(word, of: path)
            }
            path.append(next)
            options += Self.declarations(of: next.init()).map(\.option)
        }
        return rest
    }

    func unknownSubcommand(_ word: String, of path: [any ParsableCommand.Type]) -> KeysatError {
        let names = path.last!.configuration.subcommands.map { $0.commandName }
        var message = "'\(word)' is not a subcommand of '\(path.map { $0.commandName }.joined(separator: " "))'"
        if let close = OptionParser.closest(to: word, among: names) { message += " (did you mean '\(close)'?)" }
        return KeysatError(.usage, message)
    }

    /// Parses the options of the path's commands, fills and checks each command: the last is
    /// the one to run (a command with subcommands prints its help).
    func parse(_ path: [any ParsableCommand.Type], _ words: [String]) throws -> Request {
        let commands = path.map { $0.init() }
        var options = Self.builtIn
        // The nearest command's declaration of a shared option (`--db`) is the one parsed.
        for command in commands.reversed() {
            for declaration in Self.declarations(of: command) where !declaration.option.names.isEmpty {
                if !options.contains(where: { $0.names.last == declaration.option.names.last }) {
                    options.append(declaration.option)
                }
            }
        }
        let parsed = try OptionParser(options).parse(words)
        if let shell = parsed.value("--generate-completion-script") {
            return .print(try CommandCompletion(root: root).script(shell: shell))
        }
        if parsed.has("--version") { return .print(root.configuration.version + "\n") }
        var positionals = parsed.positionals
        for command in commands.dropLast() {
            var none: [String] = []
            try Self.fill(command, from: parsed, positionals: &none)
        }
        try Self.fill(commands.last!, from: parsed, positionals: &positionals)
        if let extra = positionals.first { throw KeysatError(.usage, "unexpected argument '\(extra)'") }
        for command in commands { try command.validate() }
        if !path.last!.configuration.subcommands.isEmpty {
            return .print(CommandHelp(path: path, program: program).text())
        }
        return .run(commands.last!)
    }

    /// The options and arguments a command's (or option group's) properties declare, in order.
    static func declarations(of arguments: any ParsableArguments) -> [Declaration] {
        Mirror(reflecting: arguments).children.flatMap { child -> [Declaration] in
            guard let slot = child.value as? any ArgumentSlot, let label = child.label else { return [] }
            return slot.declarations(label: String(label.dropFirst()))
        }
    }

    /// Fills the properties of `arguments` from the parse.
    static func fill(
        _ arguments: any ParsableArguments, from parsed: OptionParser.Parsed, positionals: inout [String]
    ) throws {
        for child in Mirror(reflecting: arguments).children {
            guard let slot = child.value as? any ArgumentSlot, let label = child.label else { continue }
            try slot.fill(label: String(label.dropFirst()), from: parsed, positionals: &positionals)
        }
    }
}
