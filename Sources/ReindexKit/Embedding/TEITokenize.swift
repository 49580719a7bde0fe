/// text-embeddings-inference's `POST /tokenize` body: `{"inputs": "...",
/// "add_special_tokens": true}` (true is TEI's default; sent so the count
/// always includes the tokens the model adds, as the window does).
struct TEITokenizeRequest: Encodable, Sendable {
    var inputs: String
    var addSpecialTokens: Bool

    enum CodingKeys: String, CodingKey {
        case inputs
        case addSpecialTokens = "add_special_tokens"
    }
}

/// TEI's `/tokenize` answer: one list of tokens per input, even for a single
/// string: `[[{"id": 101, "text": "[CLS]", "special": true, "start": null, "stop": null}, …]]`.
struct TEITokenizeResponse: Decodable, Sendable {
    struct Token: Decodable, Sendable {
        var id: Int
    }

    var inputs: [[Token]]

    init(from decoder: Decoder) throws {
        inputs = try decoder.singleValueContainer().decode([[Token]].self)
    }
}
