/// The body of text-embeddings-inference's `POST /embed`. TEI takes more
/// (`truncation_direction`, `prompt_name`); the job sends neither: its
/// prefixes are part of the hashed input instead.
struct TEIEmbedRequest: Encodable, Sendable {
    /// `inputs`: the texts, one embedding each, in order.
    var inputs: [String]
    /// `normalize`: always false — normalization is ours, checked and the same for every provider.
    var normalize: Bool = false
    /// `truncate`: true cuts an input longer than the model's maximum; false
    /// makes it an error (`model.truncate`; absent: TEI's default, false).
    var truncate: Bool?
}
