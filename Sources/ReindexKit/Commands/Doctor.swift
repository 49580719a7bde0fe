import Foundation
import GRDB

/// `reindex doctor`: what the job would find and decide, for a person —
/// filesystems and the storage decision, sidecars, the lock, unfinished work,
/// the primary's journal mode. Reads only; creates nothing.
public enum Doctor {
    public static func report(job: JobConfig, options: RunOptions) -> String {
        var lines: [String] = ["reindex doctor for job \(job.name) (\(job.file))"]
        let reindexer = Reindexer(job: job, options: options, logger: .init(label: "doctor"))
        func fs(_ path: String) -> String { FileSystemProbe.probe(path)?.description ?? "unknown (statfs failed)" }
        let workDir = options.workDirectory ?? Reindexer.defaultWorkDirectory
        lines.append("  primary:   \(job.primary) — \(fs(job.primary))")
        lines.append("  output:    \(job.output) — \(fs(job.output))")
        lines.append("  work dir:  \(workDir) — \(fs(workDir))")
        let d = reindexer.storage
        lines.append("  decision:  build \(d.buildLocally ? "in the work directory, then copy beside the output" : "beside the output"), work file journal \(d.workWAL ? "WAL (local disk)" : "DELETE"); the published file is always DELETE mode")
        for note in d.notes { lines.append("    note: \(note)") }
        lines.append("  work file: \(reindexer.workPath)\(FileOps.exists(reindexer.workPath) ? " (unfinished work present: the next run resumes it if the job is unchanged)" : " (none)")")

        if FileManager.default.fileExists(atPath: job.primary) {
            var config = Configuration()
            config.readonly = true
            let mode = (try? DatabaseQueue(path: job.primary, configuration: config).read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }) ?? nil
            lines.append("  primary journal mode: \(mode ?? "unreadable")\(mode == "wal" ? " — every reader needs -wal/-shm beside it and working shared memory" : "")")
        } else {
            lines.append("  primary: MISSING")
        }
        let stale = FileOps.sidecars(of: job.output)
        lines.append(stale.isEmpty ? "  sidecars:  none beside the output (good)" : "  sidecars:  STALE \(stale.joined(separator: ", ")) — a run refuses them (exit 73); --force moves them aside")
        let lockPath = job.output + ".lock"
        if FileOps.exists(lockPath) {
            let fd = open(lockPath, O_RDONLY | O_CLOEXEC)
            var held = false
            if fd >= 0 {
                held = flock(fd, LOCK_SH | LOCK_NB) != 0
                close(fd)
            }
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            lines.append(held ? "  lock:      HELD by \(holder)" : "  lock:      free (last holder: \(holder.isEmpty ? "unknown" : holder))")
        } else {
            lines.append("  lock:      free")
        }
        lines.append("  previous:  \(FileOps.exists(job.output + ".prev") ? job.output + ".prev (reindex rollback restores it)" : "none")")
        return lines.joined(separator: "\n")
    }
}
