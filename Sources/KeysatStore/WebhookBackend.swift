public import KeysatCore

/// Everything the three programs ask of the database that holds the queue, whichever engine
/// that is: the one interface the commands and the engine talk to (issue 21).
///
/// River's model (shared/STYLE.md): one driver interface with one method per operation the
/// programs need, a backend per database holding its own SQL, and the rules of delivery above
/// it (the run's parts, `OutcomePolicy`, `DeliveryRecord.State`'s meanings). SQLite's is
/// `WebhookStore`; opening goes through `Backends.open`, the one place that chooses. What a
/// backend cannot do is said by the backend (`capabilities`), not discovered by the caller.
public protocol WebhookBackend: DeliveryStore, BackendSetUp, EventQueue, EndpointCatalogue,
    DeliveryInspection, QueueMaintenance, QueueExport, QueueImport
{}

/// Opening, the schema, and the files behind the backend.
public protocol BackendSetUp: AnyObject {
    /// Where the queue is, as an operator names it in messages: a file path, or a PostgreSQL
    /// URI without its password.
    var location: String { get }
    /// Opened for reading only: a run that must record refuses to start on it.
    var isReadOnly: Bool { get }
    /// A newer schema's version, when this one was opened read-only on it; `nil` otherwise.
    var newerSchema: Int? { get }
    /// What this backend can and cannot do.
    var capabilities: BackendCapabilities { get }
    /// Opening found the Keysat licensing service's own tables and adopted them.
    var adoptedKeysatTables: Bool { get }
    /// The schema steps opening with `repairSchema` recorded as applied.
    var repairedSchemaSteps: [Int] { get }
    func schemaVersion() throws -> Int
    /// What is missing from a schema that says it is current, in one line, or `nil`.
    func schemaProblem() throws -> String?
    /// A warning about who else may read or write the database, or `nil`.
    func permissionWarning() -> String?
    /// Commits from now on are durable when they return (exit 0 from keysat-enqueue means the
    /// event survives a power loss).
    func requireDurableCommits() throws
    /// Makes deleted and overwritten content (old secrets, purged payloads) unreadable in the
    /// backend's files now; `false` when a reader of another process keeps it for the moment.
    func checkpointErasing() throws -> Bool
    /// How a run is told of events queued while it runs or lingers: the kick file (`kickFile`,
    /// default the database path plus `.kick`) on SQLite, NOTIFY on PostgreSQL.
    func wakeUps(kickFile: String?) throws -> any WakeUps
}

/// Events in: enqueueing, and the event types known.
public protocol EventQueue: AnyObject {
    /// Writes the event's deliveries; `orderingKey` (`--ordering-key`) is their ordering key,
    /// else an endpoint's `--order-by` derives one (`OrderingKey`), numbered per endpoint and key.
    func enqueue(
        eventType: String, data: [UInt8], idempotencyKey: String?, orderingKey: String?,
        using generator: inout some RandomNumberGenerator
    ) throws -> EnqueueResult
    /// Enqueues a sample of `eventType`, marked `"test":true`, to its subscribers or to
    /// `endpointID` alone (`keysat-webhooks trigger`).
    func enqueueSample(
        eventType: String, data: [UInt8], endpointID: String?,
        using generator: inout some RandomNumberGenerator
    ) throws -> EnqueueResult
    func knownEventTypes() throws -> [(name: String, source: WebhookStore.EventTypeSource)]
    func isKnownEventType(_ name: String) throws -> Bool
    func declareEventType(_ name: String) throws -> Bool
    func forgetEventType(_ name: String) throws -> Bool
}

/// The endpoints and their secrets.
public protocol EndpointCatalogue: AnyObject {
    func addEndpoint(
        url: String, secret: String, eventTypes: [String], description: String, ordered: Bool,
        settings: EndpointSettings, signing: EndpointSigning, using generator: inout some RandomNumberGenerator
    ) throws -> Endpoint
    func endpoints() throws -> [Endpoint]
    func endpoint(id: String) throws -> Endpoint
    func updateEndpoint(
        id: String, url: String?, eventTypes: [String]?, description: String?, ordered: Bool?,
        settings: EndpointSettings.Change
    ) throws -> Endpoint
    func setEndpointActive(id: String, _ active: Bool) throws -> Bool
    /// `endpoint enable`: enables it and resets its failing streak; with `requeue`, in the same
    /// transaction, first re-queues what its outage dead-lettered (`EndpointRecovery.requeued`).
    /// - Returns: whether it was disabled, and how many deliveries were re-queued.
    func enableEndpoint(id: String, requeue: Bool) throws -> (enabled: Bool, requeued: Int)
    func pendingDeliveryCount(endpointID: String) throws -> Int
    func removeEndpoint(id: String, force: Bool) throws -> Int
    /// Makes `secret` (and `signingKey`, when given) current, keeping the old ones signing for
    /// `graceSeconds`; without `signingKey`, the signing key stays and no previous one is kept.
    func rotateSecret(id: String, to secret: String, signingKey: String?, graceSeconds: Int64) throws -> Endpoint
    func previousSecretExpiry(id: String) throws -> String?
    /// Sets or removes the `v1a` signing key, or turns `X-Keysat-Signature` on or off.
    /// - Returns: the endpoint as it is now.
    func updateSigning(id: String, _ change: EndpointSigning.Change) throws -> Endpoint
}

/// The operator's view of deliveries: listing, showing, re-queueing, testing.
public protocol DeliveryInspection: AnyObject {
    /// The full id of an endpoint or a delivery given by a unique prefix.
    func fullID(of kind: WebhookStore.Record, _ text: String) throws -> String
    func deliveries(_ filter: DeliveryFilter, limit: Int, payloads: Bool) throws -> [DeliveryRecord]
    func delivery(id: String) throws -> DeliveryRecord
    func attempts(deliveryID: String) throws -> [AttemptRecord]
    func retry(ids: [String], force: Bool) throws -> Int
    /// Deletes dead deliveries (`deliveries drop`); refuses any other.
    func dropDead(ids: [String]) throws -> Int
    func replayable(_ filter: DeliveryFilter) throws -> [String]
    func replay(_ filter: DeliveryFilter) throws -> Int
    /// How many of the finished deliveries `filter` selects have an erased payload: what
    /// `replay` leaves out.
    func erasedCount(_ filter: DeliveryFilter) throws -> Int
    func inactiveEndpoints(forDeliveries ids: [String]) throws -> Set<String>
    func writeTestDelivery(
        endpointID: String, eventType: String, data: [UInt8], sendingSeconds: Double,
        using generator: inout some RandomNumberGenerator
    ) throws -> String
    /// One delivery as a run sends it (its endpoint's URL and secrets joined in).
    func dueDelivery(id: String) throws -> DueDelivery?
}

/// Purging and counting: what housekeeping and the metrics read.
public protocol QueueMaintenance: AnyObject {
    func purge(scope: WebhookStore.PurgeScope, before cutoff: Timestamp, dryRun: Bool, batch: Int) throws
        -> (deliveries: Int, attempts: Int)
    /// Replaces with `PayloadErasure`'s marker the payloads of finished deliveries older than
    /// `cutoff` (aged as `purge` ages them), keeping the rows; returns how many.
    func erasePayloads(before cutoff: Timestamp, dryRun: Bool) throws -> Int
    /// Replaces with the marker the payloads `match` selects, whatever their state; the
    /// pending ones are dead-lettered ("erased"). Returns how many, and how many were pending.
    func erase(_ match: PayloadErasure.Match, dryRun: Bool) throws -> (erased: Int, pending: Int)
    func queueCounts() throws -> WebhookStore.QueueCounts
    func endpointStats() throws -> [WebhookStore.EndpointStats]
    /// Held ordering keys per endpoint id (issue 23).
    func keyBacklog() throws -> [String: KeyBacklog]
    func metricsFailures() throws -> WebhookStore.MetricsFailures
    func recordMetricsFailure(at now: Timestamp) throws
}

/// What a backend can do that another cannot, said by the backend.
public struct BackendCapabilities: Sendable, Equatable {
    /// The database is a file whose folder and companions can be given to a group (`init --group`).
    public var sharedFiles: Bool
    /// A lock file keeps runs on this host from overlapping (`--lock-file`).
    public var lockFile: Bool
    /// `init --repair` can record schema steps and remake indexes.
    public var schemaRepair: Bool
    /// A kick file next to the database signals new events (`keysat-enqueue --kick`).
    public var kickFile: Bool

    public init(sharedFiles: Bool, lockFile: Bool, schemaRepair: Bool, kickFile: Bool) {
        self.sharedFiles = sharedFiles
        self.lockFile = lockFile
        self.schemaRepair = schemaRepair
        self.kickFile = kickFile
    }
}

extension EndpointCatalogue {
    public func addEndpoint(
        url: String, secret: String, eventTypes: [String], description: String, ordered: Bool = false,
        using generator: inout some RandomNumberGenerator
    ) throws -> Endpoint {
        try addEndpoint(
            url: url, secret: secret, eventTypes: eventTypes, description: description, ordered: ordered,
            settings: EndpointSettings(), signing: EndpointSigning(), using: &generator)
    }

    public func rotateSecret(id: String, to secret: String, graceSeconds: Int64) throws -> Endpoint {
        try rotateSecret(id: id, to: secret, signingKey: nil, graceSeconds: graceSeconds)
    }

    @discardableResult
    public func updateEndpoint(
        id: String, url: String?, eventTypes: [String]?, description: String?, ordered: Bool? = nil
    ) throws -> Endpoint {
        try updateEndpoint(
            id: id, url: url, eventTypes: eventTypes, description: description, ordered: ordered,
            settings: EndpointSettings.Change())
    }
}

extension QueueMaintenance {
    /// `purge` in batches of 1,000.
    public func purge(scope: WebhookStore.PurgeScope, before cutoff: Timestamp, dryRun: Bool) throws
        -> (deliveries: Int, attempts: Int)
    {
        try purge(scope: scope, before: cutoff, dryRun: dryRun, batch: 1000)
    }
}

extension DeliveryInspection {
    /// Re-queues every dead delivery matching `filter` (its state is forced to `dead`): a
    /// replay of the dead, on every backend.
    public func retryDead(_ filter: DeliveryFilter) throws -> Int {
        var scope = filter
        scope.state = .dead
        return try replay(scope)
    }

    /// Deliveries matching `filter`, newest first, with their payloads.
    public func deliveries(_ filter: DeliveryFilter, limit: Int) throws -> [DeliveryRecord] {
        try deliveries(filter, limit: limit, payloads: true)
    }
}

extension WebhookStore: WebhookBackend {
    public var location: String { database.path }
    public var isReadOnly: Bool { database.isReadOnly }
    public var capabilities: BackendCapabilities { Self.capabilities }
    /// Everything: files beside the database, a lock file, `init --repair`, a kick file.
    public static let capabilities = BackendCapabilities(
        sharedFiles: true, lockFile: true, schemaRepair: true, kickFile: true)

    public func requireDurableCommits() throws {
        // In WAL mode, synchronous=FULL syncs the WAL at commit (NORMAL syncs only at
        // checkpoints, so a power loss could take a commit back). Runs keep NORMAL: a lost
        // outcome is only a re-send.
        try database.execute("PRAGMA synchronous=FULL")
    }
}

extension EventQueue {
    /// An enqueue without an explicit ordering key (endpoints' `--order-by` still derive theirs).
    public func enqueue(
        eventType: String, data: [UInt8], idempotencyKey: String?,
        using generator: inout some RandomNumberGenerator
    ) throws -> EnqueueResult {
        try enqueue(
            eventType: eventType, data: data, idempotencyKey: idempotencyKey, orderingKey: nil, using: &generator)
    }
}
