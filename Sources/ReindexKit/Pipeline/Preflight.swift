import Foundation
import Logging

/// Everything a run checks and takes before it reads a row: the output is
/// not the primary, every source query is usable, the index can be built as
/// the job asks, the lock, stale sidecars, a publish that a crash
/// interrupted, and where the new file is built. Fails before any work.
struct Preflight {
    let job: JobConfig
    let options: RunOptions
    let environment: [String: String]
    let logger: Logger

    struct Ready {
        var scanner: any PrimarySource
        var index: VecIndex.Plan
        var lock: RunLock
        var location: BuildLocation
        /// A crash right after the rename of an earlier run was cleaned up: its
        /// file is the live one, and this run only picks up what changed since
        /// (incremental, even for `--full`: the full rebuild is done).
        var finishedInterruptedPublish = false
    }

    func run() async throws -> Ready {
        let paths = OutputPaths(output: job.output)
        try paths.refuseSameFile(asPrimary: job.primary)
        let scanner = try PrimaryLocation.open(job: job, logger: logger)
        if let keywords = job.keywords { try KeywordIndex.probe(keywords) }
        let index = try await VecIndex.resolve(mode: job.index, explicitPath: options.sqliteVecPath, environment: environment, logger: logger)
        try FileOps.makeDirectory(forFile: job.output)
        let lock = try RunLock(path: paths.lock)
        try moveStaleSidecars(paths)
        let location = BuildLocation(job: job, workDirectory: options.workDirectory)
        let finished = try PublishStage.finishInterrupted(paths: paths, logger: logger)
        logger.info("storage", metadata: [
            "output_fs": "\(FileSystemProbe.probe(job.output)?.description ?? "?")",
            "primary_fs": "\(FileSystemProbe.probe(job.primary)?.description ?? "?")",
            "build": "\(location.storage.buildLocally ? "local work directory, then copy" : "beside the output")",
            "work_journal": "\(location.storage.workWAL ? "wal" : "delete")",
        ])
        for note in location.storage.notes { logger.notice("\(note)") }
        // Leftovers of a crash that can no longer be resumed.
        FileOps.remove(paths.prevInProgress)
        if location.storage.buildLocally { Checkpoint.discard(location.publishPath) }
        return Ready(scanner: scanner, index: index, lock: lock, location: location, finishedInterruptedPublish: finished)
    }

    /// Moves stale sidecars aside with --force, else refuses (exit 73).
    private func moveStaleSidecars(_ paths: OutputPaths) throws {
        let stale = OutputPaths.sidecars(of: paths.output)
        guard !stale.isEmpty else { return }
        guard options.force else {
            throw ReindexError.staleSidecars(paths: stale, remedy: "find out who opened the vector file for writing, or rerun with --force to move them aside")
        }
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let dir = paths.staleDirectory(stamp: stamp)
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw ReindexError.io(path: dir, detail: "cannot create a directory for the stale sidecars (\(error.localizedDescription)) — check the output directory's permissions")
        }
        for path in stale {
            try FileOps.rename(path, dir + "/" + (path as NSString).lastPathComponent)
        }
        logger.warning("--force: moved stale sidecar files aside", metadata: ["to": "\(dir)", "files": "\(stale.count)"])
    }
}
