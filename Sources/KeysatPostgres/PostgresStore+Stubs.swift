public import KeysatCore
public import KeysatStore

// Parts of `WebhookBackend` not yet written for PostgreSQL: each refuses with a clear error
// (69) until its implementation replaces it here.

private func notYet(_ what: String) -> KeysatError {
    KeysatError(.unavailable, "\(what) is not available on PostgreSQL yet")
}

extension PostgresStore: DeliveryInspection {
    public func fullID(of kind: WebhookStore.Record, _ text: String) throws -> String { throw notYet("ids") }
    public func deliveries(_ filter: DeliveryFilter, limit: Int, payloads: Bool) throws -> [DeliveryRecord] {
        throw notYet("deliveries list")
    }
    public func delivery(id: String) throws -> DeliveryRecord { throw notYet("deliveries show") }
    public func attempts(deliveryID: String) throws -> [AttemptRecord] { throw notYet("deliveries show") }
    public func retry(ids: [String], force: Bool) throws -> Int { throw notYet("deliveries retry") }
    public func retryDead(_ filter: DeliveryFilter) throws -> Int { throw notYet("deliveries retry") }
    public func replayable(_ filter: DeliveryFilter) throws -> [String] { throw notYet("deliveries replay") }
    public func replay(_ filter: DeliveryFilter) throws -> Int { throw notYet("deliveries replay") }
    public func inactiveEndpoints(forDeliveries ids: [String]) throws -> Set<String> { throw notYet("deliveries") }
    public func writeTestDelivery(
        endpointID: String, eventType: String, data: [UInt8], sendingSeconds: Double,
        using generator: inout some RandomNumberGenerator
    ) throws -> String { throw notYet("endpoint test") }
    public func dueDelivery(id: String) throws -> DueDelivery? { throw notYet("endpoint test") }
}

extension PostgresStore: QueueMaintenance {
    public func purge(scope: WebhookStore.PurgeScope, before cutoff: Timestamp, dryRun: Bool, batch: Int) throws
        -> (deliveries: Int, attempts: Int)
    { throw notYet("purge") }
    public func queueCounts() throws -> WebhookStore.QueueCounts { throw notYet("stats") }
    public func endpointStats() throws -> [WebhookStore.EndpointStats] { throw notYet("stats") }
    public func metricsFailures() throws -> WebhookStore.MetricsFailures { throw notYet("metrics") }
    public func recordMetricsFailure(at now: Timestamp) throws { throw notYet("metrics") }
}

extension PostgresStore: WebhookBackend {}
