/// The part of text-embeddings-inference's `GET /info` answer the job uses:
/// its batch limits. Read once per run, so Foundation's decoder is fine.
struct TEIInfo: Decodable, Sendable {
    /// `max_client_batch_size`: the most inputs one request may carry.
    var maxClientBatchSize: Int?
    /// `max_batch_tokens`: the most tokens one batch may hold.
    var maxBatchTokens: Int?

    enum CodingKeys: String, CodingKey {
        case maxClientBatchSize = "max_client_batch_size"
        case maxBatchTokens = "max_batch_tokens"
    }
}
