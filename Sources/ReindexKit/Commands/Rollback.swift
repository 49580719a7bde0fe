import Foundation
import GRDB
import Logging

/// `reindex rollback`: puts `<output>.prev` back in place atomically, under
/// the run lock. The file it replaces becomes the new `.prev`, so a second
/// rollback rolls forward again.
public enum Rollback {
    public static func run(job: JobConfig, logger: Logger) throws -> String {
        let output = job.output, prev = job.output + ".prev"
        guard FileOps.exists(prev) else {
            throw ReindexError.usage("rollback: there is no \(prev) to restore (it is kept by each successful publish)")
        }
        let lock = try RunLock(output: output)
        defer { lock.release() }
        let stale = FileOps.sidecars(of: output) + FileOps.sidecars(of: prev)
        guard stale.isEmpty else { throw ReindexError.staleSidecars(paths: stale) }
        var config = Configuration()
        config.readonly = true
        let check: [String]
        do {
            let q = try DatabaseQueue(path: Planner.uri(readOnly: prev), configuration: config)
            check = try q.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check(3)") }
            try q.close()
        } catch {
            throw ReindexError.inconsistent(detail: "\(prev) cannot be read (\(error)); not restoring it")
        }
        guard check == ["ok"] else { throw ReindexError.inconsistent(detail: "\(prev) fails quick_check (\(check.joined(separator: "; "))); not restoring it") }
        let swap = output + ".work-rollback"
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
