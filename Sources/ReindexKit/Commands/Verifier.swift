import Foundation
import GRDB
import Logging

/// `reindex verify`: checks the live vector file against its contract
/// (`reindex-vectors/1`) and against the primary. Everything is read-only:
/// the primary through `SourceScanner`, the vector file attached with a
/// `mode=ro` URI to a private in-memory connection whose staging table is an
/// anonymous temp file, exactly as a dry run does, so nothing is created or
/// changed beside the output.
public final class Verifier: Sendable {
    public let job: JobConfig
    let sqliteVecPath: String?
    let logger: Logger
    let environment: [String: String]
    /// How many random `vec_items` rows are compared with their item.
    let vecSample: Int

    public init(job: JobConfig, sqliteVecPath: String?, logger: Logger, vecSample: Int = 256,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.job = job
        self.vecSample = vecSample
        self.sqliteVecPath = sqliteVecPath
        self.logger = logger
        self.environment = environment
    }

    public func run() async throws -> VerifyReport {
        try Reindexer.checkPaths(job)
        var report = VerifyReport(output: job.output)
        let path = job.output
        guard FileOps.exists(path) else {
            report.problem("no vector file at \(path) — run `reindex --job \(job.file)` to build it")
            return report
        }
        let sidecars = FileOps.sidecars(of: path)
        guard sidecars.isEmpty else {
            // Opening it now could make SQLite apply them (a hot journal) or create more.
            report.problem("SQLite sidecar files beside the vector file: \(sidecars.joined(separator: ", ")); the contract is a single rollback-journal file — the next run refuses them (see --force)")
            return report
        }
        if let header = Self.header(path) {
            report.problem(header)
            return report
        }

        let ext = try await VecIndex.locate(explicitPath: sqliteVecPath, environment: environment)
        if job.index == .vec0, ext == nil {
            throw ReindexError.usage("index: vec0: checking vec_items needs the sqlite-vec extension, and none was found — pass --sqlite-vec PATH/vec0.so or set SQLITE_VEC_PATH")
        }
        let scanner = try SourceScanner(path: job.primary, logger: logger)
        for source in job.sources { try scanner.validate(source) }

        let queue = try DatabaseQueue()
        defer { try? queue.close() }
        let vecVersion = try await queue.writeWithoutTransaction { db -> String? in
            let version = ext.flatMap { try? $0.load(into: db) }
            try VectorStore.attachScan(db)
            return version
        }
        if ext != nil, vecVersion == nil {
            report.note("sqlite-vec at \(ext!.path) did not load")
        }
        for source in job.sources {
            let counts = try await scanner.scan(source, model: job.model) { rows in
                try await VectorStore.stage(queue, source: source.name, rows: rows)
            }
            report.scanned += counts.scanned
        }
        do {
            try Planner.attachReadOnly(queue, path: path)
        } catch {
            report.problem("cannot open the vector file read-only: \(Planner.describe(error))")
            return report
        }
        defer { Planner.detachLive(queue) }
        do {
            let partial = report
            report = try await queue.read { db in
                var filled = partial
                try self.check(db, report: &filled, vecLoaded: vecVersion != nil)
                return filled
            }
        } catch let error as DatabaseError {
            report.problem("reading the vector file failed: \(error.message ?? "\(error)")")
        }
        return report
    }

    /// A file that is not a rollback-journal SQLite database is reported
    /// without being opened: a read-only open of a WAL file creates `-shm`.
    static func header(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "cannot read \(path)" }
        defer { try? handle.close() }
        let bytes = [UInt8](handle.readData(ofLength: 20))
        guard bytes.count == 20, bytes.starts(with: Array("SQLite format 3\0".utf8)) else {
            return "not an SQLite database (bad header)"
        }
        guard bytes[18] == 1, bytes[19] == 1 else {
            return "the file is in WAL mode (header bytes 18/19 = \(bytes[18])/\(bytes[19])); the contract is rollback-journal (DELETE) mode, readable on any filesystem — rebuild it with `reindex --full`"
        }
        return nil
    }

    func check(_ db: Database, report: inout VerifyReport, vecLoaded: Bool) throws {
        let quick = try String.fetchAll(db, sql: "PRAGMA live.quick_check(5)")
        guard quick == ["ok"] else {
            report.problem("quick_check failed: \(quick.prefix(3).joined(separator: "; "))")
            return
        }
        report.passed("quick_check")
        let tables = Set(try String.fetchAll(db, sql: "SELECT name FROM live.sqlite_schema WHERE type = 'table'"))
        let missingTables = ["meta", "items", "failures", "runs"].filter { !tables.contains($0) }
        guard missingTables.isEmpty else {
            report.problem("not a \(VectorStore.format) file: missing tables \(missingTables.joined(separator: ", "))")
            return
        }
        if tables.contains("work_state") || tables.contains("work_copied") {
            report.problem("work tables (work_state, work_copied) are present: an unfinished work file was published")
        }

        // meta
        var meta: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT key, value FROM live.meta") { meta[row[0]] = row[1] }
        let items = try Int.fetchOne(db, sql: "SELECT count(*) FROM live.items") ?? 0
        report.items = items
        let hasVec = tables.contains(VecIndex.table)
        let expected: [(String, String)] = [
            ("format", VectorStore.format), ("model", job.model.name), ("dimensions", String(job.model.dimensions)),
            ("distance", "cosine"), ("normalized", "l2"), ("item_count", String(items)),
            ("index", hasVec ? "vec0" : "none"),
        ]
        var metaOK = true
        for (key, value) in expected where meta[key] != value {
            if key == "index" && meta[key] == nil && !hasVec { continue }  // files from before the index existed
            metaOK = false
            report.problem("meta \(key) is \(meta[key].map { "\"\($0)\"" } ?? "missing"), expected \"\(value)\"")
        }
        if metaOK { report.passed("meta") }

        // every eligible row present with its current hash, nothing else
        let d = job.model.dimensions
        let problemsBeforeRows = report.problems.count
        for source in job.sources.map(\.name) + (try extraSources(db)) {
            var s = VerifyReport.SourceCheck(name: source)
            let inJob = job.sources.contains { $0.name == source }
            s.eligible = try Int.fetchOne(db, sql: "SELECT count(*) FROM scan.rows WHERE source = ?", arguments: [source]) ?? 0
            s.present = try Int.fetchOne(db, sql: """
                SELECT count(*) FROM scan.rows r JOIN live.items i ON i.source = r.source AND i.source_id = r.source_id
                WHERE r.source = ? AND i.content_hash = r.hash
                """, arguments: [source]) ?? 0
            s.missing = try ids(db, """
                SELECT r.source_id FROM scan.rows r WHERE r.source = ?
                  AND NOT EXISTS (SELECT 1 FROM live.items i WHERE i.source = r.source AND i.source_id = r.source_id)
                  AND NOT EXISTS (SELECT 1 FROM live.failures f WHERE f.source = r.source AND f.source_id = r.source_id)
                """, source)
            s.failed = try ids(db, """
                SELECT r.source_id FROM scan.rows r JOIN live.failures f ON f.source = r.source AND f.source_id = r.source_id
                WHERE r.source = ? AND NOT EXISTS (SELECT 1 FROM live.items i WHERE i.source = r.source AND i.source_id = r.source_id)
                """, source)
            s.stale = try ids(db, """
                SELECT r.source_id FROM scan.rows r JOIN live.items i ON i.source = r.source AND i.source_id = r.source_id
                WHERE r.source = ? AND i.content_hash != r.hash
                """, source)
            s.extra = try ids(db, """
                SELECT i.source_id FROM live.items i WHERE i.source = ?
                  AND NOT EXISTS (SELECT 1 FROM scan.rows r WHERE r.source = i.source AND r.source_id = i.source_id)
                """, source)
            if !inJob { report.problem("items of source \"\(source)\", which the job does not have: \(s.extra.count)") }
            for (what, list) in [("missing", s.missing), ("stale (content changed since embedded)", s.stale), ("extra (not in the primary)", s.extra)]
            where !list.ids.isEmpty && inJob {
                report.problem("\(source): \(list.count) \(what), e.g. \(list.ids.joined(separator: ", "))")
            }
            report.sources.append(s)
        }
        if report.problems.count == problemsBeforeRows { report.passed("rows") }

        // dimensions, finite unit vectors
        let wrongSize = try Int64.fetchAll(db, sql: "SELECT id FROM live.items WHERE typeof(embedding) != 'blob' OR length(embedding) != ? ORDER BY id LIMIT 5", arguments: [d * 4])
        if wrongSize.isEmpty {
            report.passed("dimensions")
            var buffer = [Float](repeating: 0, count: d)
            var bad: [String] = []
            var badCount = 0
            let rows = try Row.fetchCursor(db, sql: "SELECT source, source_id, embedding FROM live.items ORDER BY id")
            while let row = try rows.next() {
                let ok = try row.withUnsafeData(atIndex: 2) { data -> Bool in
                    guard let data else { return false }
                    buffer.withUnsafeMutableBytes { dst in data.withUnsafeBytes { dst.copyMemory(from: $0) } }
                    for x in buffer where !x.isFinite { return false }
                    let norm = buffer.withUnsafeBufferPointer { VectorNormalizer.norm($0) }
                    return norm.isFinite && abs(norm - 1) <= 1e-4
                }
                if !ok {
                    badCount += 1
                    if bad.count < 5 { bad.append("\(row[0] as String)/\(row[1] as String)") }
                }
            }
            if badCount == 0 { report.passed("unit vectors") } else {
                report.problem("\(badCount) items are not finite unit vectors, e.g. \(bad.joined(separator: ", "))")
            }
        } else {
            report.problem("items with an embedding that is not \(d) float32 values (\(d * 4) bytes), ids: \(wrongSize.map(String.init).joined(separator: ", "))")
        }

        // vec_items
        report.vecIndex = hasVec
        switch (job.index, hasVec) {
        case (.vec0, false):
            report.problem("the job has `index: vec0` but the file has no vec_items — run `reindex --job \(job.file)`")
        case (.none, true):
            report.problem("the job has `index: none` but the file has vec_items — the next run removes it")
        default: break
        }
        if hasVec {
            if vecLoaded {
                let problems = try VecIndex.check(db, schema: "live", sample: vecSample)
                for p in problems { report.problem(p) }
                if problems.isEmpty { report.passed("vec_items") }
                report.vecChecked = true
            } else {
                report.note("vec_items not checked: the sqlite-vec extension was not found or did not load (pass --sqlite-vec or set SQLITE_VEC_PATH)")
            }
        }
    }

    func extraSources(_ db: Database) throws -> [String] {
        let names = try String.fetchAll(db, sql: "SELECT DISTINCT source FROM live.items ORDER BY source")
        return names.filter { name in !job.sources.contains { $0.name == name } }
    }

    func ids(_ db: Database, _ sql: String, _ source: String) throws -> VerifyReport.IDList {
        let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM (\(sql))", arguments: [source]) ?? 0
        let sample = try String.fetchAll(db, sql: "\(sql) ORDER BY 1 LIMIT 5", arguments: [source])
        return VerifyReport.IDList(count: count, ids: sample)
    }
}
