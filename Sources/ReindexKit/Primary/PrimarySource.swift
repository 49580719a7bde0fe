import Foundation
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
    func scan(_ source: JobConfig.Source, model: ModelConfig, maxRowBytes: Int,
              consume: ([ScannedRow]) async throws -> Void) async throws -> ScanCounts
    /// The text of one row (search results), in one short read; nil when gone.
    func text(_ source: JobConfig.Source, id: String) throws -> String?
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
