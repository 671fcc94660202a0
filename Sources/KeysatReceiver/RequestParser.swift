import KeysatCore
import KeysatDelivery

/// Reads one HTTP/1.1 request at a time from a connection's bytes, and refuses any whose head
/// two parsers could read differently (issue 20: a bare LF in a value, a space before the
/// colon, or a second `Content-Length` made the application behind `listen --forward-to` see a
/// request `listen` never saw).
///
/// The head's end is searched for once per byte, from where the last search stopped (a rescan
/// from the start after every read cost 1.6 s of CPU for one 16 MB header), and the head is
/// parsed once, however many reads its body takes.
struct RequestParser {
    /// Longer heads are answered 431: curl's are under 2 KiB, and the bound is per connection.
    static let maximumHeadBytes = 65_536
    static let maximumBodyBytes = 16 << 20

    enum Parsed {
        case incomplete
        /// Answer with this status, then close: the rest of the stream cannot be trusted.
        case refused(status: Int)
        case request(Listener.Request, keepAlive: Bool)
    }

    /// Bytes before this offset hold no complete head terminator.
    private var searched = 0
    /// The head of the request being read, once parsed, and its body's length.
    private var head: (request: Listener.Request, bodyStart: Int, length: Int, keepAlive: Bool)?

    /// The bytes `buffer` must reach for the request being read (`nil` until its head is known).
    var expectedBytes: Int? { head.map { $0.bodyStart + $0.length } }

    /// The next request at the start of `buffer`, taken out of it.
    mutating func parse(_ buffer: inout [UInt8]) -> Parsed {
        if head == nil {
            guard let end = headEnd(buffer) else {
                return buffer.count > RequestParser.maximumHeadBytes ? .refused(status: 431) : .incomplete
            }
            if end > RequestParser.maximumHeadBytes { return .refused(status: 431) }
            switch RequestParser.head(buffer[0..<end]) {
            case .failure(let refusal): return .refused(status: refusal.status)
            case .success(let parsed): head = (parsed.0, end + 4, parsed.1, parsed.2)
            }
        }
        guard let (request, bodyStart, length, keepAlive) = head, buffer.count >= bodyStart + length else {
            return .incomplete
        }
        var complete = request
        complete.body = RequestParser.take(&buffer, from: bodyStart, to: bodyStart + length)
        head = nil
        searched = 0
        return .request(complete, keepAlive: keepAlive)
    }

    /// `buffer[start..<end]`, with `buffer` left holding what followed: the body keeps the
    /// buffer's storage rather than being copied beside it (a 16 MiB body held twice took the
    /// peak past the bound). What follows is at most one read's bytes, since requests are
    /// parsed after every read.
    private static func take(_ buffer: inout [UInt8], from start: Int, to end: Int) -> [UInt8] {
        var body: [UInt8] = []
        swap(&body, &buffer)
        buffer = Array(body[end...])
        body.removeLast(body.count - end)
        body.removeFirst(start)
        return body
    }

    private mutating func headEnd(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        var index = max(0, searched - 3)
        let last = buffer.count - 4
        while index <= last {
            if buffer[index + 3] == 10 && buffer[index] == 13 && buffer[index + 1] == 10
                && buffer[index + 2] == 13
            {
                return index
            }
            index += 1
        }
        searched = buffer.count
        return nil
    }

    struct Refusal: Error {
        var status = 400
    }

    /// The request line and header lines in `bytes` (CRLF-separated, without the blank line).
    private static func head(_ bytes: ArraySlice<UInt8>) -> Result<(Listener.Request, Int, Bool), Refusal> {
        let lines = split(bytes)
        guard let requestLine = lines.first, let (method, path, version) = parseRequestLine(requestLine)
        else { return .failure(Refusal()) }
        var headers: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let header = parseHeader(line) else { return .failure(Refusal()) }
            headers.append(header)
        }
        var request = Listener.Request(method: method, path: path, headers: headers, body: [])
        return bodyLength(request).map { length in
            let connection = request.header("Connection")?.lowercased()
            let keepAlive = version == "HTTP/1.1" ? connection != "close" : connection == "keep-alive"
            request.headers = headers
            return (request, length, keepAlive)
        }
    }

    private static func split(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            if bytes[index] == 13 && bytes[index + 1] == 10 {
                lines.append(bytes[start..<index])
                index += 2
                start = index
            } else {
                index += 1
            }
        }
        lines.append(bytes[start..<bytes.endIndex])
        return lines
    }

    /// `METHOD SP target SP HTTP/1.x`, each part free of control bytes and spaces.
    private static func parseRequestLine(_ line: ArraySlice<UInt8>) -> (String, String, String)? {
        let parts = line.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, HeaderLine.isToken(parts[0]), !parts[1].isEmpty,
            HeaderLine.isSafeValue(parts[1]),
            parts[2].elementsEqual("HTTP/1.1".utf8) || parts[2].elementsEqual("HTTP/1.0".utf8)
        else { return nil }
        return (
            String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self),
            String(decoding: parts[2], as: UTF8.self)
        )
    }

    /// `name: value` with a token name (no space before the colon, no folded line) and a value
    /// that passes the same check as a run's header lines; optional spaces around the value.
    private static func parseHeader(_ line: ArraySlice<UInt8>) -> (String, String)? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), HeaderLine.isToken(line[..<colon]) else {
            return nil
        }
        var value = line[(colon + 1)...]
        let space: (UInt8) -> Bool = { $0 == 32 || $0 == 9 }
        while let first = value.first, space(first) { value = value.dropFirst() }
        while let last = value.last, space(last) { value = value.dropLast() }
        guard HeaderLine.isSafeValue(value) else { return nil }
        return (String(decoding: line[..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    /// Headers a request may carry once at most: what frames it, and what its signatures cover
    /// or name. A second `webhook-id` after a signed one was passed on, so that an application
    /// taking the last value (or joining them) saw an id nobody signed (the adversarial pass).
    static let single: Set<String> = [
        "host", "content-length", "content-type", "webhook-id", "webhook-timestamp", "webhook-signature",
        "x-keysat-signature", "x-keysat-delivery", "x-keysat-event",
    ]

    /// The body's length: one `Content-Length` of digits at most (none: no body); any
    /// `Transfer-Encoding` is refused (chunked bodies are not read here), as is a second of any
    /// header in `single`.
    private static func bodyLength(_ request: Listener.Request) -> Result<Int, Refusal> {
        var lengths: [String] = []
        var seen: Set<String> = []
        for (name, value) in request.headers {
            let lowered = name.lowercased()
            if lowered == "transfer-encoding" { return .failure(Refusal()) }
            if lowered == "content-length" { lengths.append(value) }
            if single.contains(lowered) && !seen.insert(lowered).inserted { return .failure(Refusal()) }
        }
        // The sender's number: only digits, never an overflow or a negative range.
        let text = lengths.first ?? "0"
        guard text.utf8.count <= 9, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let length = Int(text)
        else { return .failure(Refusal()) }
        return length > maximumBodyBytes ? .failure(Refusal(status: 413)) : .success(length)
    }
}
