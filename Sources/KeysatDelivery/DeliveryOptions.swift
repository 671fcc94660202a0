import KeysatCore
import KeysatStore

/// How a run behaves; the defaults are keysat-deliver's.
public struct DeliveryOptions: Sendable {
    /// Requests in flight at once.
    public var concurrency = 16
    /// Requests in flight to one endpoint at once (ordered endpoints: always 1).
    public var perEndpoint = 4
    /// Consecutive transport failures or timeouts after which a run stops trying an endpoint.
    public var breaker = 3
    /// Whole-attempt timeout.
    public var timeoutSeconds = 10.0
    public var connectTimeoutSeconds = 5.0
    /// Attempt at most this many deliveries in this run.
    public var limit: Int?
    /// Stop starting attempts after this many seconds (in-flight ones finish).
    public var maxRuntimeSeconds: Double?
    /// Due rows read per query.
    public var pageSize = 256
    /// Due rows held in memory at most, waiting for a free slot.
    public var bufferLimit = 2048
    /// Outcomes are committed in batches of this many, or at least once a second.
    public var flushBatch = 5000
    /// Outcomes are committed at least this often while a run is busy (a group commit; in WAL
    /// mode without a sync it costs tens of microseconds), so that a run killed at any moment
    /// re-sends at most what was in flight and this window, and one killed again and again still
    /// records its work.
    public var commitIntervalMS: Int64 = 50
    /// No new request starts while the payloads in flight add up to this many bytes (one always
    /// may): with `DueDelivery.payloadDeferred`, the bound on a run's memory.
    public var inFlightByteBudget = 16 << 20
    /// Which destination addresses may be connected to.
    public var policy = NetworkPolicy()
    /// A CA bundle to trust for TLS instead of the system's.
    public var caFile: String?
    /// Refuse plain http.
    public var httpsOnly = false
    /// Disable an endpoint whose attempts have all failed for longer than this (0: never).
    public var disableAfterSeconds: Int64 = 5 * 86_400
    /// Probe an endpoint disabled for failing this often, by sending its newest dead delivery
    /// again (0: never).
    public var probeEverySeconds: Int64 = 3_600

    public init() {}
}
