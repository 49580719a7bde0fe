import Foundation

/// Ollama's `POST {url}/api/embed` with an `input` list (float arrays only).
public final class OllamaEmbeddingClient: EmbeddingClient {
    private let endpoint: Endpoint
    private let model: ModelConfig

    public init(model: ModelConfig, apiKey: String?) {
        self.model = model
        self.endpoint = Endpoint(model: model, apiKey: apiKey)
    }

    public var description: String { "ollama \(endpoint.display)" }

    /// `POST /api/show`: the model's context length, or its `num_ctx` when
    /// smaller (see `OllamaShowResponse`). Ollama has no tokenize endpoint,
    /// so `countTokens` stays nil.
    public func window() async throws -> ModelWindow? {
        let response = try await HTTPTransport.shared.perform(try endpoint.request(path: "/api/show", body: OllamaShowRequest(model: model.name)))
        return SmallAnswer.decode(OllamaShowResponse.self, from: response)?.window
    }

    public func embed(_ inputs: [String]) async throws -> EmbeddingReply {
        let body = OllamaEmbedRequest(model: model.name, input: inputs, truncate: model.truncate, keepAlive: model.keepAlive,
                                      dimensions: model.dimensionsParam ? model.dimensions : nil)
        let response = try await HTTPTransport.shared.perform(try endpoint.request(path: "/api/embed", body: body))
        guard (200..<300).contains(response.status) else {
            return .rejected(status: response.status, message: Endpoint.errorMessage(response.body), retryAfter: response.retryAfter)
        }
        return .vectors(try Self.decode(response.body))
    }

    /// `{"model": …, "embeddings": [[numbers], …], …}`: one vector per input, in order.
    static func decode(_ body: Data) throws -> [[Float]] {
        try VectorListAnswer.decode(body, provider: "Ollama", what: "has no \"embeddings\" list") { $0["embeddings"]?.arrayValue }
    }
}
