import Foundation

/// A user's search text as an FTS5 query that means only "these words":
/// every whitespace-separated term becomes a quoted string (inner `"`
/// doubled), and the terms are joined by `OR` so a row matching more of them
/// ranks higher by bm25 instead of a row needing all of them. FTS5 syntax
/// typed by the user (`"`, `*`, `NEAR(`, `-`, `OR`, `AND`, `:`, `^`) is then
/// plain text: it can neither fail the query nor change its meaning. Terms
/// without a letter or digit are dropped (they hold no token). The same
/// rule is in docs/format.md for applications.
public struct KeywordQuery: Sendable, Equatable {
    /// The quoted terms, each once, in the order typed.
    public var terms: [String]

    /// Nil when the text holds no word.
    public init?(_ text: String) {
        var seen = Set<String>()
        terms = text.split(whereSeparator: { $0.isWhitespace })
            .filter { $0.unicodeScalars.contains { CharacterSet.alphanumerics.contains($0) } }
            .map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
            .filter { seen.insert($0).inserted }
        if terms.isEmpty { return nil }
    }

    /// The FTS5 MATCH expression: the terms joined by OR.
    public var match: String { terms.joined(separator: " OR ") }

    /// The terms as a JSON array (`:terms` of the consumer SQL).
    var termsJSON: String { Report.encode(terms) }

    /// The FTS5 MATCH expression, or nil when the text holds no word.
    public static func match(_ text: String) -> String? { KeywordQuery(text)?.match }
}
