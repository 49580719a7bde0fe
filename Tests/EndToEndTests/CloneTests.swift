import Foundation
import GRDB
import Testing

/// Issue 15: cron runs that cost what changed. An incremental run that
/// publishes starts from a kernel-side copy of the live file and applies only
/// its delta (`vec_items` maintained in place, compacted past
/// `compact-above`), checks what changed (every vector periodically), and is
/// as crash-safe as a build: killed at any point, the live file is intact and
/// the rerun publishes what an uninterrupted run publishes.
@Suite(.serialized) struct CloneTests {
    /// A published primary of 1,300 messages with `vec_items`, plus `top` job lines.
    func harness(_ name: String = #function, top: String = "") throws -> Harness {
        try #require(Vec.available, Vec.missing)
        return try Harness(name, job: .init(extraTop: "index: vec0\n" + top), publish: .init(args: ["--full"]))
    }

    /// `reindex --job … --format json` under fixtures/run_io.py: the summary and the process's /proc/PID/io.
    func runMeasured(_ h: Harness, _ args: [String] = [], job: URL? = nil, env: [String: String] = [:]) throws -> (E2E.Result, [String: Any], [String: Int]) {
        let io = h.dir.appendingPathComponent("io-\(UUID().uuidString.prefix(6)).json")
        let r = try E2E.run(E2E.python, [E2E.root.appendingPathComponent("fixtures/run_io.py").path, "--io-out", io.path, "--",
                                         E2E.binary, "--job", (job ?? h.job).path, "--format", "json"] + args, env: env)
        let counters = try JSONSerialization.jsonObject(with: Data(contentsOf: io)) as? [String: Any] ?? [:]
        return (r, r.status == 0 ? try E2E.json(r.stdout) : [:], counters.compactMapValues { ($0 as? NSNumber)?.intValue })
    }

    /// A full build of the same primary, beside the output (`reference/vectors.db`).
    func reference(_ h: Harness, top: String = "") throws -> URL {
        let job = try h.writeJob("reference.yml", output: "reference/vectors.db", extraTop: "index: vec0\n" + top)
        let r = try h.runJob(["--full"], job: job)
        guard r.status == 0 else { throw E2E.Failure("reference run failed: \(r.stderr)") }
        return h.dir.appendingPathComponent("reference/vectors.db")
    }

    /// id → (source, source_id, chunk) of every item.
    func keys(_ path: URL) throws -> [Int64: String] {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: path.path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in
            var out: [Int64: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, source, source_id, chunk FROM items") {
                out[row[0]] = "\(row[1] as String)/\(row[2] as String)/\(row[3] as Int)"
            }
            return out
        }
    }

    /// The published file holds what a fresh full build holds: the same items
    /// (hash and vector), `vec_items` exactly the items, and the same KNN answers.
    func expectSameAsFullBuild(_ output: URL, _ reference: URL, dir: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let a = try E2E.items(output), b = try E2E.items(reference)
        #expect(a.count == b.count, "items: \(a.count) vs \(b.count)", sourceLocation: sourceLocation)
        for (k, v) in b where a[k]?.hash != v.hash || a[k]?.vector != v.vector {
            Issue.record("item \(k) differs from the full build", sourceLocation: sourceLocation)
        }
        for file in [output, reference] {
            let items: Int? = try E2E.scalar(file, "SELECT count(*) FROM items")
            #expect(try Vec.int(file, "SELECT count(*) FROM vec_items") == items, sourceLocation: sourceLocation)
            #expect(try Vec.int(file, """
                SELECT count(*) FROM items i WHERE (SELECT v.embedding FROM vec_items v WHERE v.rowid = i.id) IS NOT i.embedding
                """) == 0, sourceLocation: sourceLocation)
        }
        let queries = Array(b.values.prefix(6).map(\.vector))
        let (ka, kb) = (try keys(output), try keys(reference))
        let knnA = try Vec.knn(output, queries: queries, k: 10, dir: dir), knnB = try Vec.knn(reference, queries: queries, k: 10, dir: dir)
        for (x, y) in zip(knnA, knnB) {
            // The same distances, and the same items wherever no tie reaches the k-th place (equal texts, equal vectors).
            #expect(x.map { ($0.1 * 1e5).rounded() } == y.map { ($0.1 * 1e5).rounded() }, "KNN distances differ", sourceLocation: sourceLocation)
            let last = (y.last?.1 ?? 0) - 1e-6
            #expect(Set(x.filter { $0.1 < last }.map { ka[$0.0] ?? "?" }) == Set(y.filter { $0.1 < last }.map { kb[$0.0] ?? "?" }),
                    "KNN answers differ", sourceLocation: sourceLocation)
        }
    }

    func meta(_ path: URL, _ key: String) throws -> String? {
        try E2E.scalar(path, "SELECT value FROM meta WHERE key = '\(key)'")
    }

    @Test func anIncrementalRunClonesWritesLittleMoreThanTheCopyAndEqualsAFullBuild() throws {
        let h = try harness()
        defer { h.cleanup() }
        let liveBefore = try E2E.sha256(h.output)
        let size = Vec.size(h.output)
        _ = try h.mutate(["--insert", "7", "--update", "5", "--delete", "3", "--soft-delete", "2"])
        let (r, summary, io) = try runMeasured(h)
        #expect(r.status == 0, "\(r.stderr)")
        #expect((summary["build"] as? String ?? "").hasPrefix("clone: "), "\(summary["build"] ?? "nil")")
        #expect(r.stderr.contains("cloned the live file"))
        #expect(summary["build_reason"] is NSNull)
        #expect(summary["full_check"] as? Bool == false)
        #expect(summary["compaction"] is NSNull)
        #expect(summary["embedded"] as? Int == 12 && summary["removed"] as? Int == 5)
        #expect((summary["reused"] as? Int ?? 0) == (summary["unchanged"] as? Int ?? -1))
        // wchar counts copy_file_range's bytes (the one copy; a reflink would add nothing); the rest is
        // the staged scan and the pages the delta touched, through the WAL and its checkpoint.
        let written = try #require(io["wchar"])
        #expect(written - size < size / 2, "wrote \(written) bytes for a \(size)-byte file with 17 rows changed")
        // The live file itself was never written: it is now .prev, byte for byte.
        #expect(try E2E.sha256(h.prev) == liveBefore)
        #expect(try meta(h.output, "runs_since_full_check") == "1")
        #expect(try meta(h.output, "vec_dead_rows") == "10", "5 removed and 5 changed rows' vec_items rows")
        #expect(try E2E.scalar(h.output, "SELECT count(*) FROM runs") == 1)
        #expect(try h.outListing() == ["vectors.db", "vectors.db.lock", "vectors.db.prev"])
        let reference = try reference(h)
        try expectSameAsFullBuild(h.output, reference, dir: h.dir)
        #expect(try h.command("verify").status == 0)
        // A build of the same file writes it whole, and its items twice (WAL, then checkpoint; the
        // indexes go in rollback-journal mode, once): more than the copy and the delta together.
        let (full, _, fullIO) = try runMeasured(h, ["--full"], job: h.dir.appendingPathComponent("reference.yml"))
        #expect(full.status == 0)
        let built = try #require(fullIO["wchar"])
        print("clone path: wchar \(written), rchar \(io["rchar"] ?? 0); full build: wchar \(built), rchar \(fullIO["rchar"] ?? 0); file \(size) bytes")
        #expect(built > written, "a full build wrote \(built) bytes, the clone path \(written) for a \(size)-byte file")
    }

    /// An incremental run on a clone hashes every row inside the primary's
    /// SQLite and reads in full only the rows whose hash differs from the
    /// live file's, plus the ones the hash leaves to the scan in Swift (a
    /// text cut to `max-input-chars`); a row made blank is skipped there and
    /// counts as removed. What it publishes is what a full build publishes.
    @Test func theHashPassReadsOnlyTheRowsThatDifferAndEqualsAFullBuild() throws {
        try #require(Vec.available, Vec.missing)
        let model = ["max-input-chars": "300"]
        let h = try Harness(job: .init(model: model, extraTop: "index: vec0\n"), publish: .init(args: ["--full"]))
        defer { h.cleanup() }
        func readInFull(_ stderr: String) -> Int? {
            let line = stderr.split(separator: "\n").first { $0.contains("hashed every row in SQL") && $0.contains("source=message") }
            return line.flatMap { $0.firstMatch(of: /read=(\d+)/) }.flatMap { Int($0.1) }
        }
        let touched = try h.mutate(["--insert", "4", "--update", "3", "--delete", "2"])
        let q = try DatabaseQueue(path: h.primary.path)
        let (blank, edited, long): (String, String, Set<String>) = try q.write { db in
            let live = "FROM \"Message\" WHERE \"deletedAt\" IS NULL AND length(content) BETWEEN 20 AND 200"
            let blank = try String.fetchOne(db, sql: "SELECT min(id) \(live)")!
            let edited = try String.fetchOne(db, sql: "SELECT max(id) \(live)")!
            try db.execute(sql: "UPDATE \"Message\" SET content = ? WHERE id = ?", arguments: ["\u{00A0}\u{2003} ", blank])
            try db.execute(sql: "UPDATE \"Message\" SET content = ? WHERE id = ?", arguments: ["\n  déjà vu — 東京 🙂", edited])
            let long = try String.fetchAll(db, sql: "SELECT id FROM \"Message\" WHERE \"deletedAt\" IS NULL AND length(content) > 300")
            return (blank, edited, Set(long))
        }
        try q.close()
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect((summary["build"] as? String ?? "").hasPrefix("clone: "))
        let changed = Set((touched["inserted"] ?? []) + (touched["updated"] ?? []) + [edited])
        #expect(!long.isEmpty, "the fixture has messages over 300 characters")
        #expect(readInFull(r.stderr) == changed.union(long).count, "\(r.stderr)")
        #expect(summary["embedded"] as? Int == changed.count)
        #expect(summary["removed"] as? Int == 3, "2 deleted and \(blank) made blank")
        let reference = try h.writeJob("reference.yml", output: "reference/vectors.db", model: model, extraTop: "index: vec0\n")
        let full = try h.runJob(["--full", "--format", "json"], job: reference)
        #expect(full.status == 0)
        // The rows cut to max-input-chars are read, cut and counted as a full scan counts them.
        #expect(try E2E.json(full.stdout)["truncated"] as? Int == summary["truncated"] as? Int)
        #expect(((summary["sources"] as? [String: Any])?["message"] as? [String: Any])?["truncated"] as? Int == long.count)
        try expectSameAsFullBuild(h.output, h.dir.appendingPathComponent("reference/vectors.db"), dir: h.dir)
        // Nothing changed: only the rows the hash leaves to Swift are read again, and nothing is published.
        let again = try h.runJob(["--format", "json"])
        #expect(try E2E.json(again.stdout)["published"] as? Bool == false)
        #expect(readInFull(again.stderr) == long.count)
    }

    @Test func aFullRunAndAnUnchangedPrimaryDoNotClone() throws {
        let h = try harness()
        defer { h.cleanup() }
        let before = try E2E.sha256(h.output)
        let same = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(same["published"] as? Bool == false && same["build"] is NSNull)
        #expect(try E2E.sha256(h.output) == before)
        #expect(try h.outListing() == ["vectors.db", "vectors.db.lock"])
        _ = try h.mutate(["--insert", "2"])
        let full = try E2E.json(try h.runJob(["--full", "--format", "json"]).stdout)
        #expect(full["build"] as? String == "build" && full["build_reason"] is NSNull && full["full_check"] as? Bool == true)
        #expect(try meta(h.output, "vec_dead_rows") == "0")
        // A build keeps pointer-map pages, so sqlite-vec's blob I/O finds a vector's page without walking its chunk.
        #expect(try E2E.scalar(h.output, "PRAGMA auto_vacuum") as Int? == 2)
        // A build creates items_rows once its items are written.
        #expect(try E2E.scalar(h.output, "SELECT sql FROM sqlite_schema WHERE name = 'items_rows'")
                == "CREATE INDEX items_rows ON items(source, source_id, chunk, row_hash)")
    }

    @Test func aBaseThatFailsItsCheckIsNeverCloned() throws {
        let h = try harness()
        defer { h.cleanup() }
        let q = try DatabaseQueue(path: h.output.path)
        try q.write { db in try db.execute(sql: "UPDATE meta SET value = '7' WHERE key = 'item_count'") }
        try q.close()
        _ = try h.mutate(["--insert", "3", "--update", "2"])
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["mode"] as? String == "incremental")
        #expect(summary["build"] as? String == "build")
        #expect((summary["build_reason"] as? String ?? "").contains("the live file failed its check: meta item_count is 7"), "\(summary["build_reason"] ?? "nil")")
        #expect(r.stdout.contains("build") && r.stderr.contains("building the new file from nothing"))
        try expectSameAsFullBuild(h.output, try reference(h), dir: h.dir)
    }

    @Test func aLocalWorkDirectoryClonesThereResumesThereAndCopiesTheFileBeside() throws {
        let h = try harness()
        defer { h.cleanup() }
        let work = h.dir.appendingPathComponent("localwork")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        _ = try h.mutate(["--insert", "90", "--update", "40"])
        let crashed = try h.runJob(["--work-dir", work.path], env: ["REINDEX_CRASH_AT": "batch:1"])
        #expect(crashed.status == 137 || crashed.status == 9, "\(crashed.stderr)")
        #expect(try E2E.listing(work).contains { $0.hasSuffix(".work") }, "the clone is in the work directory")
        #expect(try !h.outListing().contains { $0.contains(".work") })
        let r = try h.runJob(["--work-dir", work.path, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["resumed"] as? Bool == true && (summary["build"] as? String ?? "").hasPrefix("clone: "), "\(summary)")
        #expect(try E2E.listing(work).isEmpty, "no work file left")
        #expect(try h.outListing() == ["vectors.db", "vectors.db.lock", "vectors.db.prev"])
        try expectSameAsFullBuild(h.output, try reference(h), dir: h.dir)
    }

    @Test func vecItemsBuiltByAnotherSqliteVecIsRebuiltNotPatched() throws {
        let h = try harness()
        defer { h.cleanup() }
        let q = try DatabaseQueue(path: h.output.path)
        try q.write { db in try db.execute(sql: "UPDATE meta SET value = 'v0.1.0' WHERE key = 'sqlite_vec_version'") }
        try q.close()
        _ = try h.mutate(["--insert", "2"])
        let summary = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(summary["build"] as? String == "build")
        #expect((summary["build_reason"] as? String ?? "").contains("sqlite-vec changed (v0.1.0 built vec_items"), "\(summary["build_reason"] ?? "nil")")
        #expect(try meta(h.output, "sqlite_vec_version") != "v0.1.0")
    }

    @Test func vecItemsIsCompactedPastTheThresholdAndSaysWhatItCost() throws {
        let h = try harness(top: "compact-above: 0.01\n")
        defer { h.cleanup() }
        // 0.3% of the rows: under the threshold, the dead slots accumulate.
        _ = try h.mutate(["--update", "4", "--seed", "1"])
        let small = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(small["compaction"] is NSNull)
        #expect(try meta(h.output, "vec_dead_rows") == "4")
        // Another 2%: past 1%, vec_items is rebuilt and the dead slots are gone.
        _ = try h.mutate(["--update", "20", "--delete", "6", "--seed", "2"])
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        let compaction = try #require(summary["compaction"] as? [String: Any], "no compaction in \(r.stdout)")
        #expect(compaction["dead_rows"] as? Int == 30)
        #expect((compaction["dead_fraction"] as? Double ?? 0) > 0.01)
        #expect(compaction["seconds"] is NSNumber)
        #expect((summary["build"] as? String ?? "").hasPrefix("clone: "))
        #expect(r.stderr.contains("compacting vec_items"))
        #expect(try meta(h.output, "vec_dead_rows") == "0")
        let text = try h.runJob([])  // nothing changed: nothing published, nothing compacted
        #expect(!text.stdout.contains("compacted"))
        try expectSameAsFullBuild(h.output, try reference(h), dir: h.dir)
    }

    @Test func everyVectorIsCheckedEveryNRuns() throws {
        let h = try harness(top: "full-check-runs: 2\n")
        defer { h.cleanup() }
        let full = try #require(try meta(h.output, "full_check_at"))
        #expect(try meta(h.output, "runs_since_full_check") == "0")
        _ = try h.mutate(["--insert", "2", "--seed", "1"])
        let first = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(first["full_check"] as? Bool == false)
        #expect(try meta(h.output, "runs_since_full_check") == "1" && meta(h.output, "full_check_at") == full)
        _ = try h.mutate(["--insert", "2", "--seed", "2"])
        let second = try h.runJob(["--format", "json"])
        #expect(try E2E.json(second.stdout)["full_check"] as? Bool == true)
        #expect(second.stdout.contains("\"full_check\":true"))
        #expect(try meta(h.output, "runs_since_full_check") == "0")
    }

    /// The live file is checked whole (`quick_check` of every page) only on
    /// the full-check schedule: a damaged page the run does not read (a
    /// `vec_items` vector chunk) is carried into a clone by a lighter run and
    /// found by `verify`; the next run that is due for the full check finds
    /// it in the base and rebuilds in full.
    @Test func theBaseIsCheckedWholeOnTheFullCheckSchedule() throws {
        let h = try harness()
        defer { h.cleanup() }
        let page = try #require(try E2E.scalar(h.output, """
            SELECT pageno FROM dbstat WHERE name = 'vec_items_vector_chunks00' AND pagetype = 'overflow' ORDER BY pageno LIMIT 1 OFFSET 3
            """) as Int?, "dbstat lists the overflow pages of vec_items' vector chunks")
        let handle = try FileHandle(forUpdating: h.output)
        try handle.seek(toOffset: UInt64((page - 1) * 8192))
        handle.write(Data(repeating: 0xFF, count: 8192))
        try handle.close()
        #expect(try h.command("verify").status == 65, "verify checks every page")

        _ = try h.mutate(["--insert", "2", "--seed", "3"])
        let light = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(light["mode"] as? String == "incremental" && (light["build"] as? String ?? "").hasPrefix("clone: "), "\(light)")
        #expect(try h.command("verify").status == 65, "the damage came along in the clone, and verify says so")

        let due = try h.writeJob("due.yml", extraTop: "index: vec0\nfull-check-runs: 1\n")
        let whole = try E2E.json(try h.runJob(["--format", "json"], job: due).stdout)
        #expect(whole["mode"] as? String == "full" && (whole["full_reason"] as? String ?? "").contains("quick_check"), "\(whole)")
        #expect(try h.command("verify").status == 0)
        try expectSameAsFullBuild(h.output, try reference(h), dir: h.dir)
    }

    /// An interrupted clone deleted a changed row's items; the edit is undone
    /// before the rerun: the row is whole in the live file again, but not in
    /// the clone, so the rerun must take it back (from the live file, by
    /// content hash) rather than trust the plan's diff.
    @Test func anEditUndoneBetweenAnInterruptedCloneAndItsRerun() throws {
        let h = try harness()
        defer { h.cleanup() }
        let q = try DatabaseQueue(path: h.primary.path)
        defer { try? q.close() }
        let (id, original) = try q.read { db in
            let row = try Row.fetchOne(db, sql: #"SELECT id, content FROM "Message" WHERE "deletedAt" IS NULL AND length(content) > 20 ORDER BY id LIMIT 1"#)!
            return (row[0] as String, row[1] as String)
        }
        try q.write { db in try db.execute(sql: #"UPDATE "Message" SET content = 'an edit about to be undone' WHERE id = ?"#, arguments: [id]) }
        _ = try h.mutate(["--insert", "3"])
        let crashed = try h.runJob([], env: ["REINDEX_CRASH_AT": "delta"])
        #expect(crashed.status == 137 || crashed.status == 9, "\(crashed.stderr)")
        try q.write { db in try db.execute(sql: #"UPDATE "Message" SET content = ? WHERE id = ?"#, arguments: [original, id]) }
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try E2E.json(r.stdout)["resumed"] as? Bool == true)
        try expectSameAsFullBuild(h.output, try reference(h), dir: h.dir)
    }

    /// Crash points of the clone path (and the publish, shared with builds).
    static let points = ["scan", "copy", "clone", "delta", "batch:1", "compact", "verify", "finalize", "prev", "rename"]

    @Test(arguments: points)
    func killedOnTheClonePathThenRerun(point: String) throws {
        let h = try harness("clonekill\(point)", top: point == "compact" ? "compact-above: 0\n" : "")
        defer { h.cleanup() }
        _ = try h.mutate(["--insert", "120", "--update", "80", "--delete", "20"])
        let live = try E2E.sha256(h.output)
        let crashed = try h.runJob([], env: ["REINDEX_CRASH_AT": point])
        #expect(crashed.status == 128 + 9 || crashed.status == 9, "expected SIGKILL at \(point), got \(crashed.status): \(crashed.stderr)")
        if point != "rename" {
            #expect(try E2E.sha256(h.output) == live, "the live file changed after a crash at \(point)")
        }
        let (rerun, summary, _) = try runMeasured(h)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        if point != "rename" {
            #expect((summary["build"] as? String ?? "").hasPrefix("clone: "), "\(point): \(summary["build"] ?? "nil")")
        }
        // Paid once: the 200 new and changed rows plus at most one batch per request in flight, and the probes.
        let inputs = try h.server.stats()["inputs"] as! Int
        #expect(inputs <= 200 + 64 * 4 + 2 * Probe.count, "\(point): the server got \(inputs) inputs")
        #expect(try !h.outListing().contains { $0.contains(".work") })
        try expectSameAsFullBuild(h.output, try reference(h, top: point == "compact" ? "compact-above: 0\n" : ""), dir: h.dir)
        #expect(try h.command("verify").status == 0)
    }
}
