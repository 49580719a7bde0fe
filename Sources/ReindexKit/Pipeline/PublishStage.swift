import Foundation
import Logging

/// publish (DESIGN.md invariant 3): the checked file gets its meta and run
/// record, is switched to rollback-journal mode, closed and fsynced, copied
/// beside the output when it was built elsewhere, and renamed over the
/// output; the directory is fsynced; the previous file stays as
/// `<output>.prev`. Until the rename, the live file is untouched.
struct PublishStage {
    let location: BuildLocation
    let logger: Logger

    func run(work: WorkFile, meta: VectorFileMeta, record: RunRecord) throws {
        try work.finalize(meta: meta, run: record)
        CrashPoint.reached("finalize")
        if location.storage.buildLocally {
            logger.info("copying the new file beside the output", metadata: ["from": "\(location.workPath)", "to": "\(location.publishPath)"])
            try FileOps.copyFile(from: location.workPath, to: location.publishPath)
        }
        try Self.rename(location.publishPath, over: location.paths, runID: record.runID, logger: logger)
        Checkpoint.discard(location.workPath)
    }

    /// Renames the finished file over the output, keeping the old one as `.prev`.
    /// A marker (`<output>.work-publishing`, holding the run id) exists from
    /// just before the rename until the directory is fsynced, so a run killed
    /// right after the rename is known to have published and is not redone.
    static func rename(_ file: String, over paths: OutputPaths, runID: String, logger: Logger) throws {
        let stale = OutputPaths.sidecars(of: paths.output)
        guard stale.isEmpty else {
            throw ReindexError.staleSidecars(paths: stale, remedy: "they appeared during the run: another process opened the vector file for writing — stop it, then rerun with --force")
        }
        do { try Data((runID + "\n").utf8).write(to: URL(fileURLWithPath: paths.publishing)) } catch {
            throw ReindexError.io(path: paths.publishing, detail: "cannot write the publish marker (\(error.localizedDescription)) — check the output directory's permissions and free space")
        }
        try FileOps.fsyncFile(paths.publishing)
        if FileOps.exists(paths.output) {
            try FileOps.keepPrevious(paths.output, as: paths.prev, via: paths.prevInProgress)
        }
        CrashPoint.reached("prev")
        try FileOps.rename(file, paths.output)
        CrashPoint.reached("rename")
        try FileOps.fsyncDirectory(of: paths.output)
        FileOps.remove(paths.publishing)
        logger.info("published", metadata: ["output": "\(paths.output)"])
    }

    /// After a crash between rename and cleanup: true when the live file is
    /// the one the interrupted run published (the marker names its run id).
    static func finishInterrupted(paths: OutputPaths, logger: Logger) throws -> Bool {
        guard let runID = try? String(contentsOfFile: paths.publishing, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) else { return false }
        defer { FileOps.remove(paths.publishing) }
        guard !FileOps.exists(paths.work), OutputPaths.sidecars(of: paths.output).isEmpty else { return false }
        guard LiveFile.runID(paths.output) == runID else { return false }
        try FileOps.fsyncDirectory(of: paths.output)
        logger.notice("the interrupted run had already published the output; this run picks up only what changed since", metadata: ["run_id": "\(runID)"])
        return true
    }
}
