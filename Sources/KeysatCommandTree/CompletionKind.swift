import KeysatCommandLine

/// How a shell completes a value.
public enum CompletionKind: Sendable {
    case file(extensions: [String] = [])
    case directory
    case list([String])

    var completion: OptionParser.Option.Completion {
        switch self {
        case .file: .file
        case .directory: .directory
        case .list(let words): .words(words)
        }
    }
}
