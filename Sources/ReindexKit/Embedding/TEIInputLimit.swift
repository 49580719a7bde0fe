/// The part of text-embeddings-inference's `GET /info` answer that bounds one
/// input: `max_input_length`, the most tokens an input may have (the model's
/// sentence-transformers `max_seq_length`, else its `max_position_embeddings`;
/// 256 for all-MiniLM-L6-v2). Longer inputs get a 413 unless TEI truncates.
struct TEIInputLimit: Decodable, Sendable {
    var maxInputLength: Int?

    enum CodingKeys: String, CodingKey { case maxInputLength = "max_input_length" }

    var window: ModelWindow? {
        guard let tokens = maxInputLength, tokens > 0 else { return nil }
        return ModelWindow(tokens: tokens, source: "TEI /info max_input_length")
    }
}
