import Foundation

/// One ranked source row of a search, by its best chunk.
public struct SearchHit: Sendable, Encodable {
    public var source: String
    public var id: String
    /// Cosine similarity (the dot product of unit vectors), 1 = same direction.
    public var score: Float
    /// The row's best chunk (0-based).
    public var chunk: Int
    /// That chunk's text, read from the primary and cut to 300 characters (nil when the row is gone).
    public var passage: String?

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(id, forKey: .id)
        try c.encode(Double(score), forKey: .score)
        try c.encode(chunk, forKey: .chunk)
        try c.encode(passage, forKey: .passage)  // null when the row is gone from the primary
    }

    private enum CodingKeys: String, CodingKey { case source, id, score, chunk, passage }
}

/// `reindex search`'s answer, best first.
public struct SearchReport: Sendable, Encodable {
    public var query: String
    public var results: [SearchHit]

    /// One JSON object (`search --format json`).
    public func json() -> String { Report.encode(self) }

    public func text() -> String {
        guard !results.isEmpty else { return "no results for \"\(query)\"" }
        return results.enumerated().map { i, hit in
            String(format: "%2d. %.4f  ", i + 1, hit.score) + "\(hit.source) \(hit.id)\(hit.chunk > 0 ? " #\(hit.chunk)" : "")  \(hit.passage ?? "(not in the primary any more)")"
        }.joined(separator: "\n")
    }
}
