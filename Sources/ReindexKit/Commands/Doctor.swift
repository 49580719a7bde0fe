import Foundation

/// `reindex doctor`: what the job would find and decide, for a person —
/// filesystems and the storage decision, sidecars, the lock, unfinished work,
/// the primary's journal mode. Reads only; creates nothing.
public enum Doctor {
    public static func report(job: JobConfig, workDirectory: String?) -> String {
        var lines: [String] = ["reindex doctor for job \(job.name) (\(job.file))"]
        let location = BuildLocation(job: job, workDirectory: workDirectory)
        let paths = location.paths
        func fs(_ path: String) -> String { FileSystemProbe.probe(path)?.description ?? "unknown (statfs failed)" }
        let workDir = location.workDirectory
        let postgres = PrimaryLocation.isPostgres(job.primary)
        lines.append(postgres ? "  primary:   \(PrimaryLocation.display(job.primary)) — PostgreSQL (read in read-only transactions, one page each)"
                              : "  primary:   \(job.primary) — \(fs(job.primary))")
        lines.append("  output:    \(job.output) — \(fs(job.output))")
        lines.append("  work dir:  \(workDir) — \(fs(workDir))")
        let d = location.storage
        lines.append("  decision:  build \(d.buildLocally ? "in the work directory, then copy beside the output" : "beside the output"), work file journal \(d.workWAL ? "WAL (local disk)" : "DELETE"); the published file is always DELETE mode")
        for note in d.notes { lines.append("    note: \(note)") }
        lines.append("  work file: \(location.workPath)\(FileOps.exists(location.workPath) ? " (unfinished work present: the next run resumes it if the job is unchanged)" : " (none)")")

        if postgres {
            // No journal mode or file to check: the server owns its storage.
        } else if FileManager.default.fileExists(atPath: job.primary) {
            let mode = try? SourceScanner(path: job.primary, logger: .init(label: "doctor")).journalMode()
            lines.append("  primary journal mode: \(mode ?? "unreadable")\(mode == "wal" ? " — every reader needs -wal/-shm beside it and working shared memory" : "")")
        } else {
            lines.append("  primary: MISSING")
        }
        let stale = OutputPaths.sidecars(of: paths.output)
        lines.append(stale.isEmpty ? "  sidecars:  none beside the output (good)" : "  sidecars:  STALE \(stale.joined(separator: ", ")) — a run refuses them (exit 73); --force moves them aside")
        let lockPath = paths.lock
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
        lines.append("  previous:  \(FileOps.exists(paths.prev) ? paths.prev + " (reindex rollback restores it)" : "none")")
        // derived files never more readable than the primary (DESIGN.md invariant 9).
        let wider = [paths.output, paths.prev].compactMap { FilePermissions.warning($0, primary: job.primary) }
        lines.append(wider.isEmpty ? "  permissions: no derived file is more readable than the primary (good)" : wider.map { "  permissions: WARNING \($0)" }.joined(separator: "\n"))
        return lines.joined(separator: "\n")
    }
}
