import KeysatCommandLine
import KeysatCore

// The declarations of keysat-webhooks' options, as properties of its commands: `@Option`,
// `@Flag`, `@Argument` and `@OptionGroup`, spelled as swift-argument-parser spells them, so that
// an option declared for that library ports by changing the import (issue 24). Each property
// keeps its value in a box; `CommandTree` finds the boxes by reflection (`Mirror`, in the
// standard library), makes the `OptionParser` table from them and fills them from its result.

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
