import KeysatCore
import KeysatDelivery
import KeysatReceiver

extension KeysatWebhooks.Listen {
    /// What the signature check said about one request.
    enum Verdict: Equatable {
        case unchecked, invalid
        case valid(ReceivedWebhook.Scheme)

        /// The same check as `keysat-webhooks verify`, with its default tolerance.
        init(
            _ delivery: Listener.Request, key: [UInt8]?, publicKey: Ed25519Key? = nil,
            accepting: ReceivedWebhook.Accepted
        ) {
            let received = ReceivedWebhook(
                headers: delivery.headers.map { (name: $0.0, value: $0.1) }, body: delivery.body)
            if let publicKey {
                let scheme = try? received.verify(publicKey: publicKey, now: SystemClock().now(), toleranceSeconds: 300)
                self = scheme.map { .valid($0) } ?? .invalid
                return
            }
            guard let key else {
                self = .unchecked
                return
            }
            let scheme = try? received.verify(
                key: key, accepting: accepting, now: SystemClock().now(), toleranceSeconds: 300)
            self = scheme.map { .valid($0) } ?? .invalid
        }

        /// As printed: `valid`, `valid(no-replay-protection)` for the Keysat scheme, `INVALID`.
        var word: String {
            switch self {
            case .unchecked: "unchecked"
            case .invalid: "INVALID"
            case .valid(let scheme): scheme.replayProtected ? "valid" : "valid(no-replay-protection)"
            }
        }

        var scheme: ReceivedWebhook.Scheme? {
            if case .valid(let scheme) = self { return scheme }
            return nil
        }
    }
}
