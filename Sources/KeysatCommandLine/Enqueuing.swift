public import KeysatCore
public import KeysatStore
import KeysatBackends

/// keysat-enqueue's work: read and check the event, write its deliveries, say what was written.
public struct EnqueueRequest: Sendable {
    /// Where the event's data comes from.
    public enum DataSource: Sendable, Equatable {
        /// Given as the command-line argument.
        case argument(String)
        /// Read from standard input (no argument, or `-`).
        case standardInput
        /// Read from `--data-file PATH`.
        case file(String)
    }

    public var databasePath: String
    public var busyTimeoutMS: Int = 5000
    public var eventType: String
    public var data: DataSource
    public var maxPayloadBytes: Int = 1_048_576
    public var idempotencyKey: String?
    /// `--ordering-key`: the deliveries' ordering key (`OrderingKey`).
    public var orderingKey: String?
    public var json = false
    /// Refuse (65) an event type that is not known (`WebhookBackend.isKnownEventType`), rather
    /// than warn about it.
    public var strict = false
    /// After the commit, tell keysat-deliver (see `Kick`). On PostgreSQL the enqueue notifies
    /// lingering runs itself, so `.file` adds nothing there and `.spawn` only starts a run.
    public var kick: Kick.Mode?
    /// The trigger file (default: the database path plus `.kick`); refused on PostgreSQL.
    public var kickPath: String?

    public init(databasePath: String, eventType: String, data: DataSource) {
        self.databasePath = databasePath
        self.eventType = eventType
        self.data = data
    }

    /// Validates everything, then enqueues.
    ///
    /// - Returns: the text to print on standard output (possibly empty).
    /// - Throws: `KeysatError`; nothing is written when it throws.
    public func run(
        clock: any TimeSource = SystemClock(),
        using generator: inout some RandomNumberGenerator
    ) throws -> String {
        if kickPath != nil { try Backends.refuse(.kickFile, at: databasePath) }
        try EventType.validate(eventType)
        if OperationalEvent.isOperational(eventType) {
            // Endpoints that subscribe to webhook.* trust these to come from keysat-deliver.
            throw KeysatError(
                .data,
                "event type \(eventType) is in keysat-webhooks' own namespace (webhook.*), which keysat-deliver's events about itself use: give the service's event another name")
        }
        if let key = idempotencyKey {
            if key.isEmpty || key.utf8.count > 255
                || key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
            {
                throw KeysatError(
                    .data, "idempotency key must be 1 to 255 characters without control characters")
            }
        }
        if let orderingKey { try OrderingKey.validate(orderingKey) }
        let bytes = try readData()
        do {
            try JSONValidator.validate(bytes)
        } catch {
            throw KeysatError(.data, "event data is not valid JSON: \(error)")
        }
        let store = try Backends.open(databasePath, busyTimeoutMS: busyTimeoutMS, clock: clock)
        // Exit 0 means the event is on disk.
        try store.requireDurableCommits()
        // Said after the commit: an enqueue that fails says only why.
        let warning = try judgeEventType(in: store)
        let result = try store.enqueue(
            eventType: eventType, data: bytes, idempotencyKey: idempotencyKey, orderingKey: orderingKey,
            using: &generator)
        if let warning { Output.error(warning) }
        guard let kick, !result.deliveries.isEmpty else { return format(result) }
        if !store.capabilities.kickFile {
            // PostgreSQL: the enqueue's NOTIFY has woken every lingering run, on any host.
            if kick == .spawn {
                Kick.spawnDeliver(postgres: databasePath, executable: Kick.deliverExecutable())
            }
            return format(result)
        }
        // After the commit; a failure here loses nothing (the timer is the safety net).
        let path = kickPath ?? Kick.defaultPath(database: databasePath)
        do {
            try Kick.touch(path, sharing: OwnedFile.Sharing(database: databasePath))
        } catch {
            Output.error(
                "keysat-enqueue: warning: \(KeysatError.from(error).message); the next timer run will send the event\n"
            )
        }
        if kick == .spawn {
            Kick.spawnDeliver(
                database: databasePath, lockPath: Kick.defaultLockPath(database: databasePath),
                executable: Kick.deliverExecutable())
        }
        return format(result)
    }

    /// The warning for an event type that is not known (`WebhookBackend.isKnownEventType`), or
    /// with `strict` the error; `nil` for a known type (no query for Keysat's own).
    private func judgeEventType(in store: any WebhookBackend) throws -> String? {
        guard try !store.isKnownEventType(eventType) else { return nil }
        let candidates = try store.knownEventTypes().map(\.name)
        let hint =
            OptionParser.closest(to: eventType, among: candidates).map { " (did you mean '\($0)'?)" } ?? ""
        let message =
            "event type '\(eventType)' is not one of Keysat's, not declared and subscribed to by no endpoint by name or pattern\(hint)"
        if strict {
            throw KeysatError(
                .data, message + "; declare it with 'keysat-webhooks event-types add \(eventType)'")
        }
        return
            "keysat-enqueue: warning: \(message); it goes to the endpoints that take every event (--strict refuses it)\n"
    }

    private func readData() throws -> [UInt8] {
        let bytes: [UInt8]?
        switch data {
        case .argument(let text):
            let utf8 = Array(text.utf8)
            bytes = utf8.count > maxPayloadBytes ? nil : utf8
        case .standardInput:
            bytes = try InputFile.read("-", limit: maxPayloadBytes, what: "event data")
        case .file(let path):
            bytes = try InputFile.read(path, limit: maxPayloadBytes, what: "data file")
        }
        guard let bytes else {
            throw KeysatError(
                .data,
                "event data is larger than \(maxPayloadBytes) bytes (raise --max-payload-bytes if that is intended)"
            )
        }
        return bytes
    }

    private func format(_ result: EnqueueResult) -> String {
        if json {
            let deliveries = result.deliveries.map {
                JSONText.object([
                    ("id", JSONText.string($0.id)), ("endpoint_id", JSONText.string($0.endpointID)),
                ])
            }
            return JSONText.object([
                ("event_type", JSONText.string(result.eventType)),
                ("deliveries", JSONText.array(deliveries)),
            ]) + "\n"
        }
        // Ids replayed for an idempotency key come from the database: one escaped id a line.
        return result.deliveries.map { TerminalText.escape($0.id) + "\n" }.joined()
    }
}
