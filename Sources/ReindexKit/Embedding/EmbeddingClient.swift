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
    /// The model's input window as the server reports it (llama.cpp `/props`,
    /// TEI `/info`, Ollama `/api/show`); nil when the server cannot tell —
    /// a missing endpoint is not an error. Throws `TransportError` when no
    /// HTTP answer came. Asked once per run.
    func window() async throws -> ModelWindow?
    /// The tokens the model sees for `text` as one input, special tokens
    /// included (llama.cpp and TEI `/tokenize`); nil when the server has no
    /// tokenize endpoint, and from then on without asking again.
    func countTokens(_ text: String) async throws -> Int?
    /// How many HTTP requests this client sent (some calls send two).
    var description: String { get }
}

extension EmbeddingClient {
    public func limits() async throws -> ServerLimits? { nil }
    public func window() async throws -> ModelWindow? { nil }
    public func countTokens(_ text: String) async throws -> Int? { nil }
}
