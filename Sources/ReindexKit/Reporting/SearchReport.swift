import Foundation

/// One ranked item of a search.
public struct SearchHit: Sendable {
    public var source: String
    public var id: String
    /// Cosine similarity (the dot product of unit vectors), 1 = same direction.
    public var score: Float
    /// The first line of the row's text, read from the primary (nil when the row is gone).
    public var text: String?
}

/// `reindex search`'s answer, best first.
public struct SearchReport: Sendable {
    public var query: String
    public var results: [SearchHit]

    public func json() -> String {
        Report.encode(["query": query, "results": results.map { hit -> [String: Any] in
            ["source": hit.source, "id": hit.id, "score": Double(hit.score), "text": hit.text ?? NSNull()]
        }])
    }

    public func text() -> String {
        guard !results.isEmpty else { return "no results for \"\(query)\"" }
        return results.enumerated().map { i, hit in
            String(format: "%2d. %.4f  ", i + 1, hit.score) + "\(hit.source) \(hit.id)  \(hit.text ?? "(not in the primary any more)")"
        }.joined(separator: "\n")
    }
}
