/// The body of Ollama's `POST /api/embed` (the batch endpoint; the older
/// `/api/embeddings` takes one prompt). Absent optionals are left out.
struct OllamaEmbedRequest: Encodable, Sendable {
    /// `model`: the model name, as `ollama list` shows it.
    var model: String
    /// `input`: the texts, one embedding each, in order.
    var input: [String]
    /// `truncate`: true cuts an input longer than the context window; false
    /// makes it an error (`model.truncate`; absent: Ollama's default, true).
    var truncate: Bool?
    /// `keep_alive`: how long the model stays loaded after the request, e.g. `"5m"` (`model.keep-alive`).
    var keepAlive: String?
    /// `dimensions`: asks a Matryoshka model for shorter vectors (`model.dimensions-param`).
    var dimensions: Int?

    enum CodingKeys: String, CodingKey {
        case model, input, truncate
        case keepAlive = "keep_alive"
        case dimensions
    }
}
