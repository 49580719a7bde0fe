import Foundation
import GRDB

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
    /// The row's attributes as stored, by name; NULL is JSON null.
    public var attributes: [String: Value] = [:]

    /// An attribute value as JSON shows it.
    public enum Value: Sendable, Encodable, Equatable {
        case null, integer(Int64), real(Double), text(String)

        init(_ value: DatabaseValue) {
            switch value.storage {
            case .null: self = .null
            case .int64(let n): self = .integer(n)
            case .double(let x): self = .real(x)
            case .string(let s): self = .text(s)
            case .blob(let b): self = .text(b.map { String(format: "%02x", $0) }.joined())
            }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .null: try c.encodeNil()
            case .integer(let n): try c.encode(n)
            case .real(let x): try c.encode(x)
            case .text(let s): try c.encode(s)
            }
        }

        var text: String {
            switch self {
            case .null: return "NULL"
            case .integer(let n): return String(n)
            case .real(let x): return String(x)
            case .text(let s): return s
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(id, forKey: .id)
        try c.encode(Double(score), forKey: .score)
        try c.encode(chunk, forKey: .chunk)
        try c.encode(passage, forKey: .passage)  // null when the row is gone from the primary
        if !attributes.isEmpty { try c.encode(attributes, forKey: .attributes) }
    }

    private enum CodingKeys: String, CodingKey { case source, id, score, chunk, passage, attributes }
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
            String(format: "%2d. %.4f  ", i + 1, hit.score) + "\(hit.source) \(hit.id)\(hit.chunk > 0 ? " #\(hit.chunk)" : "")"
                + (hit.attributes.isEmpty ? "" : " [" + hit.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.text)" }.joined(separator: " ") + "]")
                + "  \(hit.passage ?? "(not in the primary any more)")"
        }.joined(separator: "\n")
    }
}
