/// What both backends' SQL says about the recovery of an endpoint that was disabled (issue 22):
/// which dead deliveries come back when it is enabled again, by a probe or by hand.
public enum EndpointRecovery {
    /// `last_error` of a delivery dead-lettered without a request because its endpoint was
    /// deleted or disabled: Keysat's rule, kept so that Keysat's own tools read such rows as
    /// they always did.
    public static let disabledError = "endpoint deleted or disabled"

    /// SQL true for a dead delivery `d` of endpoint `endpoint` that a recovery re-queues: every
    /// one dead-lettered because the endpoint was disabled (never tried then, so never a
    /// duplicate, whatever its age), and, when `since` (the start of the outage: the failing
    /// streak that disabled it, or when it was disabled) is not NULL, every one created or
    /// attempted since then, dead-lettered by the outage's failures. `attemptedSince` is the
    /// backend's SQL for "`d` has an attempt started at or after `since`" (the attempt history
    /// is found differently on each).
    public static func requeued(_ d: String, endpoint: String, since: String, attemptedSince: String) -> String {
        """
        \(d).endpoint_id = \(endpoint) AND \(DeliveryRecord.State.dead.condition(d))
          AND (\(d).last_error = '\(disabledError)'
               OR (\(since) IS NOT NULL AND (\(d).created_at >= \(since) OR \(attemptedSince))))
        """
    }
}
