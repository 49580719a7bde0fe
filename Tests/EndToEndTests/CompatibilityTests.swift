import Foundation
import GRDB
import Testing

/// The committed `reindex-vectors/1` file (fixtures/compat/v1, made once by
/// fixtures/compat/make_v1_fixture.py, see fixtures/compat/README.md) must stay
/// usable by the current binary: verify accepts it, an incremental run reuses
/// every vector, search answers from it. The tests work on copies.
///
/// FORMAT /2: when `reindex` starts writing `reindex-vectors/2`, change the
/// values in `Current` (each says what to) — not the fixture, which stays /1.
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

    /// What the current binary does with a /1 file.
    enum Current {
        /// FORMAT /2: "reindex-vectors/2" (the incremental run upgrades the file).
        static let formatAfterIncrementalRun = "reindex-vectors/1"
        /// FORMAT /2: true — the upgrade writes a /2 file even though no row changed
        /// (every row of the fixture fits in one chunk, so its vector is still reused
        /// and the server still sees only the probes).
        static let incrementalRunPublishes = false
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

    @Test func theCommittedFixtureIsTheV1FileItWasMadeAs() throws {
        for (file, hash) in Committed.sha256 {
            #expect(try E2E.sha256(Self.fixture.appendingPathComponent(file)) == hash,
                    "fixtures/compat/v1/\(file) changed: the /1 fixture is never regenerated (see fixtures/compat/README.md); git checkout it")
        }
        let vectors = Self.fixture.appendingPathComponent("vectors-v1.db")
        #expect(try E2E.scalar(vectors, "SELECT value FROM meta WHERE key = 'format'") == Committed.format)
        #expect(try E2E.scalar(vectors, "SELECT count(*) FROM items") == Committed.items)
    }

    @Test func verifyAcceptsTheV1File() throws {
        let (h, output) = try harness()
        defer { h.cleanup() }
        let before = try E2E.sha256(output)
        let text = try h.command("verify", ["--model-url", h.url])
        #expect(text.status == 0, "stdout: \(text.stdout) stderr: \(text.stderr)")
        #expect(text.stdout.contains("consistent"), "\(text.stdout)")
        let json = try h.command("verify", ["--model-url", h.url, "--format", "json"])
        #expect(json.status == 0, "stdout: \(json.stdout) stderr: \(json.stderr)")
        let report = try E2E.json(json.stdout)
        #expect(report["consistent"] as? Bool == true)
        #expect((report["problems"] as? [String])?.isEmpty == true, "\(report["problems"] ?? "none")")
        #expect(try E2E.sha256(output) == before, "verify never writes")
        #expect(try h.server.stats()["requests"] as? Int == 0, "verify calls no model")
    }

    @Test func anIncrementalRunReusesEveryV1Vector() throws {
        let (h, output) = try harness()
        defer { h.cleanup() }
        let before = try E2E.sha256(output)
        let vectorsBefore = try E2E.items(output)
        let r = try h.runJob(["--model-url", h.url, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["mode"] as? String == "incremental")
        #expect(summary["full_reason"] is NSNull, "\(summary["full_reason"] ?? "")")
        #expect(summary["unchanged"] as? Int == Committed.items)
        // `reused` counts vectors copied into a new file: none when nothing is published.
        #expect(summary["reused"] as? Int == (Current.incrementalRunPublishes ? Committed.items : 0))
        #expect(summary["embedded"] as? Int == 0)
        #expect(summary["added"] as? Int == 0 && summary["changed"] as? Int == 0 && summary["removed"] as? Int == 0)

        // The server saw the drift probes and nothing else: every vector was reused.
        let stats = try h.server.stats()
        #expect(stats["inputs"] as? Int == Probe.count)
        #expect(stats["requests"] as? Int == 1)

        #expect(summary["published"] as? Bool == Current.incrementalRunPublishes)
        #expect(try E2E.scalar(output, "SELECT value FROM meta WHERE key = 'format'") == Current.formatAfterIncrementalRun)
        if !Current.incrementalRunPublishes {
            #expect(try E2E.sha256(output) == before, "nothing to publish: the file is untouched")
        }
        // Published or not, every item keeps its hash and vector.
        let after = try E2E.items(output)
        #expect(after.count == vectorsBefore.count)
        for (key, v) in vectorsBefore {
            #expect(after[key]?.hash == v.hash && after[key]?.vector == v.vector, "\(key)")
        }
    }

    @Test func searchAnswersFromTheV1File() throws {
        let (h, _) = try harness()
        defer { h.cleanup() }
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: h.dir.appendingPathComponent("primary.db").path, configuration: config)
        let pick: (id: String, content: String)? = try q.read { db in
            try Row.fetchOne(db, sql: """
                SELECT id, content FROM "Message" WHERE "deletedAt" IS NULL AND length(trim(content)) > 20
                  AND content NOT LIKE '%' || char(10) || '%' ORDER BY id LIMIT 1 OFFSET 5
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
