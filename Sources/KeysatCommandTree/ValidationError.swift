/// A usage error found by a command's `validate()`: exits 64 naming the command's help.
public struct ValidationError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
