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
