import CCurl
import Foundation

/// One HTTP request. `unixSocket` routes it over an AF_UNIX socket (the URL's
/// host is then only used for the Host header).
public struct HTTPRequest: Sendable {
    public var url: String
    public var method: String
    public var headers: [String]
    public var body: Data?
    public var unixSocket: String?
    public var timeout: Double
    public var connectTimeout: Double
    /// The most body bytes a successful answer may have (DESIGN.md invariant
    /// 10): a larger one is aborted while it streams (or at once, from its
    /// Content-Length) and fails as a `TransportError` of kind `.tooLarge`.
    /// The default suits metadata calls (`/info`, health checks); embedding
    /// requests set what their inputs can legitimately produce.
    public var maxResponseBytes: Int
    /// The most header bytes an answer may have, all header blocks together.
    public var maxHeaderBytes: Int

    /// Metadata calls: 1 MiB of body is far more than any `/info` or health answer.
    public static let defaultMaxResponseBytes = 1 << 20
    /// Real servers send a few hundred bytes of headers; 64 KiB is generous.
    public static let defaultMaxHeaderBytes = 64 << 10
    /// An error answer (non-2xx) is only read for its message: this much of
    /// its body is kept, the rest is not read.
    public static let errorBodyPrefixBytes = 16 << 10

    public init(url: String, method: String = "GET", headers: [String] = [], body: Data? = nil,
                unixSocket: String? = nil, timeout: Double = 60, connectTimeout: Double = 10,
                maxResponseBytes: Int = HTTPRequest.defaultMaxResponseBytes,
                maxHeaderBytes: Int = HTTPRequest.defaultMaxHeaderBytes) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.unixSocket = unixSocket
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxResponseBytes = maxResponseBytes
        self.maxHeaderBytes = maxHeaderBytes
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// The body; for an error answer (non-2xx) at most
    /// `HTTPRequest.errorBodyPrefixBytes` of it (`truncated` then says so).
    public var body: Data
    /// The raw `Retry-After` header, when the server sent one.
    public var retryAfter: String?
    /// True when only a prefix of an error answer's body was read.
    public var truncated = false
}

/// A request that got no HTTP answer. `message` never contains headers, so no
/// API key can leak through it.
extension HTTPRequest {
    /// A URL as messages show it: no `user:password@` and no query string
    /// (where some APIs take a key), so no credential reaches a log, an error
    /// or a summary (endpoints may carry them).
    public static func redacted(_ url: String) -> String {
        var u = url
        if let q = u.firstIndex(where: { $0 == "?" || $0 == "#" }) { u = String(u[..<q]) }
        guard let scheme = u.range(of: "://") else { return u }
        let rest = u[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return u }
        return String(u[..<scheme.upperBound]) + "***@" + String(rest[rest.index(after: at)...])
    }
}

public struct TransportError: Error, Sendable, CustomStringConvertible {
    /// `tooLarge`: the answer outgrew `maxResponseBytes` or `maxHeaderBytes`
    /// and was cut off; a server failure, retried like the others.
    public enum Kind: Sendable { case connect, timeout, dropped, tooLarge, other }
    public var kind: Kind
    public var message: String
    public var description: String { message }
}

/// The process's HTTP engine: one libcurl multi handle driven by one dedicated
/// thread. Blocking C calls therefore never occupy Swift's cooperative pool
/// (two threads on a 2-core machine), and connections are kept alive and
/// reused across requests by the multi handle's connection cache.
public final class HTTPTransport: @unchecked Sendable {
    public static let shared = HTTPTransport()

    private let lock = NSLock()
    private var pending: [Transfer] = []
    private var cancelled: [Transfer] = []
    private let multi: UnsafeMutableRawPointer

    private init() {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        guard let m = curl_multi_init() else { fatalError("curl_multi_init failed") }
        multi = m
        _ = ccurl_multi_setopt_long(m, CURLMOPT_MAXCONNECTS, 64)
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = "reindex.http"
        thread.start()
    }

    /// Sends a request and waits for its answer; cancellation aborts the transfer.
    public func perform(_ request: HTTPRequest) async throws -> HTTPResponse {
        let transfer = try Transfer(request)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, Error>) in
                lock.lock()
                transfer.continuation = continuation
                pending.append(transfer)
                lock.unlock()
                curl_multi_wakeup(multi)
            }
        } onCancel: {
            lock.lock()
            cancelled.append(transfer)
            lock.unlock()
            curl_multi_wakeup(multi)
        }
    }

    private func loop() {
        var active: [UnsafeMutableRawPointer: Transfer] = [:]
        while true {
            lock.lock()
            let toAdd = pending
            pending.removeAll()
            let toCancel = cancelled
            cancelled.removeAll()
            lock.unlock()
            for t in toAdd {
                active[t.easy] = t
                curl_multi_add_handle(multi, t.easy)
            }
            for t in toCancel {
                let key = t.easy
                if active.removeValue(forKey: key) != nil {
                    curl_multi_remove_handle(multi, t.easy)
                    t.finish(.failure(CancellationError()))
                } else if !t.isFinished {
                    // Cancelled before it reached the loop: it is added above in a later round.
                    lock.lock(); cancelled.append(t); lock.unlock()
                }
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let msg = curl_multi_info_read(multi, &left) {
                guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
                let code = msg.pointee.data.result
                let key = easy
                guard let t = active.removeValue(forKey: key) else { continue }
                curl_multi_remove_handle(multi, easy)
                t.complete(code: code)
            }
            var numfds: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &numfds)
        }
    }
}

/// One in-flight transfer: owns the easy handle, its header list and the
/// response buffer; freed in deinit.
private final class Transfer: @unchecked Sendable {
    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        p.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        return p
    }()
    var body = Data()
    var retryAfter: String?
    var continuation: CheckedContinuation<HTTPResponse, Error>?
    private let finishLock = NSLock()
    private(set) var isFinished = false
    private let target: String
    /// Bounds of this answer (see `HTTPRequest.maxResponseBytes`).
    private let maxBody: Int
    private let maxHeaders: Int
    /// The status of the latest header block (a proxy's CONNECT answer comes first).
    private var status = 0
    private var headerBytes = 0
    /// Why the transfer was cut off by a callback, when it was.
    private var overflow: Overflow?
    /// An error answer whose body prefix is all that is needed.
    private var errorPrefixComplete = false

    enum Overflow {
        case declared(Int64)
        case body
        case headers
    }

    /// Called by the write callback: the bytes to take, or a short count that makes libcurl stop.
    func receive(_ ptr: UnsafeMutablePointer<CChar>, _ n: Int) -> Int {
        if !(200..<300).contains(status) && status != 0 {
            // An error answer: keep a prefix for the message, stop reading after it.
            let room = HTTPRequest.errorBodyPrefixBytes - body.count
            body.append(UnsafeRawPointer(ptr).assumingMemoryBound(to: UInt8.self), count: max(0, min(room, n)))
            guard n <= room else {
                errorPrefixComplete = true
                return 0
            }
            return n
        }
        guard body.count + n <= maxBody else {
            overflow = .body
            return 0
        }
        body.append(UnsafeRawPointer(ptr).assumingMemoryBound(to: UInt8.self), count: n)
        return n
    }

    /// Called by the header callback for each header line.
    func header(_ ptr: UnsafeMutablePointer<CChar>, _ n: Int) -> Int {
        headerBytes += n
        guard headerBytes <= maxHeaders else {
            overflow = .headers
            return 0
        }
        let line = String(decoding: UnsafeRawBufferPointer(start: ptr, count: n), as: UTF8.self)
        let lower = line.lowercased()
        if lower.hasPrefix("http/") {
            // A new header block (after a proxy's CONNECT, or a 1xx): its status rules.
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\r" || $0 == "\n" })
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            retryAfter = nil
        } else if lower.hasPrefix("retry-after:") {
            retryAfter = line.dropFirst(12).trimmingCharacters(in: .whitespacesAndNewlines)
        } else if lower.hasPrefix("content-length:"), (200..<300).contains(status),
                  let length = Int64(line.dropFirst(15).trimmingCharacters(in: .whitespacesAndNewlines)), length > maxBody {
            // Announced too large: stop before a byte of it is read.
            overflow = .declared(length)
            return 0
        }
        return n
    }

    init(_ request: HTTPRequest) throws {
        guard let easy = curl_easy_init() else { throw TransportError(kind: .other, message: "curl_easy_init failed") }
        self.easy = easy
        self.target = request.unixSocket.map { "unix:\($0)" } ?? HTTPRequest.redacted(request.url)
        self.maxBody = request.maxResponseBytes
        self.maxHeaders = request.maxHeaderBytes
        _ = ccurl_easy_setopt_string(easy, CURLOPT_URL, request.url)
        if let socket = request.unixSocket {
            _ = ccurl_easy_setopt_string(easy, CURLOPT_UNIX_SOCKET_PATH, socket)
        }
        _ = ccurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = ccurl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000))
        _ = ccurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout * 1000))
        _ = ccurl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        _ = ccurl_easy_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, "")
        _ = ccurl_easy_setopt_string(easy, CURLOPT_USERAGENT, "reindex/1")
        _ = ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        var list: UnsafeMutablePointer<curl_slist>? = nil
        // An empty Expect disables curl's 100-continue round trip on large bodies.
        for header in request.headers + ["Expect:"] {
            list = curl_slist_append(list, header)
        }
        headerList = list
        _ = ccurl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
        if request.method == "POST" {
            _ = ccurl_easy_setopt_long(easy, CURLOPT_POST, 1)
            let payload = request.body ?? Data()
            _ = ccurl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(payload.count))
            payload.withUnsafeBytes { raw in
                _ = ccurl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
        } else if request.method != "GET" {
            _ = ccurl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method)
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        // Both callbacks bound what is kept: returning less than `n` makes
        // libcurl abort the transfer (CURLE_WRITE_ERROR) while it streams.
        _ = ccurl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, { ptr, size, count, user in
            let t = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            guard let ptr, n > 0 else { return n }
            return t.receive(ptr, n)
        })
        _ = ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me)
        _ = ccurl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, { ptr, size, count, user in
            let t = Unmanaged<Transfer>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            guard let ptr, n > 0 else { return n }
            return t.header(ptr, n)
        })
        _ = ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me)
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    func complete(code: CURLcode) {
        if code == CURLE_OK || (code == CURLE_WRITE_ERROR && errorPrefixComplete && overflow == nil) {
            var status = 0
            _ = ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            finish(.success(HTTPResponse(status: status, body: body, retryAfter: retryAfter, truncated: errorPrefixComplete)))
            return
        }
        if let overflow {
            let what: String
            let remedy = "a broken server or proxy, or model.dimensions smaller than what the model returns; if the answers are legitimately that large, raise model.max-response-bytes in the job file"
            switch overflow {
            case .declared(let length):
                what = "the answer announced \(length) bytes, more than the \(maxBody) bytes this request can legitimately produce (got more than \(maxBody) bytes) — \(remedy)"
            case .body:
                what = "the answer grew past the \(maxBody) bytes this request can legitimately produce; aborted while it streamed (got more than \(maxBody) bytes) — \(remedy)"
            case .headers:
                what = "the answer's headers grew past \(maxHeaders) bytes; aborted (got more than \(maxHeaders) bytes of headers) — a broken server or proxy in front of it; check its configuration"
            }
            finish(.failure(TransportError(kind: .tooLarge, message: "\(target): \(what)")))
            return
        }
        let buffered = String(cString: errorBuffer)
        let detail = buffered.isEmpty ? String(cString: curl_easy_strerror(code)) : buffered
        let kind: TransportError.Kind
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .connect
        case CURLE_OPERATION_TIMEDOUT: kind = .timeout
        case CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE: kind = .dropped
        default: kind = .other
        }
        finish(.failure(TransportError(kind: kind, message: "\(target): \(detail) (curl error \(code.rawValue))")))
    }

    func finish(_ result: Result<HTTPResponse, Error>) {
        finishLock.lock()
        guard !isFinished, let c = continuation else { finishLock.unlock(); return }
        isFinished = true
        continuation = nil
        finishLock.unlock()
        c.resume(with: result)
    }
}
