/// The events keysat-deliver enqueues about itself, for an operator's alerting receiver. They
/// go only to endpoints that subscribe to them explicitly (by name or a pattern such as
/// `webhook.*`; `*` does not match them: `EventSubscription`), never to the endpoint an event
/// is about, with the envelope and rows of any other event. Their data never holds a secret,
/// a header value or a payload. man/keysat-webhooks.7 documents each field.
public enum OperationalEvent {
    /// An endpoint's failing streak passed half of `--disable-after`, or 90 % of it: once per
    /// level and streak.
    public static let endpointFailing = "webhook.endpoint.failing"
    /// A run disabled an endpoint (its failing streak reached `--disable-after`, or it answered
    /// 410 Gone).
    public static let endpointDisabled = "webhook.endpoint.disabled"
    /// A run enabled again an endpoint it had disabled for failing, after a probe (its newest
    /// dead delivery sent again) was answered 2xx, and re-queued what the outage dead-lettered.
    public static let endpointRecovered = "webhook.endpoint.recovered"
    /// A delivery was dead-lettered. Never sent about a delivery of an event in the `webhook.`
    /// namespace: a dead-lettered operational event announced by another would loop.
    public static let deliveryDead = "webhook.delivery.dead"

    /// Every name, for listings and completions.
    public static let names = [endpointFailing, endpointDisabled, endpointRecovered, deliveryDead]

    /// Whether `eventType` is in keysat-webhooks' own namespace (`webhook.`, which
    /// `endpoint test`'s `webhook.test` is in too).
    public static func isOperational(_ eventType: String) -> Bool {
        eventType.hasPrefix(EventSubscription.operationalPrefix)
    }

    /// The levels of a failing streak, in percent of `--disable-after`, at which
    /// `endpointFailing` is sent.
    public static let failingLevels = [50, 90]

    /// What the store keeps of the last level announced of an endpoint's failing streak:
    /// "SINCE PERCENT" (the streak's start, RFC 3339, and the level).
    public static func failingLevel(since: Timestamp, percent: Int) -> String {
        "\(since.rfc3339) \(percent)"
    }

    /// Whether `percent` of the streak begun at `since` is still to be announced, given what
    /// was announced last (`failingLevel`): yes for another streak, or a higher level of this
    /// one.
    public static func failingLevelPasses(_ said: String, since: Timestamp, percent: Int) -> Bool {
        let parts = said.split(separator: " ")
        guard parts.count == 2, parts[0] == since.rfc3339, let level = Int(parts[1]) else { return true }
        return percent > level
    }

    /// Says that an operational event could not be written (what caused it stands).
    public static func warnNotEnqueued(_ eventType: String, _ error: any Error) {
        let program =
            CommandLine.arguments.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 }
            ?? "keysat-deliver"
        Logger(program: program).log(
            .warn, "operational event not enqueued",
            ["event_type": eventType, "error": KeysatError.from(error).message])
    }

    /// The data of `endpointFailing`.
    public static func failingData(
        endpointID: String, failingSince: Timestamp, percent: Int, disableAfterSeconds: Int64
    ) -> [UInt8] {
        Array(
            JSONText.object([
                ("endpoint_id", JSONText.string(endpointID)),
                ("failing_since", JSONText.string(failingSince.rfc3339)),
                ("percent", String(percent)),
                ("disable_after_seconds", String(disableAfterSeconds)),
                ("disables_at", JSONText.string(failingSince.adding(seconds: disableAfterSeconds).rfc3339)),
            ]).utf8)
    }

    /// The data of `endpointDisabled`.
    public static func disabledData(endpointID: String, reason: String) -> [UInt8] {
        Array(
            JSONText.object([
                ("endpoint_id", JSONText.string(endpointID)), ("reason", JSONText.string(reason)),
            ])
            .utf8)
    }

    /// The data of `endpointRecovered`: why, and how many deliveries were re-queued.
    public static func recoveredData(endpointID: String, reason: String, requeued: Int) -> [UInt8] {
        Array(
            JSONText.object([
                ("endpoint_id", JSONText.string(endpointID)), ("reason", JSONText.string(reason)),
                ("requeued", String(requeued)),
            ])
            .utf8)
    }

    /// The data of `deliveryDead`: the delivery's row as it was dead-lettered.
    public static func deadData(
        endpointID: String, deliveryID: String, eventType: String, attempts: Int, lastStatus: Int?,
        lastError: String?
    ) -> [UInt8] {
        Array(
            JSONText.object([
                ("endpoint_id", JSONText.string(endpointID)), ("delivery_id", JSONText.string(deliveryID)),
                ("event_type", JSONText.string(eventType)), ("attempts", String(attempts)),
                ("last_status", JSONText.number(lastStatus)), ("last_error", JSONText.string(lastError)),
            ]).utf8)
    }
}
