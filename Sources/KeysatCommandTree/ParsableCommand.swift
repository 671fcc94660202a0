import KeysatCommandLine
import KeysatCore

/// A set of options a command reads, declared as properties (`@Option`, `@Flag`, `@Argument`,
/// `@OptionGroup`) of a struct that `init()` makes with their defaults.
public protocol ParsableArguments: SendableMetatype {
    init()
    /// Refuses what the options cannot mean together: throw `ValidationError` (exits 64).
    func validate() throws
}

extension ParsableArguments {
    public func validate() throws {}
}

/// A command of keysat-webhooks' tree: what it is (`configuration`), its options, and `run()`.
/// A command with subcommands and nothing to run prints its help.
public protocol ParsableCommand: ParsableArguments {
    static var configuration: CommandConfiguration { get }
    func run() throws
}

extension ParsableCommand {
    public static var configuration: CommandConfiguration { CommandConfiguration() }
    public func run() throws {}

    /// Its word on the command line: the configuration's, else the type's name in kebab case.
    static var commandName: String { configuration.commandName ?? kebab(String(describing: self)) }
}

/// What a command is: its name, its help texts, its version and its subcommands.
public struct CommandConfiguration: Sendable {
    public var commandName: String?
    public var abstract: String
    /// The usage line after `USAGE:`, when the one made from the options would be too long.
    public var usage: String?
    public var discussion: String
    public var version: String
    public var subcommands: [any ParsableCommand.Type]
    /// Run when no subcommand word is given.
    public var defaultSubcommand: (any ParsableCommand.Type)?

    public init(
        commandName: String? = nil, abstract: String = "", usage: String? = nil, discussion: String = "",
        version: String = "", subcommands: [any ParsableCommand.Type] = [],
        defaultSubcommand: (any ParsableCommand.Type)? = nil
    ) {
        self.commandName = commandName
        self.abstract = abstract
        self.usage = usage
        self.discussion = discussion
        self.version = version
        self.subcommands = subcommands
        self.defaultSubcommand = defaultSubcommand
    }
}
