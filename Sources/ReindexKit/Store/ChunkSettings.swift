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

    /// Characters per token when the server cannot tokenize: conservative
    /// (smaller chunks in characters, so a chunk stays inside its window).
    public static let estimatedCharsPerToken = 3.0

    /// Sizes from the job's token settings and a characters-per-token figure.
    public init(model: ModelConfig, charsPerToken: Double = estimatedCharsPerToken, window: Int? = nil, source: String = "estimate: 3 characters per token") {
        var tokens = model.chunkTokens
        if let window { tokens = min(tokens, window) }
        let overlapTokens = min(model.chunkOverlap ?? Int((Double(model.chunkTokens) * 0.15).rounded()), tokens / 2)
        self.tokens = tokens
        self.overlapTokens = overlapTokens
        self.charsPerToken = charsPerToken
        self.window = window
        self.source = source
        size = max(Chunker.minimumSplit, Int(Double(tokens) * charsPerToken))
        overlap = min(size / 2, Int(Double(overlapTokens) * charsPerToken))
    }

    public var chunker: Chunker { Chunker(size: size, overlap: overlap) }

    /// Whether a file chunked with these settings can be built on by a job
    /// with `model`'s settings (the job's own keys decide, not the measured sizes).
    func matches(_ model: ModelConfig) -> Bool {
        let wanted = ChunkSettings(model: model, window: window)
        return wanted.tokens == tokens && wanted.overlapTokens == overlapTokens
    }

    var json: String { Report.encode(self) }

    static func decode(_ text: String?) -> ChunkSettings? {
        guard let text else { return nil }
        return try? JSONDecoder().decode(ChunkSettings.self, from: Data(text.utf8))
    }

    /// For the summary: "128 tokens ≈ 384 characters, overlap 19 ≈ 57 (estimate: …)".
    public var summary: String {
        "\(tokens) tokens ≈ \(size) characters, overlap \(overlapTokens) ≈ \(overlap) (\(source))"
    }
}
