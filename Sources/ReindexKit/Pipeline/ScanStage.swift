import Foundation
import Logging

/// What a scan read, per source, and the longest read transaction it held
/// on the primary (DESIGN.md invariant 2).
public struct ScanResult: Sendable {
    public var counts: [String: ScanCounts] = [:]
    public var longestRead: Duration = .zero
    /// The `changed-column` watermark of each source that has one, read
    /// before its rows (the new file records it).
    public var watermarks: [String: Watermark] = [:]
    /// Sources read in part: `scan.rows` holds only the rows that may have
    /// changed, `scan.ids` every id.
    public var partial: [String: PartialRead] = [:]
    /// Sources read whole with each row flagged against the live file's
    /// watermark (the rows changed without the column moving are counted).
    public var flagged: Set<String> = []
    /// Whether the run publishes even without a change (`SourceScope.mustPublish`).
    public var mustPublish = false
    public var scanned: Int { counts.values.reduce(0) { $0 + $1.scanned } }
    /// Whether `scan.rows` holds only some rows of a source.
    public var isPartial: Bool { !partial.isEmpty }
}

/// How a source was read in part.
public enum PartialRead: Sendable, Equatable {
    /// The rows at or past the live file's `changed-column` watermark, plus every id.
    case since(Watermark)
    /// Every row hashed by the primary's SQLite (`PrimarySource.stageHashes`);
    /// the ones that differ from the live file read in full.
    case hashed
}

/// scan: pages through every source of the job read-only and hands each page
/// to `stage`, outside any read transaction. One loop for runs (staging into
/// the work file), dry runs and `verify` (staging into a scratch database).
struct ScanStage {
    let job: JobConfig
    let scanner: any PrimarySource
    let logger: Logger

    /// Every row of every source (dry runs, `verify`).
    func run(checkStop: () throws -> Void = {}, stage: @escaping @Sendable (String, [ScannedRow]) async throws -> Void) async throws -> ScanResult {
        var result = ScanResult()
        for source in job.sources {
            let name = source.name
            result.counts[source.name] = try await overlapped(source, filter: .all, checkStop: checkStop) { try await stage(name, $0) }
            logger.info("scanned", metadata: ["source": "\(source.name)", "rows": "\(result.counts[source.name]!.scanned)"])
        }
        result.longestRead = scanner.stats.longestReadTransaction
        return result
    }

    /// A run's scan into its work file, each source as `scopes` says (every
    /// row when absent). A source with a `changed-column` first reads its
    /// watermark; read in part, it then reads every id, flagged by the
    /// primary when the row's column is at or past the old watermark, and
    /// reads by id the flagged rows and the ones the live file lacks
    /// (`StagingArea.idsToRead`), 500 at a time: every read transaction is
    /// one page, whatever changed and whatever indexes the primary has.
    /// A source hashed in SQL reads by id, the same way, the rows whose hash
    /// or attributes differ from the live file's.
    func run(work: WorkFile, checkStop: () throws -> Void, scopes: [String: SourceScope]) async throws -> ScanResult {
        var result = ScanResult()
        for source in job.sources {
            let scope = scopes[source.name] ?? SourceScope(filter: .all)
            if let mark = try scanner.watermark(source) { result.watermarks[source.name] = mark }
            if scope.mustPublish { result.mustPublish = true }
            var counts = ScanCounts()
            try checkStop()
            if let since = scope.since {
                counts.ids = try await scanner.stageIDs(source, since: since, work: work)
                try work.collectIDsToRead(source: source.name)
                let read = try await readListed(source, work: work, checkStop: checkStop)
                counts.add(read)
                result.partial[source.name] = .since(since)
                logger.info("scanned the changed rows", metadata: ["source": "\(source.name)", "since": "\(since.column) >= \(since.value)",
                                                                   "rows": "\(counts.scanned)", "ids": "\(counts.ids)"])
            } else if scope.hashed, let hashed = try await scanner.stageHashes(source, model: job.model, maxRowBytes: job.maxRowBytes, work: work) {
                counts = hashed
                try work.collectChangedHashes(source: source.name)
                let read = try await readListed(source, work: work, checkStop: checkStop)
                try work.dropUnhashedIDs(source: source.name)
                // The rows read in full were counted by the hash pass; what the scan found in them was not.
                counts.add(ScanCounts(skipped: read.skipped, truncated: read.truncated, oversized: read.oversized))
                result.partial[source.name] = .hashed
                logger.info("hashed every row in SQL, read the ones that differ", metadata: ["source": "\(source.name)", "rows": "\(counts.scanned)",
                                                                                          "read": "\(read.scanned)"])
            } else {
                if case .allFlagging = scope.filter { result.flagged.insert(source.name) }
                if let reason = scope.reason { logger.info("reading every row", metadata: ["source": "\(source.name)", "reason": "\(reason)"]) }
                counts = try await scan(source, filter: scope.filter, work: work, checkStop: checkStop)
                logger.info("scanned", metadata: ["source": "\(source.name)", "rows": "\(counts.scanned)"])
            }
            result.counts[source.name] = counts
        }
        result.longestRead = scanner.stats.longestReadTransaction
        return result
    }

    /// Reads in full, by id, 500 at a time, the rows `temp.to_read` lists.
    private func readListed(_ source: JobConfig.Source, work: WorkFile, checkStop: () throws -> Void) async throws -> ScanCounts {
        var counts = ScanCounts()
        var after = ""
        while case let batch = try work.idsToRead(source: source.name, after: after, limit: 500), let last = batch.last {
            counts.add(try await scan(source, filter: .ids(batch.map(\.raw)), work: work, checkStop: checkStop))
            after = last.id
        }
        return counts
    }

    private func scan(_ source: JobConfig.Source, filter: ScanFilter, work: WorkFile, checkStop: () throws -> Void) async throws -> ScanCounts {
        let name = source.name
        return try await overlapped(source, filter: filter, checkStop: checkStop) { try await work.stage(source: name, rows: $0) }
    }

    /// Reads and hashes the next page while the last one is staged: the
    /// primary's connection and the staging file's run on threads of their
    /// own, so the two overlap on two cores. One page is staged at a time, in
    /// order, and at most two are held (each at most `pageBytes` of text).
    private func overlapped(_ source: JobConfig.Source, filter: ScanFilter, checkStop: () throws -> Void,
                            stage: @escaping @Sendable ([ScannedRow]) async throws -> Void) async throws -> ScanCounts {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var staging = false
            let counts = try await scanner.scan(source, model: job.model, maxRowBytes: job.maxRowBytes, filter: filter) { rows in
                try checkStop()
                if staging { try await group.next() }
                group.addTask { try await stage(rows) }
                staging = true
            }
            try await group.waitForAll()
            return counts
        }
    }
}
