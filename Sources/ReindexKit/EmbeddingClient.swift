import Foundation

/// What one embedding request produced, before any retry policy: either raw
/// vectors (one per input, in input order) or the server's verdict.
public enum EmbeddingReply: Sendable {
    case vectors([[Float]])
    /// A non-2xx answer; `message` is the server's error text (never request data).
    case rejected(status: Int, message: String, retryAfter: String?)
}

/// Limits a server announces about itself (TEI's `/info`).
public struct ServerLimits: Sendable, Equatable {
    public var maxBatchSize: Int?
    public var maxBatchTokens: Int?
}

/// One embedding protocol (OpenAI, Ollama, TEI). A client sends exactly one
/// HTTP request per call and never retries: `BatchEmbedder` owns retries,
/// splitting and bisecting so every provider behaves the same.
public protocol EmbeddingClient: Sendable {
    /// Throws `TransportError` when no HTTP answer came, `ReindexError.modelResponse` when the answer is unreadable.
    func embed(_ inputs: [String]) async throws -> EmbeddingReply
    /// Reads server limits before the first batch (TEI); nil when the protocol has none.
    func limits() async throws -> ServerLimits?
    /// How many HTTP requests this client sent (some calls send two).
    var description: String { get }
}

extension EmbeddingClient {
    public func limits() async throws -> ServerLimits? { nil }
}

/// Shared plumbing: endpoint URLs (incl. `unix:` sockets), headers, error text.
public struct Endpoint: Sendable {
    public var base: String
    public var unixSocket: String?
    public var timeout: Double
    public var connectTimeout: Double
    public var headers: [String]

    public init(model: ModelConfig, apiKey: String?) {
        if model.url.hasPrefix("unix:") {
            unixSocket = String(model.url.dropFirst("unix:".count))
            base = "http://localhost"
        } else {
            var b = model.url
            while b.hasSuffix("/") { b.removeLast() }
            base = b
        }
        timeout = model.timeout
        connectTimeout = model.connectTimeout
        var h = ["Content-Type: application/json", "Accept: application/json"]
        if let apiKey { h.append("Authorization: Bearer \(apiKey)") }
        headers = h
    }

    /// The URL a user sees in messages: never carries credentials.
    public var display: String { unixSocket.map { "unix:\($0)" } ?? base }

    public func request(path: String, method: String = "POST", json: Any? = nil) throws -> HTTPRequest {
        let body = try json.map { try JSONValue.serialize($0) }
        return HTTPRequest(url: base + path, method: method, headers: headers, body: body,
                           unixSocket: unixSocket, timeout: timeout, connectTimeout: connectTimeout)
    }

    /// Extracts an error message from OpenAI (`error.message`), Ollama/TEI (`error`) or plain bodies.
    public static func errorMessage(_ body: Data) -> String {
        if let json = try? JSONValue.parse(body) {
            if let message = json["error"]?["message"]?.stringValue { return message }
            if let message = json["error"]?.stringValue { return message }
            if let message = json["message"]?.stringValue { return message }
            if let message = json["detail"]?.stringValue { return message }
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "(empty body)" : text
    }

    /// Decodes `count` little-endian float32 values from base64.
    public static func floats(base64: String) -> [Float]? {
        JSONValue.float32s(base64: base64)
    }
}
