import Foundation

/// `POST {url}/v1/embeddings`: OpenAI, vLLM, llama.cpp's server, LM Studio,
/// LocalAI. Asks for base64 (decoding is ~40× cheaper than float arrays);
/// a server that rejects `encoding_format` is asked once more without it,
/// and float arrays are used for the rest of the run.
///
/// The window and token counts come from llama.cpp's own endpoints beside
/// the OpenAI ones, `GET /props` and `POST /tokenize`, at the server's root
/// (without `/v1`); a plain OpenAI-compatible API has neither (404), which
/// only means it cannot tell.
public final class OpenAIEmbeddingClient: EmbeddingClient, @unchecked Sendable {
    private let endpoint: Endpoint
    /// The same server without a trailing `/v1`: where llama.cpp's `/props` and `/tokenize` are.
    private let root: Endpoint
    private let model: ModelConfig
    private let path: String
    private let lock = NSLock()
    private var base64 = true
    private var base64Confirmed = false
    private var tokenizeMissing = false

    public init(model: ModelConfig, apiKey: String?) {
        self.model = model
        self.endpoint = Endpoint(model: model, apiKey: apiKey)
        // Accept a base URL that already ends in /v1.
        let hasV1 = endpoint.base.hasSuffix("/v1")
        self.path = hasV1 ? "/embeddings" : "/v1/embeddings"
        var root = endpoint
        if hasV1 { root.base.removeLast("/v1".count) }
        self.root = root
    }

    /// llama.cpp's `GET /props` `default_generation_settings.n_ctx` (see `LlamaProps`).
    public func window() async throws -> ModelWindow? {
        let response = try await HTTPTransport.shared.perform(root.request(path: "/props"))
        return SmallAnswer.decode(LlamaProps.self, from: response)?.window
    }

    /// llama.cpp's `POST /tokenize` with `add_special`. Any other answer (404
    /// from a plain OpenAI API, 400 from vLLM's differently shaped /tokenize)
    /// means no count, and the endpoint is not asked again.
    public func countTokens(_ text: String) async throws -> Int? {
        if lock.withLock({ tokenizeMissing }) { return nil }
        let request = try root.request(path: "/tokenize", body: LlamaTokenizeRequest(content: text, addSpecial: true))
        let response = try await HTTPTransport.shared.perform(request)
        guard let answer = SmallAnswer.decode(LlamaTokenizeResponse.self, from: response) else {
            lock.withLock { tokenizeMissing = true }
            return nil
        }
        return answer.tokens.count
    }

    public var description: String { "openai \(endpoint.display)" }

    public var usesBase64: Bool { lock.withLock { base64 } }

    public func embed(_ inputs: [String]) async throws -> EmbeddingReply {
        let (tryBase64, confirmed) = lock.withLock { (base64, base64Confirmed) }
        let reply = try await send(inputs, base64: tryBase64)
        if tryBase64, !confirmed, case .rejected(400, _, _) = reply {
            // Maybe the server does not know encoding_format: ask once without it.
            let plain = try await send(inputs, base64: false)
            if case .vectors = plain {
                lock.withLock { base64 = false }
            }
            return plain
        }
        if tryBase64, case .vectors = reply { lock.withLock { base64Confirmed = true } }
        return reply
    }

    private func send(_ inputs: [String], base64: Bool) async throws -> EmbeddingReply {
        let body = OpenAIEmbeddingRequest(model: model.name, input: inputs, encodingFormat: base64 ? "base64" : nil,
                                          dimensions: model.dimensionsParam ? model.dimensions : nil)
        let response = try await HTTPTransport.shared.perform(try endpoint.request(path: path, body: body))
        guard (200..<300).contains(response.status) else {
            return .rejected(status: response.status, message: Endpoint.errorMessage(response.body), retryAfter: response.retryAfter)
        }
        return .vectors(try Self.decode(response.body, count: inputs.count))
    }

    static func decode(_ body: Data, count: Int) throws -> [[Float]] {
        let json: FastJSON
        do { json = try FastJSON.parse(body) } catch {
            throw ReindexError.modelResponse(detail: "the OpenAI-style answer is not JSON: \(error) — check that the server behind model.url speaks provider: openai (or change model.provider); then rerun to resume")
        }
        guard let data = json["data"]?.arrayValue else {
            throw ReindexError.modelResponse(detail: "the OpenAI-style answer has no \"data\" list — check that the server behind model.url speaks provider: openai (or change model.provider); then rerun to resume")
        }
        guard data.count == count else {
            throw ReindexError.modelResponse(detail: "expected \(count) embeddings in the answer (got \(data.count)) — check that the server behind model.url speaks provider: openai (or change model.provider); then rerun to resume")
        }
        var out = [[Float]](repeating: [], count: count)
        for (position, entry) in data.enumerated() {
            // Range-checked as a Double first: Int(1e80) traps (found by fuzzing).
            let rawIndex = entry["index"]?.doubleValue ?? Double(position)
            guard rawIndex >= 0, rawIndex < Double(count) else {
                throw ReindexError.modelResponse(detail: "embedding index out of range (got \(rawIndex == rawIndex.rounded() && abs(rawIndex) < 1e15 ? String(Int64(rawIndex)) : String(rawIndex)) for \(count) inputs) — check that the server behind model.url speaks provider: openai (or change model.provider); then rerun to resume")
            }
            let index = Int(rawIndex)
            switch entry["embedding"] {
            case .string(let b64)?:
                guard let v = Endpoint.floats(base64: b64) else {
                    throw ReindexError.modelResponse(detail: "embedding \(index) is not valid base64 float32 — check that the server behind model.url speaks provider: openai (or change model.provider); then rerun to resume")
                }
                out[index] = v
            case let value?:
                guard let v = value.floatsValue else {
                    throw ReindexError.modelResponse(detail: "embedding \(index) is neither a list of numbers nor base64 — check that the server behind model.url speaks provider: openai (or change model.provider); then rerun to resume")
                }
                out[index] = v
            case nil:
                throw ReindexError.modelResponse(detail: "entry \(position) of \"data\" has no \"embedding\" — check that the server behind model.url speaks provider: openai (or change model.provider); then rerun to resume")
            }
        }
        return out
    }
}
