import KeysatCommandTree
import KeysatCore
import KeysatStore

/// `--order-by` and `--order-on-dead`, of `endpoint add` and `endpoint update` (issue 23).
struct OrderingOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Order deliveries per value of this field of the event's data (dotted for nested objects, e.g. license_id or license.id): one at a time per value, oldest first.",
            valueName: "path"))
    var orderBy: String?

    @Option(
        help: ArgumentHelp(
            "When a key's oldest delivery is dead-lettered: move-on (the default: the next one goes, the number shows the gap) or hold (the key waits until it is retried or dropped).",
            valueName: "mode"))
    var orderOnDead: String?

    var isEmpty: Bool { orderBy == nil && orderOnDead == nil }

    /// The change asked for, checked (64 for a path or mode that is not one).
    func change(into change: inout EndpointSettings.Change) throws {
        if let orderBy { change.orderBy = .some(try OrderByPath(parsing: orderBy)) }
        switch orderOnDead {
        case nil: break
        case "hold": change.holdOnDead = true
        case "move-on": change.holdOnDead = false
        case let other?:
            throw KeysatError(.usage, "'--order-on-dead' must be move-on or hold, not '\(other)'")
        }
    }
}

/// What `endpoint show` says of an endpoint's ordering keys.
func orderByLine(_ settings: EndpointSettings) -> String {
    guard let path = settings.orderBy else { return "- (keys only from keysat-enqueue --ordering-key)" }
    return "data.\(path) (one at a time per value, oldest first)"
}

/// What `endpoint show` says of a key whose oldest delivery is dead.
func orderOnDeadLine(_ settings: EndpointSettings) -> String {
    settings.holdOnDead ? "hold (the key waits for a retry or a drop)" : "move-on"
}

/// What `endpoint show` says of its held ordering keys.
func heldKeysLine(_ backlog: KeyBacklog?) -> String {
    guard let backlog, backlog.heldKeys > 0 else { return "0" }
    return "\(backlog.heldKeys) (behind a failing or dead delivery; oldest waiting since \(backlog.oldestWaiting ?? "?"))"
}
