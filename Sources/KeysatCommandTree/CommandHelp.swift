import KeysatCommandLine
import KeysatCore

/// A command's `--help`, laid out as swift-argument-parser laid it out (the tests and the
/// habits of users read it so): OVERVIEW, the discussion, USAGE, ARGUMENTS, OPTIONS and
/// SUBCOMMANDS, help texts from column 26, wrapped at 80 columns.
struct CommandHelp {
    let path: [any ParsableCommand.Type]
    let program: String

    static let width = 80
    static let column = 26

    var command: any ParsableCommand.Type { path.last! }
    var words: String { path.map { $0.commandName }.joined(separator: " ") }

    func text() -> String {
        let configuration = command.configuration
        var sections: [String] = []
        if !configuration.abstract.isEmpty {
            sections.append(Self.wrap("OVERVIEW: " + configuration.abstract, indent: 0, width: Self.width - 1))
        }
        if !configuration.discussion.isEmpty {
            sections.append(
                configuration.discussion.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { Self.wrap(String($0), indent: 0) }.joined(separator: "\n"))
        }
        let declarations = CommandTree.declarations(of: command.init()).filter { !$0.option.hidden }
        sections.append("USAGE: " + (configuration.usage ?? usage(declarations)))
        let arguments = declarations.filter { $0.option.names.isEmpty }
        if !arguments.isEmpty {
            sections.append("ARGUMENTS:\n" + arguments.map { entry("<\($0.option.valueName)>", $0.option) }.joined())
        }
        var options = declarations.filter { !$0.option.names.isEmpty }.map { entry(label($0), $0.option) }
        options.append(entry("--version", OptionParser.Option(help: "Show the version.")))
        options.append(entry("-h, --help", OptionParser.Option(help: "Show help information.")))
        sections.append("OPTIONS:\n" + options.joined())
        if !configuration.subcommands.isEmpty {
            sections.append("SUBCOMMANDS:\n" + subcommandEntries())
            let inner = path.dropFirst().map { $0.commandName }
            sections.append("  See '\(([program, "help"] + inner).joined(separator: " ")) <subcommand>' for detailed help.")
        }
        // A command with subcommands ends at its last line, the others with a blank line, as before.
        let end = configuration.subcommands.isEmpty ? "\n\n" : "\n"
        return sections.map { $0.hasSuffix("\n") ? String($0.dropLast()) : $0 }.joined(separator: "\n\n") + end
    }

    func subcommandEntries() -> String {
        let configuration = command.configuration
        return configuration.subcommands.map { sub in
            var name = sub.commandName
            if let fallback = configuration.defaultSubcommand, ObjectIdentifier(fallback) == ObjectIdentifier(sub) { name += " (default)" }
            return entry(name, OptionParser.Option(help: sub.configuration.abstract))
        }.joined()
    }

    /// `--name <value>` or `-h, --help`.
    func label(_ declaration: Declaration) -> String {
        let names = declaration.option.names.joined(separator: ", ")
        return declaration.kind == .flag ? names : names + " <\(declaration.option.valueName)>"
    }

    /// One option's or argument's lines: its label, then its help from column 26 (on the next
    /// line when the label reaches it), with its values and default.
    func entry(_ label: String, _ option: OptionParser.Option) -> String {
        var help = option.help
        var notes: [String] = []
        if !option.values.isEmpty { notes.append("values: " + option.values.joined(separator: ", ")) }
        if let value = option.defaultText, !value.isEmpty { notes.append("default: " + value) }
        if !notes.isEmpty { help += (help.isEmpty ? "" : " ") + "(\(notes.joined(separator: "; ")))" }
        let start = "  " + label
        let text = Self.wrap(help, indent: Self.column)
        let more = option.discussion.isEmpty ? "" : Self.wrap(option.discussion, indent: 8) + "\n"
        if start.count < Self.column - 1 {
            return start + String(repeating: " ", count: Self.column - start.count) + text.dropFirst(Self.column) + "\n"
                + more
        }
        return start + "\n" + text + "\n" + more
    }

    /// The usage made from the declarations, in their order; the optional options said as
    /// `[options]` when listing them would pass 100 columns.
    func usage(_ declarations: [Declaration]) -> String {
        if !command.configuration.subcommands.isEmpty { return words + " <subcommand>" }
        var all = [words]
        var short = [words]
        for declaration in declarations {
            switch declaration.kind {
            case .argument(let optional, let repeating):
                let name = "<\(declaration.option.valueName)>" + (repeating ? " ..." : "")
                all.append(optional ? "[\(name)]" : name)
                short.append(all.last!)
            case .flag, .option:
                let text = label(declaration) + (declaration.repeating ? " ..." : "")
                all.append(declaration.required ? text : "[\(text)]")
                if declaration.required { short.append(text) }
            }
        }
        let line = all.joined(separator: " ")
        return line.count <= 100 - "USAGE: ".count ? line : (short + ["[options]"]).joined(separator: " ")
    }

    /// `text` in lines of at most 80 columns, each indented by `indent` spaces; a line that
    /// goes on leaves room for a space (79 columns), as swift-argument-parser's did.
    static func wrap(_ text: String, indent: Int, width: Int = width) -> String {
        let pad = String(repeating: " ", count: indent)
        var lines: [String] = []
        var line = pad
        let words = text.split(separator: " ")
        for (index, word) in words.enumerated() {
            let room = index == words.count - 1 ? width : width - 1
            if line.count > indent, line.count + 1 + word.count > room {
                lines.append(line)
                line = pad
            }
            line += (line.count > indent ? " " : "") + word
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }
}
