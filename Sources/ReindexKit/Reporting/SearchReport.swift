import Foundation
import GRDB

/// One ranked source row of a search, by its best chunk.
public struct SearchHit: Sendable, Encodable {
    public var source: String
    public var id: String
    /// By mode: cosine similarity (the dot product of unit vectors, 1 = same
    /// direction); −bm25 (higher is better); the fused reciprocal-rank score.
    public var score: Double
    /// The row's best chunk (0-based).
    public var chunk: Int
    /// That chunk's text, read from the primary and cut to 300 characters (nil when the row is gone).
    public var passage: String?
    /// The row's attributes as stored, by name; NULL is JSON null.
    public var attributes: [String: Value] = [:]
    /// In a hybrid search, each side's rank (from 1) and score for this row; nil when that side did not rank it.
    public var vector: Side? = nil
    public var keyword: Side? = nil

    public struct Side: Sendable, Encodable, Equatable {
        public var rank: Int
        public var score: Double
    }

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
        try c.encode(score, forKey: .score)
        try c.encode(chunk, forKey: .chunk)
        try c.encode(passage, forKey: .passage)  // null when the row is gone from the primary
        if !attributes.isEmpty { try c.encode(attributes, forKey: .attributes) }
        if vector != nil || keyword != nil {
            try c.encode(vector, forKey: .vector)  // null: that side did not rank the row
            try c.encode(keyword, forKey: .keyword)
        }
    }

    private enum CodingKeys: String, CodingKey { case source, id, score, chunk, passage, attributes, vector, keyword }
}

/// `reindex search`'s answer, best first.
public struct SearchReport: Sendable, Encodable {
    public var query: String
    public var mode: SearchMode
    /// Set when a hybrid search answered from keywords alone: `keyword only: <why>`.
    public var degraded: String? = nil
    public var results: [SearchHit]

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(query, forKey: .query)
        try c.encode(mode, forKey: .mode)
        try c.encode(degraded, forKey: .degraded)  // null when both sides answered
        try c.encode(results, forKey: .results)
    }

    private enum CodingKeys: String, CodingKey { case query, mode, degraded, results }

    /// One JSON object (`search --format json`).
    public func json() -> String { Report.encode(self) }

    public func text() -> String {
        let note = degraded.map { "(\($0))\n" } ?? ""
        guard !results.isEmpty else { return note + "no results for \"\(query)\"" }
        return note + results.enumerated().map { i, hit in
            String(format: "%2d. %.4f  ", i + 1, hit.score) + "\(hit.source) \(hit.id)\(hit.chunk > 0 ? " #\(hit.chunk)" : "")"
                + (hit.attributes.isEmpty ? "" : " [" + hit.attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.text)" }.joined(separator: " ") + "]")
                + "  \(hit.passage ?? "(not in the primary any more)")"
        }.joined(separator: "\n")
    }
}

/// `search --mode`: which ranking answers.
public enum SearchMode: String, Sendable, Encodable, CaseIterable {
    /// Cosine similarity of the query's embedding (needs the model).
    case vector
    /// bm25 over the `keywords` FTS5 index (needs no model).
    case keyword
    /// Both, fused by reciprocal rank (`HybridFusion`); keywords alone when the model is down.
    case hybrid
}
