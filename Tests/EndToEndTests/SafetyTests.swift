import Foundation
import GRDB
import Testing

/// Issue: filesystem safety and protecting the primary database.
@Suite(.serialized) struct SafetyTests {
    struct Setup {
        let dir: URL
        let server: EmbedServer
        let job: URL
        let primary: URL
        var output: URL { dir.appendingPathComponent("out/vectors.db") }
    }

    func setUp(_ name: String = #function, messages: Int = 1300) throws -> Setup {
        let dir = try E2E.tempDir(name)
        let server = try EmbedServer()
        let primary = dir.appendingPathComponent("primary.db")
        try E2E.makePrimary(primary, messages: messages)
        let job = try E2E.writeJob(dir, url: server.url)
        return Setup(dir: dir, server: server, job: job, primary: primary)
    }

    @Test(arguments: ["-wal", "-shm", "-journal"])
    func staleSidecarsAreRefusedUnlessForced(suffix: String) throws {
        let s = try setUp("sidecar\(suffix)", messages: 200)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        #expect(try E2E.reindex(["--job", s.job.path]).status == 0)
        let live = try E2E.sha256(s.output)
        try Data("not yours".utf8).write(to: URL(fileURLWithPath: s.output.path + suffix))
        _ = try E2E.mutatePrimary(s.primary, ["--insert", "3"])
        let refused = try E2E.reindex(["--job", s.job.path])
        #expect(refused.status == 73, "\(refused.stderr)")
        #expect(refused.stderr.contains("vectors.db\(suffix)") && refused.stderr.contains("--force"))
        #expect(try E2E.sha256(s.output) == live)
        let files = try E2E.listing(s.output.deletingLastPathComponent())
        #expect(!files.contains("vectors.db-shm") || suffix == "-shm", "opening the old file would have created -shm")

        let forced = try E2E.reindex(["--job", s.job.path, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stderr.contains("moved stale sidecar files aside"))
        let after = try E2E.listing(s.output.deletingLastPathComponent())
        #expect(!after.contains("vectors.db\(suffix)"))
        let staleDir = try #require(after.first { $0.hasPrefix("vectors.db.stale-") })
        #expect(try E2E.listing(s.output.deletingLastPathComponent().appendingPathComponent(staleDir)) == ["vectors.db\(suffix)"])
    }

    @Test func rollbackRestoresThePreviousFileAtomically() throws {
        let s = try setUp(messages: 300)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        #expect(try E2E.reindex(["--job", s.job.path]).status == 0)
        let first = try E2E.sha256(s.output)
        _ = try E2E.mutatePrimary(s.primary, ["--insert", "5"])
        #expect(try E2E.reindex(["--job", s.job.path]).status == 0)
        let second = try E2E.sha256(s.output)
        #expect(try E2E.sha256(URL(fileURLWithPath: s.output.path + ".prev")) == first)
        let r = try E2E.reindex(["rollback", "--job", s.job.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try E2E.sha256(s.output) == first)
        #expect(try E2E.sha256(URL(fileURLWithPath: s.output.path + ".prev")) == second)
        #expect(try E2E.listing(s.output.deletingLastPathComponent()) == ["vectors.db", "vectors.db.lock", "vectors.db.prev"])
        // The restored file is an older base: the next run catches up incrementally.
        let next = try E2E.reindex(["--job", s.job.path, "--format", "json"])
        #expect(try E2E.json(next.stdout)["added"] as? Int == 5)
    }

    @Test func aLocalWorkDirectoryBuildsThereAndResumesThere() throws {
        let s = try setUp(messages: 1300)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let work = s.dir.appendingPathComponent("localwork")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let crashed = try E2E.reindex(["--job", s.job.path, "--work-dir", work.path], env: ["REINDEX_CRASH_AT": "batch:4"])
        #expect(crashed.status == 137 || crashed.status == 9)
        #expect(try E2E.listing(work).contains { $0.hasSuffix(".work") }, "the work file is in the work directory")
        #expect(try !E2E.listing(s.output.deletingLastPathComponent()).contains { $0.contains(".work") })
        let r = try E2E.reindex(["--job", s.job.path, "--work-dir", work.path, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["resumed"] as? Bool == true)
        #expect((summary["carried_over"] as? Int ?? 0) >= 4 * 64)
        #expect(try E2E.listing(work).isEmpty, "no work file left")
        #expect(try E2E.listing(s.output.deletingLastPathComponent()) == ["vectors.db", "vectors.db.lock"])
        let doctor = try E2E.reindex(["doctor", "--job", s.job.path, "--work-dir", work.path])
        #expect(doctor.status == 0)
        #expect(doctor.stdout.contains("--work-dir") && doctor.stdout.contains("decision:"))
    }

    @Test func aFullDiskIsAClearErrorAndTheWorkResumes() throws {
        let s = try setUp(messages: 1300)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let small = try E2E.writeJob(s.dir, url: s.server.url, sources: [("knowledge", #"SELECT id, title || char(10) || body AS text FROM "KnowledgeEntry""#)], name: "small.yml")
        #expect(try E2E.reindex(["--job", small.path]).status == 0)
        let live = try E2E.sha256(s.output)
        // RLIMIT_FSIZE: writes past 1.5 MB fail with EFBIG, like a full disk.
        let limited = try E2E.run(E2E.python, ["-c", "import resource, os, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000)); os.execv(sys.argv[1], sys.argv[1:])",
                                               E2E.binary, "--job", s.job.path, "--full"])
        #expect(limited.status == 74, "\(limited.stderr)")
        #expect(limited.stderr.contains("vectors.db.work") && limited.stderr.contains("rerun the same command to resume"))
        #expect(try E2E.sha256(s.output) == live)
        let r = try E2E.reindex(["--job", s.job.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try E2E.json(r.stdout)["carried_over"] as? Int ?? 0) > 0)
    }

    @Test(arguments: [false, true])
    func aScanNeverStarvesTheApplicationsWriter(wal: Bool) throws {
        let dir = try E2E.tempDir("starve\(wal)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let primary = dir.appendingPathComponent("primary.db")
        try E2E.makePrimary(primary, messages: 100_000, knowledge: 75, wal: wal)
        let job = try E2E.writeJob(dir, url: "http://127.0.0.1:9")
        let stop = dir.appendingPathComponent("stop"), ready = dir.appendingPathComponent("ready"), report = dir.appendingPathComponent("report.json")
        let writer = try E2E.spawn("/usr/bin/env", [E2E.python, E2E.root.appendingPathComponent("fixtures/busy_writer.py").path, "--db", primary.path,
                                                  "--interval-ms", "5", "--stop-file", stop.path, "--report", report.path, "--ready-file", ready.path])
        try E2E.wait("the writer", timeout: 60) { FileManager.default.fileExists(atPath: ready.path) }
        let r = try E2E.reindex(["--job", job.path, "--dry-run", "--format", "json"])
        try Data().write(to: stop)
        try E2E.wait("the writer's report", timeout: 60) { FileManager.default.fileExists(atPath: report.path) }
        writer.waitUntilExit()
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try E2E.json(r.stdout)["scanned"] as? Int ?? 0) > 95_000)
        let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as! [String: Any]
        let worst = stats["max_wait_ms"] as? Double ?? .infinity
        print("writer during a 100k scan (\(wal ? "WAL" : "rollback journal")): \(stats["writes"] ?? 0) writes, worst wait \(worst) ms, p99 \(stats["p99_wait_ms"] ?? "?") ms")
        #expect((stats["writes"] as? Int ?? 0) > 10)
        #expect(stats["busy_errors"] as? Int == 0)
        #expect(worst < 200, "the writer waited \(worst) ms")
    }
}
