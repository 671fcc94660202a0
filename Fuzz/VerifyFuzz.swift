// libFuzzer target for verifying a received webhook (what `listen` and `verify` do with a
// request from anyone): header lines, a blank line, then the body. It must never crash, whatever
// the header values (extreme timestamps, broken base64, huge signature lists), and a request it
// accepts must carry a signature that an independent recomputation with the same key matches.
// Built by Fuzz/run.sh, together with the library sources it tests.

private let secret = "0123456789abcdef0123456789abcdef"
private let loaded: Bool = (try? Signature.load()) != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVerify(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    precondition(loaded, "libcrypto could not be loaded")
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    var headers: [(name: String, value: String)] = []
    var index = 0
    while index < bytes.count {
        guard let end = bytes[index...].firstIndex(of: 0x0A) else { break }
        let line = String(decoding: bytes[index..<end], as: UTF8.self)
        index = end + 1
        if line.isEmpty { break }
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers.append(
            (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters()))
    }
    let body = Array(bytes[min(index, bytes.count)...])
    let received = ReceivedWebhook(headers: headers, body: body)
    let now = Timestamp(microseconds: 1_800_000_000_000_000)
    let key = Array(secret.utf8)
    for accepted in ReceivedWebhook.Accepted.allCases {
        for tolerance: Int64 in [0, 300, .max] {
            guard let scheme = try? received.verify(key: key, accepting: accepted, now: now, toleranceSeconds: tolerance)
            else { continue }
            switch scheme {
            case .standardWebhooks:
                precondition(accepted != .keysat, "the standard scheme accepted where only keysat was asked for")
                let timestamp = Int64(received.header("webhook-timestamp")!)!
                let expected = StandardWebhooks.signature(
                    key: key, id: received.header("webhook-id")!, timestamp: timestamp, body: body)
                precondition(
                    received.header("webhook-signature")!.split(separator: " ").contains {
                        String($0) == expected
                    },
                    "accepted a request whose signatures do not include the expected one")
            case .keysat:
                // Never without being asked: a stripped request has no replay protection.
                precondition(accepted != .standard, "the keysat scheme accepted by default")
            case .standardWebhooksEd25519:
                // Only with a public key, which an HMAC secret's verification never has.
                preconditionFailure("a v1a signature accepted by a verification with a secret")
            }
        }
    }
    return 0
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var text = Substring(self)
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}
