import KeysatCommandLine
import KeysatCore

/// Completion scripts for bash, zsh and fish, made from the command tree: each command's
/// subcommands and options, file and folder names for path options, an option's own words
/// (`--signature hmac|ed25519`). Made from the table the program parses with, they cannot drift.
struct CommandCompletion {
    let root: any ParsableCommand.Type

    /// One command of the tree: its words after the program's name, subcommands and options.
    struct Node {
        var words: [String]
        var subcommands: [(String, String)]
        var options: [Declaration]

        var key: String { "/" + words.joined(separator: "/") }
        var names: [String] { options.flatMap(\.option.names) + ["--help", "-h", "--version"] }
        func takingValue(_ completion: OptionParser.Option.Completion) -> [String] {
            options.filter { $0.kind == .option && $0.option.completion == completion }.flatMap(\.option.names)
        }
    }

    var program: String { root.commandName }
    var function: String { "_" + String(program.map { $0 == "-" ? "_" : $0 }) }

    func nodes() -> [Node] {
        var result: [Node] = []
        var pending: [([String], any ParsableCommand.Type)] = [([], root)]
        while !pending.isEmpty {
            let (words, command) = pending.removeFirst()
            let subcommands = command.configuration.subcommands
            let options = CommandTree.declarations(of: command.init()).filter {
                !$0.option.hidden && !$0.option.names.isEmpty
            }
            result.append(
                Node(
                    words: words, subcommands: subcommands.map { ($0.commandName, $0.configuration.abstract) },
                    options: options))
            pending += subcommands.map { (words + [$0.commandName], $0) }
        }
        return result
    }

    func script(shell: String) throws -> String {
        switch shell {
        case "bash": return bash()
        case "zsh": return zsh()
        case "fish": return fish()
        default: throw KeysatError(.usage, "completion scripts are made for bash, zsh and fish, not '\(shell)'")
        }
    }

    /// The shell `case` arms that set `words` (options or subcommands to offer) and complete an
    /// option's value, per command; bash and zsh share them, each with its own completer.
    func cases(files: String, folders: String, list: (String) -> String, none: String) -> String {
        var text = ""
        for node in nodes() {
            var arms = ""
            let fileNames = node.takingValue(.file)
            if !fileNames.isEmpty { arms += "                \(fileNames.joined(separator: "|"))) \(files); return ;;\n" }
            let folderNames = node.takingValue(.directory)
            if !folderNames.isEmpty {
                arms += "                \(folderNames.joined(separator: "|"))) \(folders); return ;;\n"
            }
            for declaration in node.options where declaration.kind == .option {
                if case .words(let words) = declaration.option.completion {
                    arms += "                \(declaration.option.names.joined(separator: "|"))) "
                        + "\(list(words.joined(separator: " "))); return ;;\n"
                }
            }
            let plain = node.takingValue(.none)
            if !plain.isEmpty { arms += "                \(plain.joined(separator: "|"))) \(none); return ;;\n" }
            text += "        \(node.key))\n"
            if !arms.isEmpty { text += "            case $prev in\n" + arms + "            esac\n" }
            text += "            options=\"\(node.names.joined(separator: " "))\"\n"
            text += "            subcommands=\"\(node.subcommands.map(\.0).joined(separator: " "))\" ;;\n"
        }
        return text
    }

    /// The loop that finds the command the words so far name.
    var commandKeys: String { nodes().dropFirst().map(\.key).joined(separator: "|") }

    func bash() -> String {
        """
        # bash completion for \(program), made from the command tree it parses with
        # (\(program) --generate-completion-script bash): it cannot drift from the program.
        \(function)() {
            local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
            local command="" options="" subcommands="" i
            for ((i = 1; i < COMP_CWORD; i++)); do
                case "$command/${COMP_WORDS[i]}" in
                    \(commandKeys)) command="$command/${COMP_WORDS[i]}" ;;
                esac
            done
            case "${command:-/}" in
        \(cases(files: "COMPREPLY=($(compgen -f -- \"$cur\"))", folders: "COMPREPLY=($(compgen -d -- \"$cur\"))",
                list: { "COMPREPLY=($(compgen -W \"\($0)\" -- \"$cur\"))" }, none: "COMPREPLY=()"))    esac
            if [[ $cur == -* || -z $subcommands ]]; then
                COMPREPLY=($(compgen -W "$options" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
            fi
        }
        complete -F \(function) \(program)

        """
    }

    func zsh() -> String {
        """
        #compdef \(program)
        # zsh completion for \(program), made from the command tree it parses with
        # (\(program) --generate-completion-script zsh): it cannot drift from the program.
        \(function)() {
            local cur=${words[CURRENT]} prev=${words[CURRENT-1]}
            local command="" options="" subcommands="" i
            for ((i = 2; i < CURRENT; i++)); do
                case "$command/${words[i]}" in
                    \(commandKeys)) command="$command/${words[i]}" ;;
                esac
            done
            case "${command:-/}" in
        \(cases(files: "_files", folders: "_files -/", list: { "compadd -- \($0)" }, none: "_message value"))    esac
            if [[ $cur == -* || -z $subcommands ]]; then
                compadd -- ${=options}
            else
                compadd -- ${=subcommands}
            fi
        }
        \(function) "$@"

        """
    }

    func fish() -> String {
        let all = nodes()
        var text = """
            # fish completion for \(program), made from the command tree it parses with
            # (\(program) --generate-completion-script fish): it cannot drift from the program.
            function \(function)_is
                set -l command
                for word in (commandline -opc)[2..-1]
                    if contains -- (string join -- / $command $word) \(all.dropFirst().map { $0.words.joined(separator: "/") }.joined(separator: " "))
                        set -a command $word
                    end
                end
                # Quoted variables: an empty list (the top level) is one empty word, where a
                # bare command substitution would be none and leave `test` an operand short.
                set -l have (string join -- / $command)
                set -l want (string join -- / $argv)
                test "$have" = "$want"
            end
            complete -c \(program) -f

            """
        for node in all {
            let condition = "-n '\(function)_is \(node.words.joined(separator: " "))'"
            for (name, abstract) in node.subcommands {
                text += "complete -c \(program) \(condition) -a \(name) -d \(fishQuote(abstract))\n"
            }
            for declaration in node.options {
                let option = declaration.option
                var line = "complete -c \(program) \(condition) -l \(option.names.last!.dropFirst(2))"
                if declaration.kind == .option {
                    switch option.completion {
                    case .file: line += " -r -F"
                    // -x: a value, and no file names (which -r alone would offer again).
                    case .directory: line += " -x -a '(__fish_complete_directories)'"
                    case .words(let words): line += " -x -a \(fishQuote(words.joined(separator: " ")))"
                    case .none: line += " -x"
                    }
                }
                text += line + " -d \(fishQuote(option.help))\n"
            }
            text += "complete -c \(program) \(condition) -s h -l help -d 'Show help information.'\n"
            text += "complete -c \(program) \(condition) -l version -d 'Show the version.'\n"
        }
        return text
    }

    func fishQuote(_ text: String) -> String {
        "'" + text.replacing("\\", with: "\\\\").replacing("'", with: "\\'") + "'"
    }
}

