import Foundation

/// Turns `chunk-tokens` and `chunk-overlap` into sizes in Unicode scalars for
/// the chunker, capped so that a chunk, the prefix and the model's special
/// tokens fit the model's window.
///
/// Tokens become characters through one characters-a-token ratio: measured
/// with the server's tokenizer when it has one (`measure`), otherwise
/// `defaultCharactersPerToken`. A text denser than the ratio (logs, numbers,
/// non-Latin scripts) gives chunks of more tokens than asked for; near the
/// window the embedder's too-long handling still applies.
public struct TokenBudget: Sendable, Equatable {
    public enum RatioSource: Sendable, Equatable {
        /// Counted by the server's tokenizer over `samples` texts.
        case measured(samples: Int)
        /// `defaultCharactersPerToken`: the server cannot count tokens.
        case estimated
    }

    /// `chunk-tokens`: the tokens a chunk should have.
    public var chunkTokens: Int
    /// `chunk-overlap`: the tokens consecutive chunks share.
    public var overlapTokens: Int
    public var charactersPerToken: Double
    public var ratioSource: RatioSource
    /// The model's window, when the server reports it.
    public var window: ModelWindow?
    /// Tokens of the window every input spends before its text: the special
    /// tokens the model adds ([CLS], [SEP]) and the `prefix`.
    public var reservedTokens: Int

    public init(chunkTokens: Int, overlapTokens: Int, charactersPerToken: Double, ratioSource: RatioSource,
                window: ModelWindow?, reservedTokens: Int) {
        self.chunkTokens = chunkTokens
        self.overlapTokens = overlapTokens
        self.charactersPerToken = charactersPerToken
        self.ratioSource = ratioSource
        self.window = window
        self.reservedTokens = reservedTokens
    }

    /// The tokens a chunk gets: `chunk-tokens`, or what the window leaves
    /// after the reserved tokens when that is less (at least 1).
    public var tokensPerChunk: Int {
        guard let window else { return max(1, chunkTokens) }
        return max(1, min(chunkTokens, window.tokens - reservedTokens))
    }

    /// True when the window, not `chunk-tokens`, sets the chunk size.
    public var isCapped: Bool { tokensPerChunk < chunkTokens }

    /// The chunk size for the chunker, in Unicode scalars.
    public var chunkScalars: Int { max(1, Int((Double(tokensPerChunk) * charactersPerToken).rounded(.down))) }

    /// The overlap in tokens: `chunk-overlap`, at most half a chunk so that
    /// every chunk moves forward by at least half its size.
    public var overlapTokensPerChunk: Int { max(0, min(overlapTokens, tokensPerChunk / 2)) }

    /// The overlap for the chunker, in Unicode scalars.
    public var overlapScalars: Int { Int((Double(overlapTokensPerChunk) * charactersPerToken).rounded(.down)) }

    /// One line for the run summary, e.g. "chunk 128 tokens ≈ 396 characters
    /// (3.10 characters a token, measured with the server's tokenizer); window
    /// 512 tokens from llama.cpp /props n_ctx, 2 of them for special tokens and the prefix".
    public func describe() -> String {
        var text = "chunk \(tokensPerChunk) tokens ≈ \(chunkScalars) characters"
        if overlapTokensPerChunk > 0 {
            text += ", overlap \(overlapTokensPerChunk) tokens ≈ \(overlapScalars) characters"
        }
        let ratio = String(format: "%.2f", charactersPerToken)
        switch ratioSource {
        case .measured: text += " (\(ratio) characters a token, measured with the server's tokenizer)"
        case .estimated: text += " (\(ratio) characters a token, estimated: the server cannot count tokens)"
        }
        if let window {
            text += "; window \(window.tokens) tokens from \(window.source)"
            if reservedTokens > 0 { text += ", \(reservedTokens) of them for special tokens and the prefix" }
            if isCapped { text += "; chunk-tokens \(chunkTokens) capped to fit it" }
        } else {
            text += "; window unknown (the server does not report it)"
        }
        return text
    }

    // MARK: - The ratio

    /// The characters-a-token ratio when the server cannot count tokens.
    ///
    /// Measured with all-MiniLM-L6-v2's WordPiece tokenizer (llama.cpp
    /// `/tokenize`, special tokens excluded, characters as Unicode scalars):
    /// the fixture primary's 1,206 English chat messages 4.29 characters a
    /// token overall (5th percentile 3.50; its long rows 3.87), its knowledge
    /// entries 4.58, this project's Markdown docs 3.30, Swift source 3.56;
    /// denser text: a log line 2.15, mixed Arabic/Cyrillic/Devanagari
    /// messages 1.8–2.2, CJK about 1. Three characters a token keeps prose,
    /// docs and code within `chunk-tokens` (prose chunks come out about a
    /// third smaller than asked); denser scripts rely on the window's cap and
    /// the embedder's too-long handling.
    public static let defaultCharactersPerToken = 3.0

    /// Tokens reserved for the model's special tokens when the server cannot
    /// count them: BERT adds two ([CLS], [SEP]), most models one or two.
    public static let defaultSpecialTokens = 2

    /// The measured ratio is lowered by this much, for text denser than the samples.
    public static let margin = 0.9

    /// Tokenized once per run to measure the ratio: the drift probes (short
    /// chat-like sentences) and longer English, technical and list-like text.
    /// On all-MiniLM-L6-v2: 704 characters, 204 tokens, 3.45 characters a
    /// token; 3.10 after the margin.
    public static let samples: [String] = Probe.texts + [
        "After the migration finished, we compared the row counts in both databases and found that 312 messages from the archived rooms had not been copied, so we reran the job for those rooms only.",
        "Set max_batch_tokens=16384 in config.yaml, then run `make test` (about 3 min on 2 cores); see docs/operations.md#resuming for details.",
        "ERROR 2024-11-21T14:03:07Z worker-3: HTTP 503 from https://api.example.com/v1/embeddings (retry 2/6, backoff 0.5s)",
        "- 2 cups flour, 1 tsp baking soda, 3/4 cup sugar; bake at 180 °C for 25–30 minutes.",
    ]

    /// The conservative ratio from measured samples: all their scalars over
    /// all their tokens (special tokens excluded), times `margin`, rounded
    /// down to hundredths and at least 1; nil without a sample that has tokens.
    public static func ratio(_ counts: [(scalars: Int, tokens: Int)]) -> Double? {
        let scalars = counts.reduce(0) { $0 + $1.scalars }
        let tokens = counts.reduce(0) { $0 + $1.tokens }
        guard tokens > 0, scalars > 0 else { return nil }
        let ratio = (Double(scalars) / Double(tokens) * margin * 100).rounded(.down) / 100
        return max(1, ratio)
    }

    // MARK: - Measuring

    /// Asks the server for its window and, when it can tokenize, counts the
    /// samples, the special tokens and the prefix; otherwise uses the
    /// defaults. About ten small requests, once per run.
    ///
    /// Throws `ReindexError.configuration` when the prefix and special tokens
    /// leave no room in the window, and whatever the client throws when the
    /// server does not answer at all.
    public static func measure(client: any EmbeddingClient, chunkTokens: Int, overlapTokens: Int,
                               prefix: String) async throws -> TokenBudget {
        let window = try await client.window()
        let budget: TokenBudget
        if let counted = try await countSamples(client: client, prefix: prefix) {
            budget = TokenBudget(chunkTokens: chunkTokens, overlapTokens: overlapTokens,
                                 charactersPerToken: counted.ratio, ratioSource: .measured(samples: samples.count),
                                 window: window, reservedTokens: counted.special + counted.prefix)
        } else {
            let prefixTokens = Int((Double(prefix.unicodeScalars.count) / defaultCharactersPerToken).rounded(.up))
            budget = TokenBudget(chunkTokens: chunkTokens, overlapTokens: overlapTokens,
                                 charactersPerToken: defaultCharactersPerToken, ratioSource: .estimated,
                                 window: window, reservedTokens: defaultSpecialTokens + prefixTokens)
        }
        if let window, budget.reservedTokens >= window.tokens {
            throw ReindexError.configuration(key: "model.prefix", detail: "the prefix and the model's special tokens take \(budget.reservedTokens) tokens of the \(window.tokens)-token window (\(window.source)), leaving none for the text — shorten model.prefix")
        }
        return budget
    }

    /// The ratio, the special tokens and the prefix's tokens, or nil when the
    /// server cannot count.
    private static func countSamples(client: any EmbeddingClient, prefix: String) async throws
        -> (ratio: Double, special: Int, prefix: Int)? {
        // The special tokens the model adds to every input: one word alone
        // costs 1 + s tokens, the word twice 2 + s, so s = 2·one − two. This
        // avoids tokenizing an empty string, which not every server accepts.
        guard let one = try await client.countTokens("hello"), let two = try await client.countTokens("hello hello") else { return nil }
        let special = max(0, 2 * one - two)
        var counts: [(scalars: Int, tokens: Int)] = []
        for sample in samples {
            guard let n = try await client.countTokens(sample) else { return nil }
            counts.append((sample.unicodeScalars.count, max(0, n - special)))
        }
        guard let ratio = ratio(counts) else { return nil }
        var prefixTokens = 0
        if !prefix.isEmpty {
            guard let n = try await client.countTokens(prefix) else { return nil }
            prefixTokens = max(0, n - special)
        }
        return (ratio, special, prefixTokens)
    }
}
