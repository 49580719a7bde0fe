import Foundation
import Logging

/// `reindex rollback`: puts `<output>.prev` back in place atomically, under
/// the run lock. The file it replaces becomes the new `.prev`, so a second
/// rollback rolls forward again.
public enum Rollback {
    public static func run(job: JobConfig, logger: Logger) throws -> String {
        let paths = OutputPaths(output: job.output)
        let output = paths.output, prev = paths.prev
        guard FileOps.exists(prev) else {
            throw ReindexError.usage("rollback: there is no \(prev) to restore (it is kept by each successful publish) — nothing to roll back to; rebuild with `reindex --full` instead")
        }
        let lock = try RunLock(path: paths.lock)
        defer { lock.release() }
        let stale = OutputPaths.sidecars(of: output) + OutputPaths.sidecars(of: prev)
        guard stale.isEmpty else {
            throw ReindexError.staleSidecars(paths: stale, remedy: "find out who opened the vector file for writing and stop it, then move them aside; rollback refuses to rename over them")
        }
        let check: [String]
        do {
            let q = try LiveFile.open(prev)
            check = try q.read { db in try VectorFileCheck.quickCheck(db, schema: "main") }
            try q.close()
        } catch {
            throw ReindexError.inconsistent(detail: "\(prev) cannot be read (\(LiveFile.describe(error))); not restoring it — rebuild with `reindex --full` instead")
        }
        guard check == ["ok"] else {
            throw ReindexError.inconsistent(detail: "\(prev) fails quick_check (got \(check.joined(separator: "; "))); not restoring it — rebuild with `reindex --full` instead")
        }
        let swap = paths.rollbackSwap
        FileOps.remove(swap)
        let hadOutput = FileOps.exists(output)
        if hadOutput, link(output, swap) != 0 {
            try FileOps.copyFile(from: output, to: swap)
        }
        try FileOps.rename(prev, output)
        if hadOutput { try FileOps.rename(swap, prev) }
        try FileOps.fsyncDirectory(of: output)
        logger.info("rolled back", metadata: ["output": "\(output)"])
        return "restored \(prev) as \(output)" + (hadOutput ? "; the replaced file is now \(prev) (rollback again to undo)" : "")
    }
}
