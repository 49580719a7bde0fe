import Foundation
import Yams

/// `keywords:` in a job file: an FTS5 index of every chunk's text beside
/// `vec_items`, so one file answers keyword, vector and hybrid searches
/// (docs/format.md, "Keywords"). Off unless the job asks for it: the file
/// then holds the rows' text and is as sensitive as the rows themselves.
public struct KeywordSettings: Sendable, Equatable {
    /// FTS5 tokenizers a job may pick by name.
    public enum Tokenizer: String, Sendable, Equatable, CaseIterable {
        /// Words split on Unicode separators, case and diacritics folded ("café" finds "cafe").
        case unicode61
        /// unicode61 plus English stemming ("billed" finds "billing").
        case porter
        /// Every three-character sequence: substrings and scripts without spaces (CJK); SQLite ≥ 3.34.
        case trigram

        /// The `tokenize` argument of the FTS5 table.
        public var fts5: String {
            switch self {
            case .unicode61: return "unicode61 remove_diacritics 2"
            case .porter: return "porter unicode61 remove_diacritics 2"
            case .trigram: return "trigram"
            }
        }
    }

    /// `fts5`, the only index kind so far; recorded so a later kind is a new value, not a new key.
    public var index = "fts5"
    public var tokenizer: Tokenizer = .unicode61

    public init(tokenizer: Tokenizer = .unicode61) { self.tokenizer = tokenizer }

    /// `keywords: fts5`, or `keywords: {index: fts5, tokenizer: porter}`.
    static func parse(_ node: Node, reader: YAMLReader) throws -> KeywordSettings? {
        let kinds = "fts5 (or off)"
        if case .scalar(let scalar) = node {
            switch scalar.string {
            case "fts5": return KeywordSettings()
            case "off", "none", "false": return nil
            default: throw reader.fail("keywords", "expected \(kinds) or a mapping {index: fts5, tokenizer: …} (got \"\(scalar.string)\")")
            }
        }
        let map = try reader.mapping(node, key: "keywords", allowed: ["index", "tokenizer"])
        let index = try reader.optionalString(map, "index", prefix: "keywords") ?? "fts5"
        guard index == "fts5" else {
            throw reader.fail("keywords.index", "expected fts5 (got \"\(index)\")")
        }
        let name = try reader.optionalString(map, "tokenizer", prefix: "keywords") ?? Tokenizer.unicode61.rawValue
        guard let tokenizer = Tokenizer(rawValue: name) else {
            throw reader.fail("keywords.tokenizer", "expected one of \(Tokenizer.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(name)\")")
        }
        return KeywordSettings(tokenizer: tokenizer)
    }

    /// `meta.keywords`: `{"index":"fts5","tokenize":"…","tokenizer":"…"}`.
    var json: String { Report.encode(Meta(index: index, tokenizer: tokenizer.rawValue, tokenize: tokenizer.fts5)) }

    /// The settings a file's `meta.keywords` records; nil when absent or unreadable.
    static func decode(_ text: String?) -> KeywordSettings? {
        guard let data = text?.data(using: .utf8), let meta = try? JSONDecoder().decode(Meta.self, from: data),
              meta.index == "fts5", let tokenizer = Tokenizer(rawValue: meta.tokenizer) else { return nil }
        return KeywordSettings(tokenizer: tokenizer)
    }

    private struct Meta: Codable {
        var index: String
        var tokenizer: String
        var tokenize: String
    }
}
