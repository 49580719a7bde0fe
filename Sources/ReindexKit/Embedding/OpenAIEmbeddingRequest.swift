/// The body of OpenAI's `POST /v1/embeddings`, as OpenAI, vLLM, llama.cpp's
/// server, LM Studio and LocalAI accept it. Absent optionals are left out.
struct OpenAIEmbeddingRequest: Encodable, Sendable {
    /// `model`: the model name the server serves.
    var model: String
    /// `input`: the texts, one embedding each, answered in this order (or with an `index`).
    var input: [String]
    /// `encoding_format`: `"base64"` (little-endian float32, far cheaper to
    /// decode than number arrays); absent means the default, `"float"`.
    var encodingFormat: String?
    /// `dimensions`: asks a Matryoshka model for shorter vectors (`model.dimensions-param`).
    var dimensions: Int?

    enum CodingKeys: String, CodingKey {
        case model, input
        case encodingFormat = "encoding_format"
        case dimensions
    }
}
