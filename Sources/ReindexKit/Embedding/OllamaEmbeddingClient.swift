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
        let json: FastJSON
        do { json = try FastJSON.parse(body) } catch {
            throw ReindexError.modelResponse(detail: "the Ollama answer is not JSON: \(error) — check that the server behind model.url speaks provider: ollama (or change model.provider); then rerun to resume")
        }
        guard let list = json["embeddings"]?.arrayValue else {
            throw ReindexError.modelResponse(detail: "the Ollama answer has no \"embeddings\" list — check that the server behind model.url speaks provider: ollama (or change model.provider); then rerun to resume")
        }
        return try list.enumerated().map { i, v in
            guard let floats = v.floatsValue else {
                throw ReindexError.modelResponse(detail: "embedding \(i) in the Ollama answer is not a list of numbers — check that the server behind model.url speaks provider: ollama (or change model.provider); then rerun to resume")
            }
            return floats
        }
    }
}
