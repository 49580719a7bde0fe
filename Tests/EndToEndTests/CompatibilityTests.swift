import Foundation
import GRDB
import Testing

/// The committed `reindex-vectors/1` file (fixtures/compat/v1, made once by
/// fixtures/compat/make_fixture.py --version 1, see fixtures/compat/README.md) and the
/// upgrade to `reindex-vectors/2`: verify and search refuse the /1 file with a
/// message saying the next run upgrades it; an incremental run publishes a /2
/// file and sends the model only the rows that now have several chunks, every
/// other vector copied from the /1 file. The tests work on copies.
@Suite(.serialized) struct CompatibilityTests {
    static let fixture = E2E.root.appendingPathComponent("fixtures/compat/v1")

    /// The committed files. These never change: a different hash means the /1
    /// fixture was regenerated or damaged; restore it from git instead.
    enum Committed {
        static let format = "reindex-vectors/1"
        static let items = 39
        static let sha256 = [
            "primary.db": "0b7516cfb44be6b457d841679a328778ba91ac1ea904fd98e54c8c0ce65159b5",
            "vectors-v1.db": "c3c4140a29700122c010c5ff756d39c4352de968ad83e31be9386f97f20746b2",
        ]
    }

    /// Copies of the committed files in a temp dir, and the fixture server.
    /// The job's model.url is a placeholder: every command gets `--model-url`.
    func harness(_ name: String = #function) throws -> (Harness, output: URL) {
        let h = try Harness(name, primary: nil, job: nil)
        do {
            for file in ["primary.db", "vectors-v1.db", "job.yml"] {
                try FileManager.default.copyItem(at: Self.fixture.appendingPathComponent(file), to: h.dir.appendingPathComponent(file))
            }
            return (h, h.dir.appendingPathComponent("vectors-v1.db"))
        } catch {
            h.cleanup()
            throw error
        }
    }

    struct Item: Equatable { var chunk: Int; var start: Int; var end: Int; var hash: Data; var vector: Data }

    /// Every item of a file by row ("source/id"), in chunk order; a /1 file's items are chunk 0.
    static func rows(_ path: URL, v1: Bool) throws -> [String: [Item]] {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: path.path, configuration: config)
        defer { try? q.close() }
        let sql = v1 ? "SELECT source, source_id, 0, 0, 0, content_hash, embedding FROM items"
                     : "SELECT source, source_id, chunk, span_start, span_end, content_hash, embedding FROM items ORDER BY source, source_id, chunk"
        return try q.read { db in
            var out: [String: [Item]] = [:]
            for r in try Row.fetchAll(db, sql: sql) {
                out["\(r[0] as String)/\(r[1] as String)", default: []].append(Item(chunk: r[2], start: r[3], end: r[4], hash: r[5], vector: r[6]))
            }
            return out
        }
    }

    @Test func theCommittedFixtureIsTheV1FileItWasMadeAs() throws {
        for (file, hash) in Committed.sha256 {
            #expect(try E2E.sha256(Self.fixture.appendingPathComponent(file)) == hash,
                    "fixtures/compat/v1/\(file) changed: the /1 fixture is never regenerated (see fixtures/compat/README.md); git checkout it")
        }
        let vectors = Self.fixture.appendingPathComponent("vectors-v1.db")
        #expect(try E2E.scalar(vectors, "SELECT value FROM meta WHERE key = 'format'") == Committed.format)
        #expect(try E2E.scalar(vectors, "SELECT count(*) FROM items") == Committed.items)
    }

    @Test func verifyAndSearchSayTheNextRunUpgradesAV1File() throws {
        let (h, output) = try harness()
        defer { h.cleanup() }
        let before = try E2E.sha256(output)
        let v = try h.command("verify", ["--model-url", h.url])
        #expect(v.status == 65, "stdout: \(v.stdout) stderr: \(v.stderr)")
        #expect(v.stdout.contains("next run upgrades it"), "\(v.stdout)")
        let s = try h.command("search", ["anything", "--model-url", h.url])
        #expect(s.status == 65, "\(s.stderr)")
        #expect(s.stderr.contains("upgrades the file"), "\(s.stderr)")
        #expect(try E2E.sha256(output) == before, "neither writes")
        #expect(try h.server.stats()["inputs"] as? Int == 0, "verify calls no model; search refuses before embedding")
    }

    @Test func anUpgradeSendsOnlyTheRowsThatNowHaveSeveralChunks() throws {
        let (h, output) = try harness()
        defer { h.cleanup() }
        let old = try Self.rows(output, v1: true)
        #expect(old.count == Committed.items)
        let r = try h.runJob(["--model-url", h.url, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["mode"] as? String == "incremental")
        #expect(summary["full_reason"] is NSNull, "\(summary["full_reason"] ?? "")")
        #expect(summary["unchanged"] as? Int == Committed.items, "no row changed")
        #expect(summary["published"] as? Bool == true, "the upgrade publishes a /2 file")
        #expect(try E2E.scalar(output, "SELECT value FROM meta WHERE key = 'format'") == "reindex-vectors/2")
        #expect(try E2E.scalar(output, "SELECT value FROM meta WHERE key = 'row_count'") == String(Committed.items))

        let new = try Self.rows(output, v1: false)
        #expect(Set(new.keys) == Set(old.keys))
        let multi = new.filter { $0.value.count > 1 }
        let single = new.filter { $0.value.count == 1 }
        #expect(!multi.isEmpty && !single.isEmpty, "the fixture has rows of both kinds: \(multi.count) multi, \(single.count) single")
        // A row that fits one chunk keeps exactly its /1 input, hash and vector.
        for (key, items) in single {
            #expect(items[0].hash == old[key]![0].hash && items[0].vector == old[key]![0].vector, "\(key)")
        }
        // The server saw the drift probes and the chunks of the multi-chunk rows, nothing else.
        let stats = try h.server.stats(texts: true)
        let chunks = multi.values.reduce(0) { $0 + $1.count }
        #expect(stats["inputs"] as? Int == Probe.count + chunks, "\(multi.count) rows of \(chunks) chunks")
        #expect(summary["embedded"] as? Int == chunks)
        #expect(summary["reused"] as? Int == single.count)

        // The upgraded file is a consistent /2 file; search answers from it.
        let v = try h.command("verify", ["--model-url", h.url])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        // A second run changes nothing and sends only the probes.
        try h.server.reset()
        let again = try h.runJob(["--model-url", h.url, "--format", "json"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try E2E.json(again.stdout)["published"] as? Bool == false, "\(again.stdout)")
        #expect(try h.server.stats()["inputs"] as? Int == Probe.count)
    }

    @Test func searchAnswersFromTheUpgradedFile() throws {
        let (h, _) = try harness()
        defer { h.cleanup() }
        #expect(try h.runJob(["--model-url", h.url]).status == 0)
        try h.server.reset()
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: h.dir.appendingPathComponent("primary.db").path, configuration: config)
        let pick: (id: String, content: String)? = try q.read { db in
            try Row.fetchOne(db, sql: """
                SELECT id, content FROM "Message" WHERE "deletedAt" IS NULL AND length(trim(content)) > 20
                  AND length(content) < 300 AND content NOT LIKE '%' || char(10) || '%' ORDER BY id LIMIT 1 OFFSET 5
                """).map { ($0[0], $0[1]) }
        }
        try q.close()
        let message = try #require(pick, "the fixture primary has live single-line messages")
        let r = try h.command("search", [message.content, "--k", "3", "--format", "json", "--model-url", h.url])
        #expect(r.status == 0, "\(r.stderr)")
        let results = try E2E.json(r.stdout)["results"] as? [[String: Any]] ?? []
        #expect(results.count == 3)
        #expect(results.first?["source"] as? String == "message")
        #expect(results.first?["id"] as? String == message.id, "\(results)")
        #expect(abs((results.first?["score"] as? Double ?? 0) - 1) < 1e-4)
        #expect(try h.server.stats()["inputs"] as? Int == 1, "only the query was embedded")
    }
}

/// The committed `reindex-vectors/2` file as the first release of `/2` wrote it
/// (fixtures/compat/v2, made by fixtures/compat/make_fixture.py --version 2 with
/// the binary of commit a149f18): no keyword index and none of the clone path's
/// meta keys. Later additions to `/2` are optional, so every reader and a run
/// must take it as it is: verify and search read it, a run adds the keyword
/// index without embedding, and an incremental run clones it.
@Suite(.serialized) struct CompatibilityV2Tests {
    static let fixture = E2E.root.appendingPathComponent("fixtures/compat/v2")
    static let sha256 = [
        "primary.db": "0b7516cfb44be6b457d841679a328778ba91ac1ea904fd98e54c8c0ce65159b5",
        "vectors-v2.db": "ce302f0ccc008c68a40e7fbacaf44f035e65fd3e265323ca7071bbec273ac577",
    ]

    func harness(_ name: String = #function) throws -> (Harness, output: URL) {
        let h = try Harness(name, primary: nil, job: nil)
        do {
            for file in ["primary.db", "vectors-v2.db", "job.yml"] {
                try FileManager.default.copyItem(at: Self.fixture.appendingPathComponent(file), to: h.dir.appendingPathComponent(file))
            }
            return (h, h.dir.appendingPathComponent("vectors-v2.db"))
        } catch {
            h.cleanup()
            throw error
        }
    }

    @Test func theCommittedFixtureIsTheFileItWasMadeAs() throws {
        for (file, hash) in Self.sha256 {
            #expect(try E2E.sha256(Self.fixture.appendingPathComponent(file)) == hash,
                    "fixtures/compat/v2/\(file) changed: a compatibility fixture is never regenerated (see fixtures/compat/README.md); git checkout it")
        }
        let vectors = Self.fixture.appendingPathComponent("vectors-v2.db")
        #expect(try E2E.scalar(vectors, "SELECT value FROM meta WHERE key = 'format'") == "reindex-vectors/2")
        #expect(try E2E.scalar(vectors, "SELECT count(*) FROM meta WHERE key IN ('keywords', 'vec_dead_rows', 'full_check_at')") == 0)
        #expect(try E2E.scalar(vectors, "SELECT count(*) FROM sqlite_schema WHERE name = 'items_rows'") == 0)
    }

    /// A file without `items_rows`: the first run (a full check, due on a
    /// file that never recorded one) clones it and adds the index; on a file
    /// without it whose full check is not due the hash pass compares by
    /// probing `items` and finds exactly the changed rows; with it, by merge.
    @Test func aRunComparesWithoutTheRowsIndexAndTheCloneAddsIt() throws {
        let (h, output) = try harness()
        defer { h.cleanup() }
        let primary = h.dir.appendingPathComponent("primary.db")
        func read(_ r: E2E.Result) -> Int? {
            let line = r.stderr.split(separator: "\n").first { $0.contains("hashed every row in SQL") && $0.contains("source=message") }
            return line.flatMap { $0.firstMatch(of: /read=(\d+)/) }.flatMap { Int($0.1) }
        }
        func index() throws -> String? { try E2E.scalar(output, "SELECT sql FROM sqlite_schema WHERE name = 'items_rows'") }
        _ = try E2E.mutatePrimary(primary, ["--insert", "2", "--update", "1", "--delete", "1"])
        let first = try h.runJob(["--model-url", h.url, "--format", "json"])
        #expect(first.status == 0, "\(first.stderr)")
        let summary = try E2E.json(first.stdout)
        #expect((summary["build"] as? String ?? "").hasPrefix("clone") && summary["added"] as? Int == 2 && summary["changed"] as? Int == 1
                && summary["removed"] as? Int == 1 && summary["full_check"] as? Bool == true, "\(summary)")
        #expect(try index() == "CREATE INDEX items_rows ON items(source, source_id, chunk, row_hash)")

        // As a file from before the index, whose full check is not due.
        let q = try DatabaseQueue(path: output.path)
        try q.writeWithoutTransaction { db in try db.execute(sql: "DROP INDEX items_rows") }
        try q.close()
        let touched = try E2E.mutatePrimary(primary, ["--insert", "1", "--update", "2"])
        let probed = try h.runJob(["--model-url", h.url, "--format", "json"])
        #expect(probed.status == 0, "\(probed.stderr)")
        let next = try E2E.json(probed.stdout)
        #expect(next["added"] as? Int == 1 && next["changed"] as? Int == 2 && next["full_check"] as? Bool == false, "\(next)")
        #expect(read(probed) == (touched["inserted"] ?? []).count + (touched["updated"] ?? []).count, "\(probed.stderr)")
        #expect(try index() != nil, "the clone adds the index again")
        #expect(try h.command("verify", ["--model-url", h.url]).status == 0)
        let again = try h.runJob(["--model-url", h.url, "--format", "json"])
        #expect(try E2E.json(again.stdout)["published"] as? Bool == false)
        #expect(read(again) == 0, "\(again.stderr)")
    }

    @Test func readersTakeItAndARunAddsKeywordsThenClonesIt() throws {
        let (h, output) = try harness()
        defer { h.cleanup() }
        let before = try CompatibilityTests.rows(output, v1: false)
        let items: Int = try #require(try E2E.scalar(output, "SELECT count(*) FROM items"))
        #expect(try h.command("verify", ["--model-url", h.url]).status == 0)
        let s = try h.command("search", ["lake", "--format", "json", "--model-url", h.url])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try E2E.json(s.stdout)["mode"] as? String == "vector", "no keyword index: vector search")

        // keywords: fts5 over the old file: published, cloned, nothing embedded, every vector kept.
        let job = h.dir.appendingPathComponent("job.yml")
        let yaml = try String(contentsOf: job, encoding: .utf8).replacingOccurrences(of: "index: none\n", with: "index: none\nkeywords: fts5\n")
        try yaml.write(to: job, atomically: true, encoding: .utf8)
        try h.server.reset()
        let r = try h.runJob(["--model-url", h.url, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["published"] as? Bool == true && summary["embedded"] as? Int == 0, "\(summary)")
        #expect((summary["build"] as? String ?? "").hasPrefix("clone"), "\(summary)")
        #expect(try h.server.stats()["requests"] as? Int == 0)
        #expect(try CompatibilityTests.rows(output, v1: false) == before, "every chunk, span and vector kept")
        #expect(try E2E.scalar(output, "SELECT count(*) FROM keywords") == items)
        #expect(try h.command("verify", ["--model-url", h.url]).status == 0)
        let k = try h.command("search", ["lake", "--format", "json", "--model-url", h.url])
        #expect(try E2E.json(k.stdout)["mode"] as? String == "hybrid")

        // New rows: the clone path embeds only them.
        _ = try E2E.mutatePrimary(h.dir.appendingPathComponent("primary.db"), ["--insert", "3"])
        let again = try h.runJob(["--model-url", h.url, "--format", "json"])
        #expect(again.status == 0, "\(again.stderr)")
        let next = try E2E.json(again.stdout)
        #expect((next["build"] as? String ?? "").hasPrefix("clone") && next["added"] as? Int == 3, "\(next)")
        #expect(try h.command("verify", ["--model-url", h.url]).status == 0)
    }
}
