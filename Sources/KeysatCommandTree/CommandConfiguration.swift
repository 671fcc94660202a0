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
