/// What an endpoint's `event_types` entries mean: the one definition of which events an
/// endpoint subscribes to, used by every backend (SQLite's SQL says the same:
/// `WebhookStore.subscribes`) and by every command that checks a subscription.
///
/// An entry is one of:
/// - `*`: every event type outside the `webhook.` namespace (`OperationalEvent`);
/// - a name: that event type exactly;
/// - a pattern `PREFIX.*`: every event type that begins with `PREFIX.` and has at least one
///   character after it. A prefix match on whole dot-separated segments: `license.*` matches
///   `license.issued` and `license.a.b`, not `license` nor `licenses.x`. `webhook.*` and
///   `webhook.endpoint.*` are how an endpoint asks for the operational events.
public enum EventSubscription {
    /// `*` matches every event type not in this namespace: keysat-webhooks' own events go only
    /// to endpoints that name them or a pattern over them.
    public static let operationalPrefix = "webhook."

    /// Whether `entry` is a pattern (`PREFIX.*`) rather than a name or `*`.
    public static func isPattern(_ entry: String) -> Bool { entry != "*" && entry.hasSuffix(".*") }

    /// Checks an entry given to `endpoint add/update --event`.
    ///
    /// - Throws: `KeysatError` usage (64) for a `*` anywhere but alone or in a trailing `.*`
    ///   after a valid event-type prefix; data (65) for a name that is not a valid event type
    ///   (`EventType.validate`), as before patterns existed.
    public static func validate(_ entry: String) throws {
        if entry == "*" { return }
        guard entry.contains("*") else { return try EventType.validate(entry) }
        let refusal = KeysatError(
            .usage,
            "event pattern \(JSONText.string(entry)) is not one: '*' is allowed alone or as a trailing '.*' after an event-type prefix (e.g. 'license.*')"
        )
        guard entry.hasSuffix(".*") else { throw refusal }
        let prefix = String(entry.dropLast(2))
        guard !prefix.contains("*"), !prefix.hasSuffix("."), (try? EventType.validate(prefix)) != nil else {
            throw refusal
        }
    }

    /// Whether the entry `entry` subscribes to `eventType`.
    public static func matches(_ entry: String, _ eventType: String) -> Bool {
        if entry == eventType { return true }
        if entry == "*" { return !eventType.hasPrefix(operationalPrefix) }
        guard isPattern(entry) else { return false }
        let prefix = entry.utf8.dropLast()  // "license." of "license.*"
        return eventType.utf8.count > prefix.count && eventType.utf8.starts(with: prefix)
    }

    /// Whether any of `entries` (an endpoint's `event_types`) subscribes to `eventType`.
    public static func matches(_ entries: [String], _ eventType: String) -> Bool {
        entries.contains { matches($0, eventType) }
    }
}
