import Foundation
import Logging

/// What a scan read, per source, and the longest read transaction it held
/// on the primary (DESIGN.md invariant 2).
public struct ScanResult: Sendable {
    public var counts: [String: ScanCounts] = [:]
    public var longestRead: Duration = .zero
    public var scanned: Int { counts.values.reduce(0) { $0 + $1.scanned } }
}

/// scan: pages through every source of the job read-only and hands each page
/// to `stage`, outside any read transaction. One loop for runs (staging into
/// the work file), dry runs and `verify` (staging into a scratch database).
struct ScanStage {
    let job: JobConfig
    let scanner: any PrimarySource
    let logger: Logger

    func run(checkStop: () throws -> Void = {}, stage: (String, [ScannedRow]) async throws -> Void) async throws -> ScanResult {
        var result = ScanResult()
        for source in job.sources {
            result.counts[source.name] = try await scanner.scan(source, model: job.model, maxRowBytes: job.maxRowBytes) { rows in
                try checkStop()
                try await stage(source.name, rows)
            }
            logger.info("scanned", metadata: ["source": "\(source.name)", "rows": "\(result.counts[source.name]!.scanned)"])
        }
        result.longestRead = scanner.stats.longestReadTransaction
        return result
    }
}
