import Foundation

/// A user's search text as an FTS5 query that means only "these words":
/// every whitespace-separated term becomes a quoted string (inner `"`
/// doubled), and the terms are joined by `OR` so a row matching more of them
/// ranks higher by bm25 instead of a row needing all of them. FTS5 syntax
/// typed by the user (`"`, `*`, `NEAR(`, `-`, `OR`, `AND`, `:`, `^`) is then
/// plain text: it can neither fail the query nor change its meaning. Terms
/// without a letter or digit are dropped (they hold no token). The same
/// rule is in docs/format.md for applications.
public enum KeywordQuery {
    /// The FTS5 MATCH expression, or nil when the text holds no word.
    public static func match(_ text: String) -> String? {
        let terms = text.split(whereSeparator: { $0.isWhitespace })
            .filter { $0.unicodeScalars.contains { CharacterSet.alphanumerics.contains($0) } }
            .map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        return terms.isEmpty ? nil : terms.joined(separator: " OR ")
    }
}
