import Crypto
import Foundation
import Logging

/// The resumable state of an unfinished run: the work file and the identity
/// of the job it belongs to. A work file is only resumed by the same job
/// (same sources, model, dimensions, provider, prefix, format); anything
/// else starts over, so foreign vectors can never leak into a file.
public struct Checkpoint {
    public var store: VectorStore
    public var resumed: Bool
    public var runID: String
    public var startedAt: Int64
    public var previousMode: String?

    public static func fingerprint(_ job: JobConfig) -> String {
        var h = SHA256()
        func add(_ s: String) { h.update(data: Data(s.utf8)); h.update(data: Data([0])) }
        add(VectorStore.format)
        for s in job.sources { add(s.name); add(s.query) }
        add(job.model.provider.rawValue)
        add(job.model.name)
        add(String(job.model.dimensions))
        add(job.model.prefix)
        add(String(job.model.maxInputChars))
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Work files of an output: the file being built and SQLite's sidecars of it.
    public static func workFiles(_ workPath: String) -> [String] {
        [workPath, workPath + "-journal", workPath + "-wal", workPath + "-shm"]
    }

    public static func discard(_ workPath: String) {
        for f in workFiles(workPath) { FileOps.remove(f) }
    }

    /// A run killed between finalizing and renaming leaves a complete file
    /// whose private tables are gone; its meta still names the job. Adopt it
    /// rather than pay for every vector again — unless a full run would
    /// inherit vectors an incremental run copied from an old file.
    static func adoptFinished(_ store: VectorStore, fingerprint: String, mode: String, logger: Logger) throws -> Checkpoint? {
        let found = try store.queue.read { db -> (String?, String?, Int) in
            let fp = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'source_fingerprint'")
            let lastMode = try String.fetchOne(db, sql: "SELECT r.mode FROM runs r JOIN meta m ON m.key = 'run_id' AND m.value = r.run_id")
            let items = try Int.fetchOne(db, sql: "SELECT count(*) FROM items") ?? 0
            return (fp, lastMode, items)
        }
        guard found.2 > 0, found.0 == fingerprint, mode == "incremental" || found.1 == "full" else { return nil }
        let runID = UUID().uuidString.lowercased()
        let started = Int64(Date().timeIntervalSince1970)
        try store.setWorkState(["fingerprint": fingerprint, "run_id": runID, "started_at": String(started), "mode": mode])
        logger.notice("resuming a finished but unpublished work file", metadata: ["work": "\(store.path)"])
        return Checkpoint(store: store, resumed: true, runID: runID, startedAt: started, previousMode: found.1)
    }

    /// Opens the work file, resuming it when it belongs to this job.
    public static func open(workPath: String, job: JobConfig, mode: String, restart: Bool, wal: Bool, logger: Logger) throws -> Checkpoint {
        let fingerprint = Self.fingerprint(job)
        if restart, FileOps.exists(workPath) {
            logger.notice("--restart: discarding the unfinished work", metadata: ["work": "\(workPath)"])
            discard(workPath)
        }
        var store: VectorStore
        var state: [String: String] = [:]
        if FileOps.exists(workPath) {
            do {
                store = try VectorStore(path: workPath, dimensions: job.model.dimensions, wal: wal)
                state = try store.workState()
            } catch {
                logger.warning("the unfinished work file is unreadable; starting over", metadata: ["work": "\(workPath)", "error": "\(error)"])
                discard(workPath)
                store = try VectorStore(path: workPath, dimensions: job.model.dimensions, wal: wal)
            }
            if !state.isEmpty && state["fingerprint"] != fingerprint {
                logger.notice("the unfinished work belongs to another job configuration (sources, model, dimensions, provider or prefix changed); starting over",
                              metadata: ["work": "\(workPath)"])
                try? store.queue.close()
                discard(workPath)
                store = try VectorStore(path: workPath, dimensions: job.model.dimensions, wal: wal)
                state = [:]
            }
        } else {
            store = try VectorStore(path: workPath, dimensions: job.model.dimensions, wal: wal)
        }
        if state.isEmpty, let adopted = try adoptFinished(store, fingerprint: fingerprint, mode: mode, logger: logger) {
            return adopted
        }
        if state.isEmpty, try store.queue.read({ db in try Int.fetchOne(db, sql: "SELECT count(*) FROM items") ?? 0 }) > 0 {
            logger.notice("the unfinished work file cannot be matched to this job; starting over", metadata: ["work": "\(workPath)"])
            try? store.queue.close()
            discard(workPath)
            store = try VectorStore(path: workPath, dimensions: job.model.dimensions, wal: wal)
        }
        if let runID = state["run_id"], let started = state["started_at"].flatMap(Int64.init) {
            logger.notice("resuming the unfinished run", metadata: ["run_id": "\(runID)"])
            return Checkpoint(store: store, resumed: true, runID: runID, startedAt: started, previousMode: state["mode"])
        }
        let runID = UUID().uuidString.lowercased()
        let started = Int64(Date().timeIntervalSince1970)
        try store.setWorkState(["fingerprint": fingerprint, "run_id": runID, "started_at": String(started), "mode": mode, "job": job.name])
        return Checkpoint(store: store, resumed: false, runID: runID, startedAt: started, previousMode: nil)
    }
}
