/// llama.cpp's `POST /tokenize` body: `{"content": "...", "add_special": true}`.
/// `add_special` (default false) adds the tokens the model adds to every input
/// (BERT's [CLS] and [SEP]), so the count is what the window holds.
struct LlamaTokenizeRequest: Encodable, Sendable {
    var content: String
    var addSpecial: Bool

    enum CodingKeys: String, CodingKey {
        case content
        case addSpecial = "add_special"
    }
}

/// llama.cpp's `/tokenize` answer: `{"tokens": [101, 1996, …, 102]}` (ids, as
/// no `with_pieces` is asked for).
struct LlamaTokenizeResponse: Decodable, Sendable {
    var tokens: [Int]
}
