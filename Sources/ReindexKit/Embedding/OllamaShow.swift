/// Ollama's `POST /api/show` body: `{"model": "all-minilm"}` (no `verbose`:
/// the tokenizer's vocabulary stays out of the answer).
struct OllamaShowRequest: Encodable, Sendable {
    var model: String
}

/// The part of Ollama's `/api/show` answer that bounds one input:
/// `model_info["<arch>.context_length"]` (the model's trained context, e.g.
/// `bert.context_length`, keyed by `model_info["general.architecture"]`) and a
/// `num_ctx` line in `parameters` (a Modelfile's `PARAMETER num_ctx 256`;
/// `parameters` is one "name value" pair a line). Ollama embeds within
/// min(`num_ctx`, context length) and, by default, silently truncates the rest.
struct OllamaShowResponse: Decodable, Sendable {
    var parameters: String?
    var architecture: String?
    var contextLength: Int?

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(parameters: String?, architecture: String?, contextLength: Int?) {
        self.parameters = parameters
        self.architecture = architecture
        self.contextLength = contextLength
    }

    init(from decoder: Decoder) throws {
        let top = try decoder.container(keyedBy: Key.self)
        parameters = try? top.decodeIfPresent(String.self, forKey: Key(stringValue: "parameters"))
        // model_info mixes strings, numbers, booleans, lists and nulls: read only the two keys needed.
        if let info = try? top.nestedContainer(keyedBy: Key.self, forKey: Key(stringValue: "model_info")) {
            architecture = try? info.decodeIfPresent(String.self, forKey: Key(stringValue: "general.architecture"))
            if let architecture {
                contextLength = try? info.decodeIfPresent(Int.self, forKey: Key(stringValue: "\(architecture).context_length"))
            }
        }
    }

    /// `num_ctx` from `parameters`, when the model's Modelfile sets it.
    var numCtx: Int? {
        for line in (parameters ?? "").split(whereSeparator: \.isNewline) {
            let words = line.split(whereSeparator: \.isWhitespace)
            if words.count == 2, words[0] == "num_ctx", let n = Int(words[1]), n > 0 { return n }
        }
        return nil
    }

    /// Ollama's smallest default `num_ctx` (2048 until 2025; 4096 and more
    /// since, or `OLLAMA_CONTEXT_LENGTH`). `/api/show` does not say which
    /// default this server runs with, so a model whose own context is longer,
    /// and whose Modelfile sets no `num_ctx`, is taken at 2048.
    static let defaultNumCtx = 2048

    var window: ModelWindow? {
        let key = "\(architecture ?? "<arch>").context_length"
        switch (contextLength.flatMap { $0 > 0 ? $0 : nil }, numCtx) {
        case let (context?, numCtx?) where numCtx < context:
            return ModelWindow(tokens: numCtx, source: "Ollama /api/show num_ctx (\(key) \(context))")
        case let (context?, nil) where context > Self.defaultNumCtx:
            return ModelWindow(tokens: Self.defaultNumCtx,
                               source: "Ollama /api/show \(key) \(context), capped at Ollama's default num_ctx \(Self.defaultNumCtx)")
        case let (context?, _):
            return ModelWindow(tokens: context, source: "Ollama /api/show \(key)")
        case let (nil, numCtx?):
            return ModelWindow(tokens: numCtx, source: "Ollama /api/show num_ctx")
        case (nil, nil):
            return nil
        }
    }
}
