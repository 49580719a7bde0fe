import Foundation

/// text-embeddings-inference: `POST {url}/embed` with `inputs`; `GET /info`
/// first, so batches stay within `max_client_batch_size` and `max_batch_tokens`.
public final class TEIEmbeddingClient: EmbeddingClient, @unchecked Sendable {
    private let endpoint: Endpoint
    private let model: ModelConfig
    private let lock = NSLock()
    private var tokenizeMissing = false

    public init(model: ModelConfig, apiKey: String?) {
        self.model = model
        self.endpoint = Endpoint(model: model, apiKey: apiKey)
    }

    public var description: String { "tei \(endpoint.display)" }

    public func limits() async throws -> ServerLimits? {
        let response = try await HTTPTransport.shared.perform(endpoint.request(path: "/info"))
        guard response.status == 200, let info = try? JSONDecoder().decode(TEIInfo.self, from: response.body) else {
            throw ReindexError.modelUnavailable(url: endpoint.display, detail: "GET /info did not describe a text-embeddings-inference server (got HTTP \(response.status)) — check model.url and model.provider")
        }
        return ServerLimits(maxBatchSize: info.maxClientBatchSize, maxBatchTokens: info.maxBatchTokens)
    }

    /// `GET /info` `max_input_length`.
    public func window() async throws -> ModelWindow? {
        let response = try await HTTPTransport.shared.perform(endpoint.request(path: "/info"))
        return SmallAnswer.decode(TEIInputLimit.self, from: response)?.window
    }

    /// `POST /tokenize` with `add_special_tokens`; any answer but a token list
    /// means no count, and the endpoint is not asked again.
    public func countTokens(_ text: String) async throws -> Int? {
        if lock.withLock({ tokenizeMissing }) { return nil }
        let request = try endpoint.request(path: "/tokenize", body: TEITokenizeRequest(inputs: text, addSpecialTokens: true))
        let response = try await HTTPTransport.shared.perform(request)
        guard let answer = SmallAnswer.decode(TEITokenizeResponse.self, from: response), answer.inputs.count == 1 else {
            lock.withLock { tokenizeMissing = true }
            return nil
        }
        return answer.inputs[0].count
    }

    public func embed(_ inputs: [String]) async throws -> EmbeddingReply {
        let body = TEIEmbedRequest(inputs: inputs, truncate: model.truncate)
        let response = try await HTTPTransport.shared.perform(try endpoint.request(path: "/embed", body: body))
        guard (200..<300).contains(response.status) else {
            return .rejected(status: response.status, message: Endpoint.errorMessage(response.body), retryAfter: response.retryAfter)
        }
        return .vectors(try Self.decode(response.body))
    }

    /// `[[numbers], …]`: one vector per input, in order.
    static func decode(_ body: Data) throws -> [[Float]] {
        try VectorListAnswer.decode(body, provider: "TEI", what: "is not a list of embeddings") { $0.arrayValue }
    }
}
