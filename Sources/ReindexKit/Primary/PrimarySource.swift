import Foundation
import GRDB
import Logging

/// The application's primary database, as the pipeline reads it: keyset-paged
/// scans of the source queries in short read-only transactions (DESIGN.md
/// invariants 1 and 2), one row's text for search, and the longest read
/// transaction seen. `SourceScanner` reads an SQLite file, `PostgresSource` a
/// PostgreSQL server (`primary: postgresql://…`, issue 16).
public protocol PrimarySource: AnyObject, Sendable {
    /// Longest read transaction seen (reported, and tested against invariant 2).
    var stats: ScanStats { get }
    /// Scans one source page by page; `consume` receives each page's eligible
    /// rows outside any read transaction. A text over `maxRowBytes` is not
    /// loaded: its row comes with `oversizedBytes` set.
    /// `filter` narrows the rows read (`changed-column` scans).
    func scan(_ source: JobConfig.Source, model: ModelConfig, maxRowBytes: Int, filter: ScanFilter,
              consume: ([ScannedRow]) async throws -> Void) async throws -> ScanCounts
    /// The id pass of a `changed-column` scan, into the run's staging
    /// (`scan.ids`): every id whose text is not blank, without the texts, as
    /// the primary returned it, flagged when the row's column is at or past
    /// `since`, in short read transactions; returns how many.
    func stageIDs(_ source: JobConfig.Source, since: Watermark, work: WorkFile) async throws -> Int
    /// The hash pass of a run that applies its delta to a clone: every id
    /// with its row's hash and attributes into `scan.ids`, hashed by the
    /// primary's engine (no hash: a row to read in full); nil when this
    /// primary cannot, and the source is read whole.
    func stageHashes(_ source: JobConfig.Source, model: ModelConfig, maxRowBytes: Int, work: WorkFile) async throws -> ScanCounts?
    /// The highest `changed-column` value before the scan; nil without the
    /// key or rows.
    func watermark(_ source: JobConfig.Source) throws -> Watermark?
    /// The text of one row (search results), in one short read; nil when gone.
    func text(_ source: JobConfig.Source, id: String) throws -> String?
}

/// One id of the id pass, as the primary returned it, and whether its
/// row's `changed-column` is at or past the watermark.
public struct FlaggedID: Sendable {
    public var raw: DatabaseValue
    public var flagged: Bool
}

/// Where the primary is: an SQLite file path, or a libpq connection URI.
public enum PrimaryLocation {
    /// `postgresql://…` or `postgres://…`: a PostgreSQL primary.
    public static func isPostgres(_ primary: String) -> Bool {
        let lower = primary.lowercased()
        return lower.hasPrefix("postgresql://") || lower.hasPrefix("postgres://")
    }

    /// The primary as messages may show it: a URI without its password (in
    /// the user part or a `password=` parameter); a path unchanged.
    public static func display(_ primary: String) -> String {
        guard isPostgres(primary) else { return primary }
        guard let scheme = primary.range(of: "://") else { return primary }
        var rest = String(primary[scheme.upperBound...])
        // user:password@host — the authority ends at the first '/', '?' or '#'.
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") {
            let user = authority[..<at]
            let name = user.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            rest = name + String(rest[at...])
        }
        if let q = rest.firstIndex(of: "?") {
            let head = rest[..<q]
            let params = rest[rest.index(after: q)...].split(separator: "&").filter { !$0.lowercased().hasPrefix("password=") }
            rest = params.isEmpty ? String(head) : head + "?" + params.joined(separator: "&")
        }
        return String(primary[..<scheme.upperBound]) + rest
    }

    /// Opens the job's primary and checks every source query before any work.
    public static func open(job: JobConfig, logger: Logger) throws -> any PrimarySource {
        if isPostgres(job.primary) { return try PostgresSource(job: job, logger: logger) }
        return try SourceScanner(job: job, logger: logger)
    }

    /// Opens the primary without checking the queries (search reads single rows).
    public static func open(_ primary: String, logger: Logger) throws -> any PrimarySource {
        if isPostgres(primary) { return try PostgresSource(uri: primary, logger: logger) }
        return try SourceScanner(path: primary, logger: logger)
    }
}

extension PrimarySource {
    /// Every row of the source.
    public func scan(_ source: JobConfig.Source, model: ModelConfig, maxRowBytes: Int,
                     consume: ([ScannedRow]) async throws -> Void) async throws -> ScanCounts {
        try await scan(source, model: model, maxRowBytes: maxRowBytes, filter: .all, consume: consume)
    }
}
