import Foundation
import GRDB
import Logging

/// `reindex verify`: checks the live vector file against its contract and
/// against the primary. Everything is read-only: the primary through
/// `SourceScanner`, the vector file attached through `LiveFile` to a private
/// in-memory connection whose staging table is an anonymous temp file,
/// exactly as a dry run does, so nothing is created or changed beside the
/// output.
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
        let paths = OutputPaths(output: job.output)
        try paths.refuseSameFile(asPrimary: job.primary)
        var report = VerifyReport(output: job.output)
        let path = job.output
        guard FileOps.exists(path) else {
            report.problem("no vector file at \(path) — run `reindex --job \(job.file)` to build it")
            return report
        }
        let sidecars = OutputPaths.sidecars(of: path)
        guard sidecars.isEmpty else {
            // Opening it now could make SQLite apply them (a hot journal) or create more.
            report.problem("SQLite sidecar files beside the vector file (got \(sidecars.joined(separator: ", "))); the contract is a single rollback-journal file — the next run refuses them (see --force)")
            return report
        }
        if let header = LiveFile.headerProblem(path) {
            report.problem(header)
            return report
        }

        let ext = try await VecIndex.locate(explicitPath: sqliteVecPath, environment: environment)
        if job.index == .vec0, ext == nil {
            throw ReindexError.usage("index: vec0: checking vec_items needs the sqlite-vec extension, and none was found — pass --sqlite-vec PATH/vec0.so or set SQLITE_VEC_PATH")
        }
        let scanner = try PrimaryLocation.open(job: job, logger: logger)
        let scratch = try ScratchComparison(attributes: job.attributes)
        defer { scratch.close() }
        var vecVersion: String?
        if let ext { vecVersion = try? await scratch.load(ext) }
        if let ext, vecVersion == nil {
            report.note("sqlite-vec at \(ext.path) did not load")
        }
        let scans = try await ScanStage(job: job, scanner: scanner, logger: logger).run { try await scratch.stage(source: $0, rows: $1) }
        report.scanned = scans.scanned
        let attributeColumns = try scratch.attributeColumns()
        do {
            try scratch.attachLiveForChecking(path: path)
            // Every page is read below: once in file order first (`FilePrefetch`).
            FilePrefetch.sequential(path: path)
        } catch {
            report.problem("cannot open the vector file read-only: \(LiveFile.describe(error)) — check its permissions, or rebuild it with `reindex --full`")
            return report
        }
        do {
            let partial = report
            report = try scratch.read { db in
                var filled = partial
                try self.check(db, report: &filled, vecLoaded: vecVersion != nil, attributeColumns: attributeColumns)
                return filled
            }
        } catch let error as DatabaseError {
            report.problem("reading the vector file failed: \(error.message ?? "\(error)") — rebuild it with `reindex --full`")
        }
        return report
    }

    func check(_ db: Database, report: inout VerifyReport, vecLoaded: Bool, attributeColumns: [AttributeColumn] = []) throws {
        let live = LiveFile.schema
        let quick = try VectorFileCheck.quickCheck(db, schema: live)
        guard quick == ["ok"] else {
            report.problem("quick_check failed (got \(quick.prefix(3).joined(separator: "; "))) — rebuild it with `reindex --full`, or `reindex rollback`")
            return
        }
        report.passed("quick_check")
        let tables = try VectorFileCheck.tables(db, schema: live)
        let missingTables = VectorFileFormat.publishedTables.filter { !tables.contains($0) }
        guard missingTables.isEmpty else {
            report.problem("not a \(VectorFileFormat.version) file: missing tables \(missingTables.joined(separator: ", ")) — rebuild it with `reindex --full`")
            return
        }
        let leftovers = VectorFileFormat.workTables.filter(tables.contains)
        if !leftovers.isEmpty {
            report.problem("work tables (\(leftovers.joined(separator: ", "))) are present: an unfinished work file was published — rebuild it with `reindex --full`")
        }

        // meta
        let meta = try VectorFileMeta.read(db, schema: live)
        if meta[.format] == VectorFileFormat.previousVersion {
            report.problem("the file is \(VectorFileFormat.previousVersion) (got format \(VectorFileFormat.previousVersion)) — the next run upgrades it to \(VectorFileFormat.version), re-embedding only rows that now have several chunks")
            return
        }
        let items = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(live).items") ?? 0
        report.items = items
        let hasVec = tables.contains(VecIndex.table)
        let expected: [(MetaKey, String)] = [
            (.format, VectorFileFormat.version), (.model, job.model.name), (.dimensions, String(job.model.dimensions)),
            (.distance, VectorFileFormat.distance), (.normalized, VectorFileFormat.normalized), (.itemCount, String(items)),
            (.rowCount, String(try VectorFileCheck.rowCount(db, schema: live))),
            (.index, hasVec ? "vec0" : "none"),
        ]
        var metaOK = true
        for (key, value) in expected where meta[key] != value {
            if key == .index && meta[key] == nil && !hasVec { continue }  // files from before the index existed
            metaOK = false
            report.problem("meta \(key.rawValue) is \(meta[key].map { "\"\($0)\"" } ?? "missing"), expected \"\(value)\"")
        }
        // Issue 14: the attributes the file declares, against the job's and the primary's types.
        let declared = AttributeColumn.decode(meta[.attributes])
        if declared != attributeColumns {
            metaOK = false
            report.problem("meta attributes is \(meta[.attributes].map { "\"\($0)\"" } ?? "missing"), expected \"\(AttributeColumn.encode(attributeColumns))\" from the job and the primary — the next run updates it without embedding")
        } else if let declared {
            let columns = Set(try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('items', '\(live)')"))
            let absent = declared.map(\.name).filter { !columns.contains($0) }
            if !absent.isEmpty {
                metaOK = false
                report.problem("items has no column for the attributes \(absent.joined(separator: ", ")) that meta declares — rebuild it with `reindex --full`")
            }
        }
        if metaOK { report.passed("meta") }

        // every eligible row present with its current hash, nothing else
        let problemsBeforeRows = report.problems.count
        for diff in try SourceDiff.compute(db, sources: job.sources.map(\.name), attributes: job.attributes, liveAttached: true, sample: 5) {
            let s = VerifyReport.SourceCheck(diff)
            guard job.sources.contains(where: { $0.name == s.name }) else {
                report.problem("items of source \"\(s.name)\", which the job does not have: \(s.extra.count) — the next run removes them")
                report.sources.append(s)
                continue
            }
            for (what, list) in [("missing", s.missing), ("stale (content changed since embedded)", s.stale), ("extra (not in the primary)", s.extra),
                                 ("with other attributes than the primary's (attributes_changed; updated without embedding)", s.attributesChanged)]
            where !list.ids.isEmpty {
                report.problem("\(s.name): \(list.count) \(what), e.g. \(list.ids.joined(separator: ", ")) — the next run fixes it")
            }
            report.sources.append(s)
        }
        if report.problems.count == problemsBeforeRows { report.passed("rows") }

        // every row's chunks cover its text
        let coverage = try VectorFileCheck.coverage(db, schema: live, prefixLength: job.model.prefix.unicodeScalars.count)
        if coverage.gaps.count == 0 { report.passed("chunks cover their rows") } else {
            report.problem("\(coverage.gaps.count) rows whose chunks do not cover their text, e.g. \(coverage.gaps.ids.joined(separator: ", ")) — rebuild it with `reindex --full`")
        }

        // dimensions, finite unit vectors
        let d = job.model.dimensions
        let vectors = try VectorFileCheck.vectors(db, schema: live, dimensions: d)
        if vectors.wrongShape.count == 0 {
            report.passed("dimensions")
            if vectors.notUnit.count == 0 { report.passed("unit vectors") } else {
                report.problem("\(vectors.notUnit.count) items are not finite unit vectors, e.g. \(vectors.notUnit.ids.joined(separator: ", ")) — rebuild it with `reindex --full`")
            }
        } else {
            report.problem("\(vectors.wrongShape.count) items have an embedding that is not \(d) float32 values (\(d * 4) bytes), e.g. \(vectors.wrongShape.ids.joined(separator: ", ")) — rebuild it with `reindex --full`")
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
                let problems = try VecIndex.check(db, schema: live, sample: vecSample, attributes: AttributeColumn.decode(meta[.attributes]) ?? [])
                for p in problems { report.problem(p) }
                if problems.isEmpty { report.passed("vec_items") }
                report.vecChecked = true
            } else {
                report.note("vec_items not checked: the sqlite-vec extension was not found or did not load (pass --sqlite-vec or set SQLITE_VEC_PATH)")
            }
        }
        try checkKeywords(db, report: &report, meta: meta)
        // a warning, not a problem (DESIGN.md invariant 9).
        if let wider = FilePermissions.warning(job.output, primary: job.primary) { report.note("permissions: \(wider)") }
    }

    /// The keyword index against the job and `items` (`KeywordIndex.check`;
    /// FTS5's integrity check needs a writable connection, so a run does it
    /// before publishing and `verify` checks counts and orphans).
    private func checkKeywords(_ db: Database, report: inout VerifyReport, meta: VectorFileMeta) throws {
        let live = LiveFile.schema
        let has = try KeywordIndex.exists(db, schema: live)
        let recorded = KeywordSettings.decode(meta[.keywords])
        if has != (recorded != nil) {
            report.problem(has ? "the file has a keywords table but meta keywords does not describe it — rebuild it with `reindex --full`"
                               : "meta keywords is \(meta[.keywords].map { "\"\($0)\"" } ?? "missing") but the file has no keywords table — rebuild it with `reindex --full`")
            return
        }
        if recorded != job.keywords {
            report.note("the job's keywords (\(job.keywords?.tokenizer.rawValue ?? "none")) differ from the file's (\(recorded?.tokenizer.rawValue ?? "none")) — the next run rebuilds the keyword index without embedding")
        }
        guard has else { return }
        let problems = try KeywordIndex.check(db, schema: live)
        for p in problems { report.problem(p) }
        if problems.isEmpty { report.passed("keywords") }
    }
}
