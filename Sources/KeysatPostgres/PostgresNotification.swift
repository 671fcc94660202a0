/// A notification (`NOTIFY`, `pg_notify`) received on a channel the session listens to.
public struct PostgresNotification: Sendable, Equatable {
    /// The channel it was sent on.
    public var channel: String
    /// Its payload ("" when none was given).
    public var payload: String
    /// The process ID of the server session that sent it.
    public var senderProcessID: Int32

    public init(channel: String, payload: String, senderProcessID: Int32) {
        self.channel = channel
        self.payload = payload
        self.senderProcessID = senderProcessID
    }
}
