/// Ends the program with this status and no message: the verdict of `verify`, say.
public struct ExitCode: Error, Equatable {
    public var rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }
}
