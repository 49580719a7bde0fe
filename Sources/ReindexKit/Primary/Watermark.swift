import Foundation
import GRDB

/// The highest value of a source's `changed-column` a run saw before it
/// started reading rows (`SELECT max(column)`): the next incremental run
/// reads only the rows at or past it. Taken before the scan, so a row
/// written during the scan is read again by the next run, never missed.
/// Kept with its column and SQL type, so it is compared exactly as read.
public struct Watermark: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case integer, real, text }
    public var column: String
    public var kind: Kind
    public var value: String

    public init(column: String, kind: Kind, value: String) {
        self.column = column
        self.kind = kind
        self.value = value
    }

    /// The watermark of a value as SQLite returned it; nil for NULL (an
    /// empty source) and blobs (not an order a user can rely on).
    init?(column: String, _ value: DatabaseValue) {
        switch value.storage {
        case .int64(let i): self.init(column: column, kind: .integer, value: String(i))
        case .double(let d): self.init(column: column, kind: .real, value: String(d))
        case .string(let s): self.init(column: column, kind: .text, value: s)
        case .null, .blob: return nil
        }
    }

    /// The value to bind, of the type it was read as.
    var databaseValue: DatabaseValue {
        switch kind {
        case .integer: return Int64(value).map { $0.databaseValue } ?? value.databaseValue
        case .real: return Double(value).map { $0.databaseValue } ?? value.databaseValue
        case .text: return value.databaseValue
        }
    }

    /// A column name as an SQL identifier (the job file refuses names with `"`).
    static func identifier(_ column: String) -> String { "\"\(column)\"" }

    /// `meta.watermarks`: JSON `{"<source>": {"column", "kind", "value"}}`.
    static func encode(_ marks: [String: Watermark]) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard !marks.isEmpty, let data = try? encoder.encode(marks) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ text: String?) -> [String: Watermark] {
        guard let text, let marks = try? JSONDecoder().decode([String: Watermark].self, from: Data(text.utf8)) else { return [:] }
        return marks
    }
}
