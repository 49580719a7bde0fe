import Foundation

/// How rows are cut into chunks for one vector file: the job's settings in
/// tokens, and the sizes in Unicode scalars the chunker uses. Recorded in
/// `meta.chunking`, so every incremental run chunks exactly as the file it
/// builds on did (the same row gives the same chunks, and unchanged chunks
/// keep their vectors).
public struct ChunkSettings: Sendable, Equatable, Codable {
    /// `model.chunk-tokens`.
    public var tokens: Int
    /// `model.chunk-overlap`, in tokens.
    public var overlapTokens: Int
    /// The chunker's size, in Unicode scalars.
    public var size: Int
    /// The chunker's overlap, in Unicode scalars.
    public var overlap: Int
    /// Characters per token the sizes were computed with.
    public var charsPerToken: Double
    /// The model's window in tokens, when known.
    public var window: Int?
    /// Where the window and the characters-per-token figure came from.
    public var source: String

    enum CodingKeys: String, CodingKey {
        case tokens, size, overlap, window, source
        case overlapTokens = "overlap_tokens", charsPerToken = "chars_per_token"
    }

    /// The job's overlap in tokens: `chunk-overlap`, else 15% of `chunk-tokens`.
    static func overlapTokens(_ model: ModelConfig) -> Int {
        min(model.chunkOverlap ?? Int((Double(model.chunkTokens) * 0.15).rounded()), model.chunkTokens / 2)
    }

    /// Sizes from what the server said (its window, its tokenizer's
    /// characters per token), or the conservative estimate without one.
    public init(model: ModelConfig, budget: TokenBudget) {
        tokens = model.chunkTokens
        overlapTokens = Self.overlapTokens(model)
        charsPerToken = budget.charactersPerToken
        window = budget.window?.tokens
        source = budget.describe()
        size = max(Chunker.minimumSplit, budget.chunkScalars)
        overlap = min(size / 2, budget.overlapScalars)
    }

    /// Sizes from the job's settings alone (dry runs, and servers that cannot tell).
    public init(model: ModelConfig) {
        self.init(model: model, budget: TokenBudget(chunkTokens: model.chunkTokens, overlapTokens: Self.overlapTokens(model),
                                                    charactersPerToken: TokenBudget.defaultCharactersPerToken, ratioSource: .estimated,
                                                    window: nil, reservedTokens: TokenBudget.defaultSpecialTokens))
    }

    public var chunker: Chunker { Chunker(size: size, overlap: overlap) }

    /// Whether a file chunked with these settings can be built on by a job
    /// with `model`'s settings (the job's own keys decide, not the measured sizes).
    func matches(_ model: ModelConfig) -> Bool {
        tokens == model.chunkTokens && overlapTokens == Self.overlapTokens(model)
    }

    var json: String { Report.encode(self) }

    static func decode(_ text: String?) -> ChunkSettings? {
        guard let text else { return nil }
        return try? JSONDecoder().decode(ChunkSettings.self, from: Data(text.utf8))
    }

    /// For the summary: how big chunks are and where the figures came from.
    public var summary: String { source }
}
