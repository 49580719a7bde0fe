import Foundation
import GRDB
import Testing

/// Issue 15, point 4: a source with `changed-column` is read in part by an
/// incremental run — the rows at or past the watermark the live file
/// recorded, every id (deletions), and the ids neither holds (a row written
/// with an old value) — and in full on the full-check schedule, which counts
/// the rows that changed without the column moving.
@Suite(.serialized) struct ChangedColumnTests {
    static let messages = #"SELECT id, content AS text, "updatedAt" AS updated_at FROM "Message" WHERE "deletedAt" IS NULL"#
    static let knowledge = #"SELECT id, title || char(10) || body AS text FROM "KnowledgeEntry""#

    /// The job with `changed-column: updated_at` on `message` (knowledge has none), plus `top` lines.
    @discardableResult
    func writeJob(_ h: Harness, name: String = "job.yml", output: String = "out/vectors.db", top: String = "") throws -> URL {
        let url = try h.writeJob(name, output: output, sources: [("message", Self.messages), ("knowledge", Self.knowledge)],
                                 extraTop: "index: vec0\nkeywords: fts5\n" + top)
        var yaml = try String(contentsOf: url, encoding: .utf8)
        let anchor = "  - name: knowledge\n"
        yaml = yaml.replacingOccurrences(of: anchor, with: "    changed-column: updated_at\n" + anchor)
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// The message source's watermark value in `meta.watermarks`.
    static func mark(_ json: String) -> Int64? {
        let marks = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: [String: String]]
        return marks?["message"]?["value"].flatMap { Int64($0) }
    }

    func harness(_ name: String = #function, top: String = "", wal: Bool = false) throws -> Harness {
        try #require(Vec.available, Vec.missing)
        let h = try Harness(name, primary: .init(wal: wal), job: nil)
        try writeJob(h, top: top)
        let r = try h.runJob(["--full"])
        guard r.status == 0 else { throw E2E.Failure("first publish failed: \(r.stderr)") }
        return h
    }

    func source(_ summary: [String: Any], _ name: String) -> [String: Any] {
        (summary["sources"] as? [String: Any])?[name] as? [String: Any] ?? [:]
    }

    /// Writes to the primary outside mutate_primary.py.
    func primary(_ h: Harness, _ sql: String) throws {
        let q = try DatabaseQueue(path: h.primary.path)
        try q.write { db in try db.execute(sql: sql) }
        try q.close()
    }

    @Test func anIncrementalRunReadsTheChangedRowsAndTheFullCheckFindsWhatTheColumnMissed() throws {
        let h = try harness(top: "full-check-runs: 50\n")
        defer { h.cleanup() }
        let marks = try #require(try CloneTests().meta(h.output, "watermarks"))
        #expect(marks.contains("\"message\"") && marks.contains("updated_at") && !marks.contains("knowledge"), "\(marks)")
        let touched = try h.mutate(["--insert", "4", "--update", "3", "--delete", "2", "--soft-delete", "2"])
        // Changed without the column moving: only a whole scan can see it.
        let silent = try #require(try E2E.scalar(h.primary, #"SELECT id FROM "Message" WHERE "deletedAt" IS NULL ORDER BY id LIMIT 1 OFFSET 500"#) as String?)
        try primary(h, #"UPDATE "Message" SET content = content || ' (edited quietly)' WHERE id = '\#(silent)'"#)
        // Written with an old value (a backfill): the id pass finds it, neither the live file nor the watermark does.
        try primary(h, #"INSERT INTO "Message" (id, "roomId", "authorId", role, content, "createdAt", "updatedAt") SELECT 'zz-backfill', "roomId", "authorId", role, 'a message restored from a backup, written with its old timestamps', 1, 1 FROM "Message" LIMIT 1"#)

        // The rows at or past the watermark: the inserted and updated ones, and the ones at the watermark itself.
        let since = try #require(Self.mark(marks))
        let atOrPast = try #require(try E2E.scalar(h.primary, #"SELECT count(*) FROM "Message" WHERE "deletedAt" IS NULL AND "updatedAt" >= \#(since)"#) as Int?)
        #expect(atOrPast >= 4 + 3)

        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        let message = source(summary, "message")
        let read = try #require(message["read_since"] as? [String: Any], "\(message)")
        #expect(read["column"] as? String == "updated_at" && read["value"] as? String == String(since))
        #expect(message["scanned"] as? Int == atOrPast + 1, "the rows at or past the watermark and the backfilled row: \(message)")
        #expect(message["added"] as? Int == 5 && message["changed"] as? Int == 3 && message["removed"] as? Int == 4, "\(message)")
        #expect((message["ids"] as? Int ?? 0) > 1000)
        #expect(source(summary, "knowledge")["read_since"] == nil, "a source without the key is read whole")
        #expect((summary["build"] as? String ?? "").hasPrefix("clone: "))
        #expect(r.stderr.contains("scanned the changed rows"))
        _ = touched

        // The periodic full check reads every row and finds the quiet edit.
        let due = try writeJob(h, name: "due.yml", top: "full-check-runs: 1\n")
        let full = try h.runJob(["--format", "json"], job: due)
        #expect(full.status == 0, "\(full.stderr)")
        let checked = try E2E.json(full.stdout)
        let m2 = source(checked, "message")
        #expect(m2["read_since"] == nil && m2["changed_column_missed"] as? Int == 1 && m2["changed"] as? Int == 1, "\(m2)")
        #expect(checked["full_check"] as? Bool == true)
        #expect(full.stderr.contains("changed without changed-column moving"))

        let reference = try CloneTests().reference(h, top: "keywords: fts5\n")
        try CloneTests().expectSameAsFullBuild(h.output, reference, dir: h.dir)
        #expect(try h.command("verify").status == 0)
    }

    @Test func anUnchangedPrimaryWritesNothingAndADueFullCheckPublishes() throws {
        let h = try harness()
        defer { h.cleanup() }
        let before = try E2E.sha256(h.output)
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["published"] as? Bool == false)
        // Only the rows at the watermark itself are read again (`>=`: a row written in the same tick is never missed).
        let stored = try #require(try CloneTests().meta(h.output, "watermarks"))
        let since = try #require(Self.mark(stored))
        let atMark = try #require(try E2E.scalar(h.primary, #"SELECT count(*) FROM "Message" WHERE "deletedAt" IS NULL AND "updatedAt" >= \#(since)"#) as Int?)
        #expect(source(summary, "message")["read_since"] != nil && source(summary, "message")["scanned"] as? Int == atMark && atMark < 5)
        #expect(try E2E.sha256(h.output) == before)
        #expect(try h.outListing() == ["vectors.db", "vectors.db.lock"])

        // Due: every row is read, and the run publishes so that the schedule starts again.
        let due = try writeJob(h, name: "due.yml", top: "full-check-runs: 1\n")
        let checked = try E2E.json(try h.runJob(["--format", "json"], job: due).stdout)
        #expect(checked["published"] as? Bool == true && checked["full_check"] as? Bool == true, "\(checked)")
        #expect(source(checked, "message")["changed_column_missed"] as? Int == 0)
        #expect(try CloneTests().meta(h.output, "runs_since_full_check") == "0")
        // The next run, not due, reads in part again and publishes nothing.
        let after = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(after["published"] as? Bool == false && source(after, "message")["read_since"] != nil, "\(after)")
    }

    @Test func addingTheKeyPublishesOnceToRecordTheWatermark() throws {
        try #require(Vec.available, Vec.missing)
        let h = try Harness(job: .init(extraTop: "index: vec0\nkeywords: fts5\n"), publish: .init(args: ["--full"]))
        defer { h.cleanup() }
        #expect(try CloneTests().meta(h.output, "watermarks") == nil)
        try writeJob(h)
        let first = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(first["published"] as? Bool == true && first["embedded"] as? Int == 0, "\(first)")
        #expect(source(first, "message")["read_since"] == nil)
        #expect(try CloneTests().meta(h.output, "watermarks") != nil)
        let before = try E2E.sha256(h.output)
        let next = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(next["published"] as? Bool == false && source(next, "message")["read_since"] != nil, "\(next)")
        #expect(try E2E.sha256(h.output) == before)
    }

    /// Killed anywhere on a run that read in part, the live file is intact and
    /// the rerun (which reads every row: it resumes) publishes what a full build does.
    @Test(arguments: ["scan", "delta", "batch:1", "verify", "rename"])
    func killedAfterReadingInPartThenRerun(point: String) throws {
        let h = try harness("columnkill\(point)")
        defer { h.cleanup() }
        _ = try h.mutate(["--insert", "120", "--update", "80", "--delete", "20"])
        try h.server.reset()
        let live = try E2E.sha256(h.output)
        let crashed = try h.runJob([], env: ["REINDEX_CRASH_AT": point])
        #expect(crashed.status == 128 + 9 || crashed.status == 9, "expected SIGKILL at \(point), got \(crashed.status): \(crashed.stderr)")
        #expect(crashed.stderr.contains("scanned the changed rows"), "\(crashed.stderr)")
        if point != "rename" {
            #expect(try E2E.sha256(h.output) == live, "the live file changed after a crash at \(point)")
        }
        let rerun = try h.runJob(["--format", "json"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        // Paid once: the 200 new and changed rows plus at most one batch per request in flight, and the probes (each run).
        let inputs = try h.server.stats()["inputs"] as! Int
        #expect(inputs <= 200 + 64 * 4 + 2 * Probe.count, "\(point): the server got \(inputs) inputs")
        #expect(try !h.outListing().contains { $0.contains(".work") })
        try CloneTests().expectSameAsFullBuild(h.output, try CloneTests().reference(h, top: "keywords: fts5\n"), dir: h.dir)
        #expect(try h.command("verify").status == 0)
    }

    /// DESIGN.md invariant 1 on the partial scan, whose id pass reads the
    /// primary through a second connection (`SourceScanner.stageIDs`): the
    /// primary's bytes, its journal mode and the files beside it are as they were.
    @Test(arguments: [false, true])
    func thePartialScanOnlyReadsThePrimary(wal: Bool) throws {
        let h = try harness("columnreadonly\(wal)", wal: wal)
        defer { h.cleanup() }
        _ = try h.mutate(["--insert", "5", "--update", "3", "--delete", "2"])
        // In WAL mode SQLite itself opens -wal and -shm for any reader (and writes its read marks
        // into -shm): those may appear; nothing else may, and the database's bytes stay as they were.
        let listing = { try E2E.listing(h.dir).filter { $0.hasPrefix("primary.db") } }
        let (files, bytes) = (try listing(), try E2E.sha256(h.primary))
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(source(try E2E.json(r.stdout), "message")["read_since"] != nil)
        #expect(try E2E.sha256(h.primary) == bytes)
        let allowed = Set(files).union(wal ? ["primary.db-wal", "primary.db-shm"] : [])
        let now = try listing()
        #expect(Set(now).isSubset(of: allowed), "\(now)")
        #expect(try FullRebuildTests().journalMode(h.primary) == (wal ? "wal" : "delete"))
    }

    /// DESIGN.md invariant 2 on the partial scan, on a primary with no index
    /// on the column: the id pass pages by rows read, never by rows found
    /// changed, so the application's writer (a rollback-journal database, a
    /// commit every 5 ms) is never held up for long.
    @Test func thePartialScanNeverStarvesTheApplicationsWriter() throws {
        try #require(Vec.available, Vec.missing)
        let h = try Harness(primary: .init(messages: 100_000, knowledge: 75), job: nil)
        defer { h.cleanup() }
        try writeJob(h)
        #expect(try h.runJob(["--full"]).status == 0)
        let stop = h.dir.appendingPathComponent("stop"), ready = h.dir.appendingPathComponent("ready"), report = h.dir.appendingPathComponent("report.json")
        let writer = try E2E.spawn("/usr/bin/env", [E2E.python, E2E.root.appendingPathComponent("fixtures/busy_writer.py").path, "--db", h.primary.path,
                                                  "--interval-ms", "5", "--stop-file", stop.path, "--report", report.path, "--ready-file", ready.path])
        try E2E.wait("the writer", timeout: 60) { FileManager.default.fileExists(atPath: ready.path) }
        let r = try h.runJob(["--format", "json"])
        try Data().write(to: stop)
        try E2E.wait("the writer's report", timeout: 60) { FileManager.default.fileExists(atPath: report.path) }
        writer.waitUntilExit()
        #expect(r.status == 0, "\(r.stderr)")
        let message = source(try E2E.json(r.stdout), "message")
        #expect(message["read_since"] != nil && (message["ids"] as? Int ?? 0) > 95_000, "\(message)")
        let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as! [String: Any]
        let (p99, worst) = (stats["p99_wait_ms"] as? Double ?? .infinity, stats["max_wait_ms"] as? Double ?? .infinity)
        print("writer during a 100k partial scan: \(stats["writes"] ?? 0) writes, worst wait \(worst) ms, p99 \(p99) ms")
        #expect((stats["writes"] as? Int ?? 0) > 10)
        #expect(stats["busy_errors"] as? Int == 0)
        // As SafetyTests.aScanNeverStarvesTheApplicationsWriter: the writer's COMMIT fsync alone can stall on a busy disk.
        #expect(p99 < 200, "the writer's 99th percentile wait was \(p99) ms")
        #expect(worst < 2_000, "the writer waited \(worst) ms")
    }

    /// A run that read in part and then finds it cannot clone the live file
    /// (here: the attributes' roles changed, so it builds from nothing)
    /// reads every row again before it embeds anything.
    @Test func aRunThatCannotCloneReadsEveryRowAgain() throws {
        try #require(Vec.available, Vec.missing)
        let h = try Harness(job: nil)
        defer { h.cleanup() }
        func yaml(_ roles: String) -> String {
            AttributeTests.yaml(h, roles: roles)
                .replacingOccurrences(of: #""authorId" AS author FROM "Message""#, with: #""authorId" AS author, "updatedAt" AS updated_at FROM "Message""#)
                .replacingOccurrences(of: "attributes: \(roles)\n  - name: knowledge", with: "attributes: \(roles)\n    changed-column: updated_at\n  - name: knowledge")
        }
        try h.writeJob(yaml: yaml("{room: partition}"))
        #expect(try h.runJob(["--full"]).status == 0)
        _ = try h.mutate(["--insert", "3", "--update", "2"])
        try h.writeJob(yaml: yaml("{room: partition, created: filter}"))
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["build"] as? String == "build" && (summary["build_reason"] as? String ?? "").contains("attributes"), "\(summary)")
        #expect(source(summary, "message")["read_since"] == nil && (source(summary, "message")["scanned"] as? Int ?? 0) > 1000)
        #expect(r.stderr.contains("reading every row again"))
        #expect(summary["embedded"] as? Int == 5, "only the new and changed rows are embedded: \(summary)")
        #expect(try h.command("verify").status == 0)
    }

    @Test func aChangedColumnTheQueryDoesNotReturnIsAUsageError() throws {
        let h = try Harness(job: nil)
        defer { h.cleanup() }
        let url = try h.writeJob(sources: [("message", #"SELECT id, content AS text FROM "Message""#)])
        var yaml = try String(contentsOf: url, encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "model:\n", with: "    changed-column: updated_at\nmodel:\n")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        let r = try h.runJob([])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("changed-column: the query has no column named \"updated_at\""), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: h.output.path))
    }
}
