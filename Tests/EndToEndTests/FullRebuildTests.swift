import Foundation
import GRDB
import Testing

/// Issue: full rebuild end to end (`reindex --full`), against real files and
/// the fixture server on 127.0.0.1.
@Suite(.serialized) struct FullRebuildTests {
    /// Rows the job should embed: live messages and all knowledge entries with non-blank text.
    func eligibleInputs(_ primary: URL, maxChars: Int = 1_000_000) throws -> [String: String] {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: primary.path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in
            var out: [String: String] = [:]
            let sql = """
                SELECT 'message', id, content FROM "Message" WHERE "deletedAt" IS NULL
                UNION ALL SELECT 'knowledge', id, title || char(10) || body FROM "KnowledgeEntry"
                """
            for row in try Row.fetchAll(db, sql: sql) {
                let text: String = row[2]
                guard !text.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) else { continue }
                let scalars = text.unicodeScalars
                let input = scalars.count > maxChars ? String(String.UnicodeScalarView(scalars.prefix(maxChars))) : text
                out["\(row[0] as String)/\(row[1] as String)"] = input
            }
            return out
        }
    }

    func journalMode(_ primary: URL) throws -> String {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: primary.path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    @Test func fullRunStoresNormalizedServerVectorsAndLeavesPrimaryUntouched() throws {
        let h = try Harness()
        defer { h.cleanup() }
        let dir = h.dir, primary = h.primary
        let before = try E2E.sha256(primary)
        let filesBefore = try E2E.listing(dir)
        #expect(filesBefore == ["job.yml", "primary.db"])

        let r = try h.runJob(["--full", "--format", "json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let summary = try E2E.json(r.stdout)
        let expected = try eligibleInputs(primary)
        let output = h.output
        let items = try E2E.items(output)

        #expect(items.count == expected.count)
        #expect(Set(items.keys) == Set(expected.keys))
        #expect(summary["embedded"] as? Int == expected.count)
        #expect(summary["mode"] as? String == "full")
        #expect((summary["skipped"] as? Int ?? 0) > 0, "the fixture has blank rows that must be skipped")

        // Each stored vector is the server's raw vector divided by its norm.
        let keys = expected.keys.sorted()
        let raw = try h.server.rawVectors(keys.map { expected[$0]! })
        var worst: Float = 0
        for (key, v) in zip(keys, raw) {
            let norm = Float(v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
            let stored = items[key]!.vector
            #expect(stored.count == 384)
            for (a, b) in zip(stored, v) { worst = max(worst, abs(a - b / norm)) }
            #expect(items[key]!.hash == Digest.sha256(Data(expected[key]!.utf8)), "content_hash of \(key)")
        }
        #expect(worst <= 1e-6, "max abs error \(worst)")

        // Primary: same bytes, same journal mode, nothing new beside it.
        #expect(try E2E.sha256(primary) == before)
        #expect(try journalMode(primary) == "delete")
        #expect(try E2E.listing(dir) == (filesBefore + ["out"]).sorted())
        // Output directory: the file and its lock only, no work files; DELETE mode, contract meta.
        #expect(try E2E.listing(dir.appendingPathComponent("out")) == ["vectors.db", "vectors.db.lock"])
        let header = try Data(contentsOf: output).prefix(20)
        #expect(header[18] == 1 && header[19] == 1, "rollback-journal file format (not WAL)")
        #expect(try E2E.scalar(output, "SELECT value FROM meta WHERE key = 'format'") == "reindex-vectors/2")
        #expect(try E2E.scalar(output, "SELECT value FROM meta WHERE key = 'item_count'") == String(expected.count))
        #expect(try E2E.scalar(output, "SELECT value FROM meta WHERE key = 'dimensions'") == "384")
        #expect(try E2E.scalar(output, "SELECT count(*) FROM runs") == 1)
    }

    @Test func walPrimaryKeepsBytesAndJournalMode() throws {
        let h = try Harness(primary: .init(messages: 400, knowledge: 20, wal: true))
        defer { h.cleanup() }
        let dir = h.dir, primary = h.primary
        let before = try E2E.sha256(primary)
        let r = try h.runJob(["--full"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(try E2E.sha256(primary) == before)
        #expect(try journalMode(primary) == "wal")
        // SQLite itself needs -wal/-shm to read a WAL database; nothing else may appear.
        let extra = Set(try E2E.listing(dir)).subtracting(["primary.db", "job.yml", "out", "primary.db-wal", "primary.db-shm"])
        #expect(extra.isEmpty, "unexpected files: \(extra)")
        let walSize = (try? FileManager.default.attributesOfItem(atPath: primary.path + "-wal")[.size] as? Int) ?? 0
        #expect(walSize == 0, "a reader must not write to the WAL")
    }

    @Test(arguments: ["same", "hardlink", "symlink"])
    func outputThatIsThePrimaryIsRefused(kind: String) throws {
        let h = try Harness("primary\(kind)", server: nil, primary: .init(messages: 50, knowledge: 5), job: nil)
        defer { h.cleanup() }
        let dir = h.dir, primary = h.primary
        let output: String
        switch kind {
        case "same": output = "primary.db"
        case "hardlink":
            try FileManager.default.linkItem(at: primary, to: dir.appendingPathComponent("link.db"))
            output = "link.db"
        default:
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("link.db"), withDestinationURL: primary)
            output = "link.db"
        }
        let before = try E2E.sha256(primary)
        try h.writeJob(output: output)
        let listing = try E2E.listing(dir)
        let r = try h.runJob(["--full"])
        #expect(r.status == 64, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("is the primary database"))
        #expect(try E2E.sha256(primary) == before)
        #expect(try E2E.listing(dir) == listing)
    }

    @Test func failedRunsLeaveTheOutputByteIdentical() throws {
        let h = try Harness(primary: .init(messages: 300, knowledge: 10), job: .init(model: ["max-retries": "1"]))
        defer { h.cleanup() }
        let server = h.server
        #expect(try h.runJob(["--full"]).status == 0)
        let output = h.output
        let published = try E2E.sha256(output)

        // Server error at every attempt.
        try server.faults(["status_sequence": Array(repeating: 500, count: 50)])
        let failing = try h.runJob(["--full", "--restart"])
        #expect(failing.status == 69, "stderr: \(failing.stderr)")
        #expect(failing.stderr.contains("HTTP 500"))
        #expect(try E2E.sha256(output) == published)
        try server.faults([:])

        // Server unreachable.
        let stopped = try EmbedServer()
        let deadURL = stopped.url
        stopped.stop()
        let unreachable = try h.writeJob("dead.yml", model: ["max-retries": "1", "connect-timeout": "2"], url: deadURL)
        let r2 = try h.runJob(["--full", "--restart"], job: unreachable)
        #expect(r2.status == 69, "stderr: \(r2.stderr)")
        #expect(try E2E.sha256(output) == published)

        // A bad query is refused before any work.
        let bad = try h.writeJob("bad.yml", sources: [("message", #"SELECT id, nope AS text FROM "Message""#)])
        let r3 = try h.runJob(["--full"], job: bad)
        #expect(r3.status == 64, "stderr: \(r3.stderr)")
        #expect(r3.stderr.contains("source \"message\""))
        #expect(try E2E.sha256(output) == published)
    }

    @Test func apiKeyAppearsNowhere() throws {
        let key = "sk-test-\(UUID().uuidString)"
        let h = try Harness(server: .init(faults: ["require_key": key]), primary: .init(messages: 200, knowledge: 10),
                            job: .init(model: ["api-key-env": "REINDEX_TEST_KEY", "max-retries": "1"]))
        defer { h.cleanup() }
        let dir = h.dir, server = h.server
        let env = ["REINDEX_TEST_KEY": key]
        let ok = try h.runJob(["--full", "--format", "json"], env: env)
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
        #expect((try server.stats()["auth_requests"] as? Int ?? 0) > 0, "the key was sent to the server")
        // A wrong key and a failing server produce errors: those must not carry it either.
        let denied = try h.runJob(["--full", "--restart"], env: ["REINDEX_TEST_KEY": key + "-wrong"])
        #expect(denied.status == 69)
        try server.faults(["require_key": key, "status_sequence": Array(repeating: 503, count: 20)])
        let failing = try h.runJob(["--full", "--restart"], env: env)
        #expect(failing.status == 69)
        for text in [ok.stdout, ok.stderr, denied.stdout, denied.stderr, failing.stdout, failing.stderr] {
            #expect(!text.contains(key.dropFirst(8)), "key leaked into output")
        }
        // Every file is read (an unreadable one fails the test instead of counting as clean).
        let files = try FileManager.default.subpathsOfDirectory(atPath: dir.path).filter { f in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        #expect(files.contains("out/vectors.db"), "the published file is among those searched: \(files)")
        for f in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(f))
            #expect(data.range(of: Data(key.dropFirst(8).utf8)) == nil, "key leaked into \(f)")
        }
    }
}
