internal import CCurl
internal import CCurlShim
import KeysatCore
internal import KeysatStore

/// A libcurl failure: the call, curl's code and its message.
struct CurlFailure: Error, CustomStringConvertible {
    var call: String
    var message: String
    /// The CURLcode or CURLMcode returned (0 when the call returns a null pointer instead).
    var code: Int32 = 0
    var description: String { "libcurl \(call) failed: \(message)" }

    var keysatError: KeysatError { KeysatError(.internal, description, cause: code == 0 ? nil : .curl(code)) }
}

/// One easy handle, its header list and error buffer, owned together and freed in `deinit`.
///
/// Not `Sendable`: curl handles belong to the thread that drives them.
final class EasyHandle {
    let raw: UnsafeMutableRawPointer
    private var headers: UnsafeMutablePointer<curl_slist>?
    let errorBuffer: UnsafeMutablePointer<CChar>

    init() throws {
        guard let raw = keysat_curl_easy_init() else {
            throw CurlFailure(call: "curl_easy_init", message: "out of memory")
        }
        self.raw = raw
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        keysat_curl_easy_cleanup(raw)
        keysat_curl_slist_free_all(headers)
        errorBuffer.deallocate()
    }

    // MARK: - Typed setters (each checks curl's answer)

    func set(_ option: CURLoption, _ value: Int) throws {
        try check(keysat_easy_setopt_long(raw, option, value), "setopt \(option.rawValue)")
    }

    func set(_ option: CURLoption, _ value: String) throws {
        try check(keysat_easy_setopt_string(raw, option, value), "setopt \(option.rawValue)")
    }

    func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) throws {
        try check(keysat_easy_setopt_pointer(raw, option, pointer), "setopt \(option.rawValue)")
    }

    func set(_ option: CURLoption, callback: keysat_curl_data_callback) throws {
        try check(keysat_easy_setopt_callback(raw, option, callback), "setopt \(option.rawValue)")
    }

    func setOpenSocket(_ callback: keysat_curl_opensocket_callback) throws {
        try check(keysat_easy_setopt_opensocket(raw, callback), "setopt OPENSOCKETFUNCTION")
    }

    /// Sets the request headers; the list lives until the next call or the handle's end.
    func setHeaders(_ lines: [String]) throws {
        keysat_curl_slist_free_all(headers)
        headers = nil
        for line in lines {
            // withCString: a native string's own bytes, where passing the String itself made a
            // NUL-terminated copy of each line first (9 allocations per request).
            guard let appended = line.withCString({ keysat_curl_slist_append(headers, $0) }) else {
                throw CurlFailure(call: "curl_slist_append", message: "out of memory")
            }
            headers = appended
        }
        try check(keysat_easy_setopt_slist(raw, CURLOPT_HTTPHEADER, headers), "setopt HTTPHEADER")
    }

    /// The body, copied by curl (binary-safe: the size is set first).
    func setBody(_ body: [UInt8]) throws {
        try set(CURLOPT_POSTFIELDSIZE, body.count)
        try body.withUnsafeBytes { buffer in
            let pointer = buffer.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) }
            try check(
                keysat_easy_setopt_pointer(
                    raw, CURLOPT_COPYPOSTFIELDS, pointer ?? UnsafeMutableRawPointer(errorBuffer)),
                "setopt COPYPOSTFIELDS")
        }
    }

    /// A numeric fact about the last transfer; `nil` if curl has none (it cannot be for the
    /// options asked here, but the answer is checked rather than taken as 0).
    func info(_ info: CURLINFO) -> Int? {
        var value = 0
        return keysat_easy_getinfo_long(raw, info, &value) == CURLE_OK ? value : nil
    }

    /// curl's detailed message for the last failure, else the generic one for `code`.
    func errorMessage(_ code: CURLcode) -> String {
        let detail = String(cString: errorBuffer)
        return detail.isEmpty ? String(cString: keysat_curl_easy_strerror(code)) : detail
    }

    private func check(_ code: CURLcode, _ call: String) throws {
        guard code == CURLE_OK else {
            throw CurlFailure(
                call: call, message: String(cString: keysat_curl_easy_strerror(code)),
                code: Int32(code.rawValue))
        }
    }
}

/// The multi handle that drives all transfers of a run from one thread.
final class MultiHandle {
    let raw: UnsafeMutableRawPointer
    /// Easy handles attached now: removed before the multi handle is cleaned up, as libcurl
    /// requires (a handle left attached would be used after its multi handle is freed).
    private var attached: [UnsafeMutableRawPointer: EasyHandle] = [:]

    init() throws {
        guard let raw = keysat_curl_multi_init() else {
            throw CurlFailure(call: "curl_multi_init", message: "out of memory")
        }
        self.raw = raw
    }

    deinit {
        for easy in attached.keys { _ = keysat_curl_multi_remove_handle(raw, easy) }
        _ = keysat_curl_multi_cleanup(raw)
    }

    func set(_ option: CURLMoption, _ value: Int) throws {
        try check(keysat_multi_setopt_long(raw, option, value), "multi_setopt")
    }

    func add(_ easy: EasyHandle) throws {
        try check(keysat_curl_multi_add_handle(raw, easy.raw), "multi_add_handle")
        attached[easy.raw] = easy
    }

    func remove(_ easy: EasyHandle) throws {
        attached[easy.raw] = nil
        try check(keysat_curl_multi_remove_handle(raw, easy.raw), "multi_remove_handle")
    }

    /// Lets curl make progress; returns how many transfers are still running.
    func perform() throws -> Int {
        var running: Int32 = 0
        try check(keysat_curl_multi_perform(raw, &running), "multi_perform")
        return Int(running)
    }

    /// Waits up to `timeoutMS` for activity on any transfer (or a `wakeup`).
    func poll(timeoutMS: Int) throws {
        var ready: Int32 = 0
        try check(keysat_curl_multi_poll(raw, nil, 0, Int32(timeoutMS), &ready), "multi_poll")
    }

    /// Ends a `poll` under way on another thread (curl_multi_wakeup, safe from any thread).
    var wakeHandle: @Sendable () -> Void {
        let address = UInt(bitPattern: raw)
        return { _ = keysat_curl_multi_wakeup(UnsafeMutableRawPointer(bitPattern: address)) }
    }

    /// Finished transfers since the last call: the easy handle and its result code.
    func finished() -> [(UnsafeMutableRawPointer, CURLcode)] {
        var done: [(UnsafeMutableRawPointer, CURLcode)] = []
        var remaining: Int32 = 0
        while let message = keysat_curl_multi_info_read(raw, &remaining) {
            if message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle {
                done.append((easy, message.pointee.data.result))
            }
        }
        return done
    }

    private func check(_ code: CURLMcode, _ call: String) throws {
        guard code == CURLM_OK else {
            throw CurlFailure(
                call: call, message: String(cString: keysat_curl_multi_strerror(code)), code: code.rawValue)
        }
    }
}
