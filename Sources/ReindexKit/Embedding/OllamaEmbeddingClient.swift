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

    public func embed(_ inputs: [String]) async throws -> EmbeddingReply {
        var body: [String: Any] = ["model": model.name, "input": inputs]
        if let truncate = model.truncate { body["truncate"] = truncate }
        if let keepAlive = model.keepAlive { body["keep_alive"] = keepAlive }
        if model.dimensionsParam { body["dimensions"] = model.dimensions }
        let response = try await HTTPTransport.shared.perform(try endpoint.request(path: "/api/embed", json: body))
        guard (200..<300).contains(response.status) else {
            return .rejected(status: response.status, message: Endpoint.errorMessage(response.body), retryAfter: response.retryAfter)
        }
        let json: JSONValue
        do { json = try JSONValue.parse(response.body) } catch {
            throw ReindexError.modelResponse(detail: "the Ollama answer is not JSON: \(error)")
        }
        guard let list = json["embeddings"]?.arrayValue else {
            throw ReindexError.modelResponse(detail: "the Ollama answer has no \"embeddings\" list")
        }
        return .vectors(try list.enumerated().map { i, v in
            guard let floats = v.floatsValue else {
                throw ReindexError.modelResponse(detail: "embedding \(i) in the Ollama answer is not a list of numbers")
            }
            return floats
        })
    }
}
