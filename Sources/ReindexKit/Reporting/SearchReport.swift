import Foundation

/// One ranked item of a search.
public struct SearchHit: Sendable, Encodable {
    public var source: String
    public var id: String
    /// Cosine similarity (the dot product of unit vectors), 1 = same direction.
    public var score: Float
    /// The first line of the row's text, read from the primary (nil when the row is gone).
    public var text: String?

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(id, forKey: .id)
        try c.encode(Double(score), forKey: .score)
        try c.encode(text, forKey: .text)  // null when the row is gone from the primary
    }

    private enum CodingKeys: String, CodingKey { case source, id, score, text }
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
            String(format: "%2d. %.4f  ", i + 1, hit.score) + "\(hit.source) \(hit.id)  \(hit.text ?? "(not in the primary any more)")"
        }.joined(separator: "\n")
    }
}
