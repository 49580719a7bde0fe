import Foundation
import GRDB

/// Which rows of a source a scan reads: every row; every row, each flagged
/// by whether its `changed-column` is at or past a watermark (a full scan of
/// a source with the key: the rows that changed without being flagged are
/// the ones the column missed); or given ids (a `changed-column` run reads
/// the rows its id pass flagged, and the ones the live file lacks, by id).
/// The primary compares the values itself, with its own types.
public enum ScanFilter: Sendable, Equatable {
    case all
    case allFlagging(Watermark)
    case ids([DatabaseValue])

    /// An SQL fragment and the values of its parameters.
    struct Part<Value> {
        var sql: String
        var values: [Value]
    }

    /// The flag column (`1` when at or past the watermark), SQLite.
    var sqliteFlag: Part<DatabaseValue>? {
        guard case .allFlagging(let mark) = self else { return nil }
        return Part(sql: "CASE WHEN \(Watermark.identifier(mark.column)) >= ? THEN 1 ELSE 0 END", values: [mark.databaseValue])
    }

    /// The condition on the query's rows, SQLite.
    var sqliteCondition: Part<DatabaseValue>? {
        switch self {
        case .all, .allFlagging: return nil
        case .ids(let ids): return Part(sql: "id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))", values: ids)
        }
    }

    /// The flag column with PostgreSQL's parameter `$n`; the value goes as
    /// text, typed by the server from the column.
    func postgresFlag(_ n: Int) -> Part<String>? {
        guard case .allFlagging(let mark) = self else { return nil }
        return Part(sql: "CASE WHEN \(Watermark.identifier(mark.column)) >= $\(n) THEN 1 ELSE 0 END", values: [mark.value])
    }

    /// The condition with PostgreSQL's parameters from `$first`.
    func postgresCondition(first: Int) -> Part<String>? {
        switch self {
        case .all, .allFlagging: return nil
        case .ids(let ids):
            let marks = ids.indices.map { "$\(first + $0)" }.joined(separator: ", ")
            return Part(sql: "id IN (\(marks))", values: ids.map { SourceScanner.idString($0) ?? "" })
        }
    }
}
