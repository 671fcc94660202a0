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
