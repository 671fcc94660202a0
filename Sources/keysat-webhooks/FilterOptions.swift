import KeysatCommandTree
import KeysatCore

/// `--filter`, of `endpoint add` and `endpoint update` (issue 23).
struct FilterOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Only events whose envelope matches this JSON filter, e.g. '{\"data\":{\"plan\":\"pro\"}}' (keysat-webhooks(7), Filters).",
            valueName: "json"))
    var filter: String?

    /// The filter given, checked (65, naming the offending part, for one that is not) and as
    /// it is stored: compact text; `.some(nil)` for `{}`, which takes every event, as no
    /// filter does. `nil` when none was given.
    func read() throws -> String?? {
        guard let filter else { return nil }
        let compiled = try EventFilter(filter)
        return .some(compiled.text == "{}" ? nil : compiled.text)
    }
}

/// `endpoint show`'s filter line.
func filterLine(_ settings: EndpointSettings) -> String {
    guard let text = settings.filter else { return "- (every event it subscribes to)" }
    guard let problem = filterProblem(settings) else { return text }
    return "\(JSONText.string(text)): \(problem)"
}

/// What is wrong with a stored filter another program wrote, and what happens meanwhile;
/// `nil` for none or a filter this program reads.
func filterProblem(_ settings: EndpointSettings) -> String? {
    guard let text = settings.filter else { return nil }
    do {
        _ = try EventFilter(text)
        return nil
    } catch {
        return "unreadable (\(KeysatError.from(error).message)); its deliveries are written and held, not sent, "
            + "until 'endpoint update --filter JSON' or '--no-filter'"
    }
}

/// `endpoint show --json`'s members for the filter: the filter as a JSON value (`null` for
/// none or one this program cannot read) and what is wrong with it.
func filterJSON(_ settings: EndpointSettings) -> [(String, String)] {
    let problem = filterProblem(settings)
    return [("filter", problem == nil ? settings.filter ?? "null" : "null"), ("filter_problem", JSONText.string(problem))]
}
