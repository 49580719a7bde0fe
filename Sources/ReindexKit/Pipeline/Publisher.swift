import Foundation
import GRDB
import Logging

/// verify → publish (DESIGN.md invariant 3): the new file is checked,
/// switched to rollback-journal mode, closed, fsynced and renamed over the
/// output; the directory is fsynced; the previous file stays as
/// `<output>.prev`. Until the rename, the live file is untouched.
public enum Publisher {
    /// Checks the work file before it may replace anything.
    public static func verify(_ store: VectorStore, expectedItems: Int) throws {
        let d = store.dimensions
        try store.queue.read { db in
            let check = try String.fetchAll(db, sql: "PRAGMA main.quick_check(5)")
            guard check == ["ok"] else { throw ReindexError.verification(detail: "quick_check: \(check.joined(separator: "; "))") }
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM items") ?? -1
            guard count == expectedItems else {
                throw ReindexError.verification(detail: "expected \(expectedItems) items (rows scanned − skipped − failed), the file has \(count)")
            }
            // One pass over the vectors checks shape and norm (a separate
            // count(*) of wrong shapes read the whole file once more).
            var bad = 0
            var notUnit: String?
            var buffer = [Float](repeating: 0, count: d)
            let rows = try Row.fetchCursor(db, sql: "SELECT source, source_id, embedding, typeof(embedding) = 'blob' AND length(embedding) = ? FROM items",
                                           arguments: [d * 4])
            while let row = try rows.next() {
                guard row[3] as Bool else { bad += 1; continue }
                guard notUnit == nil else { continue }
                let ok = try row.withUnsafeData(atIndex: 2) { data -> Bool in
                    guard let data else { return false }
                    buffer.withUnsafeMutableBytes { dst in data.withUnsafeBytes { dst.copyMemory(from: $0) } }
                    let norm = buffer.withUnsafeBufferPointer { VectorNormalizer.norm($0) }
                    return norm.isFinite && abs(norm - 1) <= 1e-4
                }
                if !ok { notUnit = "\(row[0] as String) \(row[1] as String)" }
            }
            guard bad == 0 else { throw ReindexError.verification(detail: "\(bad) items do not have \(d) float32 dimensions") }
            if let notUnit {
                throw ReindexError.verification(detail: "item \(notUnit) is not a finite unit vector")
            }
            if try VecIndex.exists(db, schema: "main") {
                let problems = try VecIndex.check(db, schema: "main", sample: 64)
                guard problems.isEmpty else { throw ReindexError.verification(detail: problems.joined(separator: "; ")) }
            }
        }
    }

    public static func markerPath(_ output: String) -> String { output + ".work-publishing" }

    /// After a crash between rename and cleanup: true when the live file is
    /// the one the interrupted run published (the marker names its run id).
    public static func finishInterruptedPublish(output: String, work: String, logger: Logger) throws -> Bool {
        let marker = markerPath(output)
        guard let runID = try? String(contentsOfFile: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) else { return false }
        defer { FileOps.remove(marker) }
        guard !FileOps.exists(work), FileOps.sidecars(of: output).isEmpty else { return false }
        var config = Configuration()
        config.readonly = true
        guard let queue = try? DatabaseQueue(path: Planner.uri(readOnly: output), configuration: config) else { return false }
        defer { try? queue.close() }
        let liveRunID = try? queue.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'run_id'") }
        guard liveRunID == runID else { return false }
        try FileOps.fsyncDirectory(of: output)
        logger.notice("the interrupted run had already published the output; nothing left to do", metadata: ["run_id": "\(runID)"])
        return true
    }

    /// Writes meta and the run record, drops the work tables and leaves the
    /// file closed, in DELETE journal mode, with no sidecar.
    public static func finalize(_ store: VectorStore, meta: [String: String], run: RunSummary, startedAt: Int64) throws {
        do {
            try store.queue.write { db in
                try db.execute(sql: "DELETE FROM meta")
                for (k, v) in meta.sorted(by: { $0.key < $1.key }) {
                    try db.execute(sql: "INSERT INTO meta(key, value) VALUES (?, ?)", arguments: [k, v])
                }
                try db.execute(sql: """
                    INSERT OR REPLACE INTO runs(run_id, mode, full_reason, started_at, finished_at, scanned, skipped, embedded,
                        reused, removed, failed, requests, duration_s, items_per_s)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [run.runID, run.mode, run.fullReason, startedAt, Int64(Date().timeIntervalSince1970),
                                     run.scanned, run.skipped, run.embedded, run.reused, run.removed, run.failed,
                                     run.requests, run.durationSeconds, run.embedded > 0 ? run.itemsPerSecond : nil])
                try db.execute(sql: "DROP TABLE IF EXISTS work_state; DROP TABLE IF EXISTS work_copied")
            }
            try store.queue.writeWithoutTransaction { db in
                for name in try String.fetchAll(db, sql: "SELECT name FROM pragma_database_list WHERE name NOT IN ('main', 'temp')") {
                    try db.execute(sql: "DETACH DATABASE \(name.quotedDatabaseIdentifier)")
                }
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
                let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE")
                guard mode?.lowercased() == "delete" else {
                    throw ReindexError.verification(detail: "could not switch the new file to DELETE journal mode (got \(mode ?? "nil"))")
                }
            }
            try store.queue.close()
        } catch let error as DatabaseError {
            throw ReindexError.io(path: store.path, detail: "finishing the new file failed: \(error.message ?? "\(error)")")
        }
        let left = FileOps.sidecars(of: store.path)
        guard left.isEmpty else {
            throw ReindexError.verification(detail: "sidecar files remain after closing the new file: \(left.joined(separator: ", "))")
        }
        try FileOps.fsyncFile(store.path)
    }

    /// Renames the finished file over the output, keeping the old one as `.prev`.
    /// A marker (`<output>.work-publishing`, holding the run id) exists from
    /// just before the rename until the directory is fsynced, so a run killed
    /// right after the rename is known to have published and is not redone.
    public static func publish(work: String, output: String, runID: String, logger: Logger) throws {
        let stale = FileOps.sidecars(of: output)
        guard stale.isEmpty else { throw ReindexError.staleSidecars(paths: stale) }
        let marker = markerPath(output)
        do { try Data((runID + "\n").utf8).write(to: URL(fileURLWithPath: marker)) } catch {
            throw ReindexError.io(path: marker, detail: "cannot write: \(error.localizedDescription)")
        }
        try FileOps.fsyncFile(marker)
        if FileOps.exists(output) {
            try FileOps.keepPrevious(output, as: output + ".prev")
        }
        CrashPoint.reached("prev")
        try FileOps.rename(work, output)
        CrashPoint.reached("rename")
        try FileOps.fsyncDirectory(of: output)
        FileOps.remove(marker)
        logger.info("published", metadata: ["output": "\(output)"])
    }
}
