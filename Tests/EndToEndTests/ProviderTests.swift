import Foundation
import GRDB
import Testing

/// Issue: model servers (OpenAI, Ollama, TEI, Unix sockets, a managed local
/// server) and resilience when they misbehave.
@Suite(.serialized) struct ProviderTests {
    struct Setup {
        let dir: URL
        let server: EmbedServer
        let primary: URL
        var output: URL { dir.appendingPathComponent("out/vectors.db") }
    }

    func setUp(_ name: String = #function, messages: Int = 600, unix: Bool = false) throws -> Setup {
        let dir = try E2E.tempDir(name)
        let server = try EmbedServer(unix: unix)
        let primary = dir.appendingPathComponent("primary.db")
        try E2E.makePrimary(primary, messages: messages, knowledge: 20)
        return Setup(dir: dir, server: server, primary: primary)
    }

    /// The reference result through the OpenAI path (vectors depend only on the text), with the
    /// job's `model` keys of the run it is compared with.
    func reference(_ s: Setup, model: [String: String] = [:]) throws -> [String: (hash: Data, vector: [Float])] {
        let job = try E2E.writeJob(s.dir, url: s.server.url, output: "ref/vectors.db", model: model, name: "ref.yml")
        let r = try E2E.reindex(["--job", job.path, "--full"])
        guard r.status == 0 else { throw E2E.Failure(r.stderr) }
        return try E2E.items(s.dir.appendingPathComponent("ref/vectors.db"))
    }

    func expectEqual(_ a: [String: (hash: Data, vector: [Float])], _ b: [String: (hash: Data, vector: [Float])]) {
        #expect(a.count == b.count)
        var worst: Float = 0
        for (k, v) in b {
            guard let x = a[k] else { Issue.record("missing \(k)"); continue }
            #expect(x.hash == v.hash)
            for (p, q) in zip(x.vector, v.vector) { worst = max(worst, abs(p - q)) }
        }
        #expect(worst <= 1e-6, "max difference \(worst)")
    }

    func byPath(_ stats: [String: Any], _ path: String) -> Int {
        ((stats["by_path"] as? [String: Any])?[path] as? [String: Any])?["requests"] as? Int ?? 0
    }

    @Test(arguments: ["ollama", "tei"])
    func otherProvidersGiveTheSameVectors(provider: String) throws {
        let s = try setUp("provider\(provider)")
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        // Rows capped at 5,000 characters stay one chunk on every provider, whatever window and
        // characters-per-token figure it reports (Ollama's window without num_ctx is 2,048 tokens,
        // estimated at 3 characters a token), so the vectors compare row by row.
        let ref = try reference(s, model: ["max-input-chars": "5000"])
        try s.server.reset()
        // TEI announces 10 inputs and 2,500 tokens per request in /info (the longest input has
        // 2,000); the job must stay within both.
        if provider == "tei" { try s.server.faults(["max_batch": 10, "max_batch_tokens": 2500]) }
        let job = try E2E.writeJob(s.dir, url: s.server.url, model: ["provider": provider, "batch-size": "64", "truncate": "true",
                                                                      "max-input-chars": "5000"])
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        expectEqual(try E2E.items(s.output), ref)
        let stats = try s.server.stats()
        if provider == "ollama" {
            #expect(byPath(stats, "/api/embed") > 0)
        } else {
            #expect(byPath(stats, "/info") == 2, "TEI's /info is read for the window, then for the batch limits")
            // /info said 10 per request: no request was refused for its size.
            #expect((stats["statuses"] as? [String: Int])?["422"] == nil)
            #expect((stats["statuses"] as? [String: Int])?["413"] == nil, "batches stay within max_batch_tokens")
            // A single input over the server's token budget is split in two, not failed, nothing dropped.
            try s.server.faults(["max_batch": 10, "max_batch_tokens": 1000])
            let small = try E2E.reindex(["--job", job.path, "--full", "--restart", "--format", "json"])
            #expect(small.status == 0, "\(small.stderr)")
            let summary = try E2E.json(small.stdout)
            #expect((summary["split_chunks"] as? Int ?? 0) >= 1, "\(small.stdout)")
            #expect(summary["failed"] as? Int == 0)
            #expect(summary["rows"] as? Int == ref.count, "every row is in the file")
            let n = ref.count + Probe.count
            #expect((stats["requests"] as? Int ?? 0) >= (n + 9) / 10)
        }
    }

    @Test func unixSocketURL() throws {
        let s = try setUp(unix: true)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        #expect(s.server.url.hasPrefix("unix:"))
        let job = try E2E.writeJob(s.dir, url: s.server.url)
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try E2E.json(r.stdout)["embedded"] as? Int ?? 0) > 500)
    }

    @Test func transientFailuresAreRetriedToACompleteRun() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let ref = try reference(s)
        try s.server.faults(["status_sequence": [503, 429, 500, 429, 502, 503], "retry_after": "1", "drop_next": 3, "slow_next": 2, "slow_ms": 4000])
        let job = try E2E.writeJob(s.dir, url: s.server.url, model: ["max-retries": "12", "timeout": "2"])
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        // The server consumes faults in order slow → drop → status: the two slowed requests are also the first two drops.
        #expect((summary["retries"] as? Int ?? 0) >= 9, "6 statuses + 3 drops (2 of them slow)")
        expectEqual(try E2E.items(s.output), ref)
    }

    @Test func aPoisonedInputIsIsolatedAndRetriedNextRun() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        // One message's text; the server rejects any batch containing it.
        let q = try DatabaseQueue(path: s.primary.path)
        let (id, content) = try q.read { db -> (String, String) in
            let row = try Row.fetchOne(db, sql: #"SELECT id, content FROM "Message" WHERE "deletedAt" IS NULL AND length(content) > 40 LIMIT 1 OFFSET 100"#)!
            return (row[0], row[1])
        }
        try q.close()
        try s.server.faults(["poison": String(content.prefix(40))])
        let job = try E2E.writeJob(s.dir, url: s.server.url)
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 3, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["failed"] as? Int == 1)
        let failures = summary["failures"] as? [[String: Any]] ?? []
        #expect(failures.first?["id"] as? String == id)
        let message = (failures.first?["error"] as? String) ?? ""
        #expect(message.contains("invalid"))
        #expect(try E2E.scalar(s.output, "SELECT count(*) FROM failures WHERE source_id = '\(id)' AND attempts = 1") == 1)
        #expect(try E2E.scalar(s.output, "SELECT count(*) FROM items WHERE source_id = '\(id)'") == 0)
        #expect((summary["embedded"] as? Int ?? 0) > 500, "the rest is stored")

        // Next run retries it: still poisoned → attempts 2; then healed → stored, failure gone.
        let again = try E2E.reindex(["--job", job.path, "--format", "json"])
        #expect(again.status == 3)
        #expect(try E2E.scalar(s.output, "SELECT attempts FROM failures WHERE source_id = '\(id)'") == 2)
        try s.server.faults([:])
        let healed = try E2E.reindex(["--job", job.path, "--format", "json"])
        #expect(healed.status == 0, "\(healed.stderr)")
        #expect(try E2E.scalar(s.output, "SELECT count(*) FROM failures") == 0)
        #expect(try E2E.scalar(s.output, "SELECT count(*) FROM items WHERE source_id = '\(id)'") == 1)
    }

    @Test func aTooLargeBatchLeadsToSmallerBatches() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        try s.server.faults(["max_batch": 16])
        let job = try E2E.writeJob(s.dir, url: s.server.url, model: ["batch-size": "64", "concurrency": "2"])
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let stats = try s.server.stats()
        let rejected = (stats["statuses"] as? [String: Int])?["413"] ?? 0
        #expect(rejected >= 1 && rejected <= 6, "the smaller size is kept for the rest of the run (\(rejected) rejections)")
        #expect(r.stderr.contains("using smaller batches"))
    }

    @Test func wrongDimensionIsAClearError() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        try s.server.faults(["wrong_dimensions": 128])
        let job = try E2E.writeJob(s.dir, url: s.server.url)
        let r = try E2E.reindex(["--job", job.path, "--full"])
        #expect(r.status == 78, "a configuration problem, not an outage: \(r.stderr)")
        #expect(r.stderr.contains("returned 128 dimensions") && r.stderr.contains("declares 384") && r.stderr.contains("set model.dimensions to 128"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.output.path))
    }

    @Test func nonFiniteVectorsFailTheirRowOnly() throws {
        let s = try setUp(messages: 100)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        try s.server.faults(["nan": true])
        let job = try E2E.writeJob(s.dir, url: s.server.url, model: ["batch-size": "50"])
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 3, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect((summary["failed"] as? Int ?? 0) >= 1)
        let firstError = ((summary["failures"] as? [[String: Any]])?.first?["error"] as? String) ?? ""
        #expect(firstError.contains("NaN"))
    }

    @Test func aServerThatRejectsEncodingFormatGetsFloats() throws {
        let s = try setUp()
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let ref = try reference(s)
        try s.server.faults(["reject_encoding_format": true])
        let job = try E2E.writeJob(s.dir, url: s.server.url)
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        expectEqual(try E2E.items(s.output), ref)
        let stats = try s.server.stats()
        #expect((stats["statuses"] as? [String: Int])?["400"] ?? 0 <= 4, "asked once more without it, then kept floats")
    }

    /// `max-input-chars` caps a whole row up front (counted as truncated); an input the server
    /// calls too long is split in two at its best boundary, nothing dropped.
    @Test func longRowsAreCappedUpFrontAndTooLongChunksSplit() throws {
        let s = try setUp(messages: 1300)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        try s.server.faults(["max_input_chars": 2000])
        let job = try E2E.writeJob(s.dir, url: s.server.url, model: ["max-input-chars": "6000"])
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect((summary["truncated"] as? Int ?? 0) >= 1)
        #expect((summary["split_chunks"] as? Int ?? 0) >= 1, "\(r.stdout)")
        #expect(summary["failed"] as? Int == 0)
        let texts = try s.server.stats(texts: true)["ok_texts"] as? [String] ?? []
        #expect(texts.allSatisfy { $0.count <= 2000 })
        // Nothing dropped: every row's chunks still cover its (capped) text, and verify agrees.
        let v = try E2E.reindex(["verify", "--job", job.path])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        #expect(v.stdout.contains("chunks cover their rows"))
    }

    /// On the clone path a chunk the server calls too long is split as in a build, and only the
    /// pieces this run wrote are renumbered: every row's chunks are numbered 0..n-1 again.
    @Test func tooLongChunksSplitOnTheClonePathAreNumberedDensely() throws {
        let s = try setUp(messages: 1300)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let job = try E2E.writeJob(s.dir, url: s.server.url, model: ["max-input-chars": "6000"])
        let full = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(full.status == 0, "\(full.stderr)")
        #expect(try E2E.json(full.stdout)["split_chunks"] as? Int == 0)
        try s.server.faults(["max_input_chars": 2000])
        let q = try DatabaseQueue(path: s.primary.path)
        try q.write { db in
            try db.execute(sql: #"UPDATE "Message" SET content = content || ' Edited.' WHERE id IN (SELECT id FROM "Message" ORDER BY length(content) DESC LIMIT 3)"#)
        }
        try q.close()
        let r = try E2E.reindex(["--job", job.path, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect((summary["build"] as? String ?? "").hasPrefix("clone: "), "\(summary["build"] ?? "nil")")
        #expect((summary["split_chunks"] as? Int ?? 0) >= 1, "\(r.stdout)")
        let output = s.dir.appendingPathComponent("out/vectors.db")
        let sparse: Int? = try E2E.scalar(output, "SELECT count(*) FROM (SELECT max(chunk) + 1 = count(*) AS dense FROM items GROUP BY source, source_id) WHERE NOT dense")
        #expect(sparse == 0)
        let v = try E2E.reindex(["verify", "--job", job.path])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
    }

    /// A short input the server rejects as too long is a failed row (exit 3), never shortened:
    /// a vector for a text nobody wrote would be published.
    @Test func aShortRowAnsweredTooLongIsAFailureNotShortened() throws {
        let s = try setUp(messages: 60)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        try s.server.faults(["max_input_chars": 20])
        let job = try E2E.writeJob(s.dir, url: s.server.url, model: ["max-retries": "1"])
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 3, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect((summary["failed"] as? Int ?? 0) > 0)
        let texts = try s.server.stats(texts: true)["ok_texts"] as? [String] ?? []
        // Whatever was stored was sent whole: no input shorter than a row's text was ever accepted for it.
        let items = try E2E.items(s.output)
        #expect(items.count + (summary["failed"] as? Int ?? 0) == (summary["scanned"] as? Int ?? 0) - (summary["skipped"] as? Int ?? 0))
        #expect(texts.allSatisfy { $0.count <= 20 })
        let failures: Int? = try E2E.scalar(s.output, "SELECT count(*) FROM failures")
        #expect(failures == summary["failed"] as? Int)
    }

    @Test func prefixIsSentAndHashedAndDimensionsParamIsSent() throws {
        let s = try setUp(messages: 100)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        // The fixture server honours OpenAI's `dimensions`: 128-d vectors only when it is sent.
        let job = try E2E.writeJob(s.dir, url: s.server.url, model: ["prefix": "'passage: '", "dimensions": "128", "dimensions-param": "true"])
        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let texts = try s.server.stats(texts: true)["ok_texts"] as? [String] ?? []
        #expect(!texts.isEmpty && texts.allSatisfy { $0.hasPrefix("passage: ") })
        let items = try E2E.items(s.output)
        #expect(items.values.allSatisfy { $0.vector.count == 128 })
        // content_hash covers the prefix: the hash of a stored row is the hash of "passage: " + text.
        let q = try DatabaseQueue(path: s.primary.path)
        let (id, content) = try q.read { db -> (String, String) in
            let row = try Row.fetchOne(db, sql: #"SELECT id, content FROM "Message" WHERE "deletedAt" IS NULL AND trim(content) != '' LIMIT 1"#)!
            return (row[0], row[1])
        }
        try q.close()
        #expect(items["message/\(id)"]?.hash == Digest.sha256(Data(("passage: " + content).utf8)))
        // Without the parameter the server answers 384-d vectors: a clear wrong-dimension error.
        let plain = try E2E.writeJob(s.dir, url: s.server.url, model: ["dimensions": "128"], name: "plain.yml")
        let p = try E2E.reindex(["--job", plain.path, "--full"])
        #expect(p.status == 78 && p.stderr.contains("returned 384 dimensions"), "\(p.stderr)")
    }

    @Test func managedServerIsStartedAndAlwaysStopped() throws {
        let s = try setUp(messages: 300)
        defer { try? FileManager.default.removeItem(at: s.dir); s.server.stop() }
        let port = try E2E.freePort()
        let marker = "managed-\(UUID().uuidString.prefix(8))"
        let serverBlock = """
            {command: ["python3", "\(E2E.root.path)/fixtures/embed_server.py", "--port", "\(port)", "--model", "\(marker)", "--quiet"], ready-url: "http://127.0.0.1:\(port)/health", ready-timeout: 60, log: "server.log"}
            """
        // Small batches: the interrupted run below has many rounds of slow requests to be stopped in.
        let job = try E2E.writeJob(s.dir, url: "http://127.0.0.1:\(port)", model: ["server": serverBlock, "batch-size": "8"])
        func running() throws -> Bool { try E2E.run("/usr/bin/pgrep", ["-f", marker]).status == 0 }

        let r = try E2E.reindex(["--job", job.path, "--full", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try !running(), "stopped after success")

        // Interrupted: SIGTERM while the server is slow.
        _ = try E2E.mutatePrimary(s.primary, ["--insert", "100"])
        let p = try E2E.spawn(E2E.binary, ["--job", job.path, "--full"])
        try E2E.wait("the managed server to answer", timeout: 60) {
            (try? E2E.run("/usr/bin/curl", ["-sf", "-X", "POST", "-d", #"{"delay_ms": 1500}"#, "http://127.0.0.1:\(port)/_faults"]).status) == 0
        }
        try E2E.wait("a request", timeout: 60) {
            let out = (try? E2E.run("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(port)/_stats"]).stdout) ?? ""
            return out.contains("\"requests\": ") && !out.contains("\"requests\": 0,")
        }
        kill(p.processIdentifier, SIGTERM)
        try E2E.wait("reindex to stop", timeout: 60) { !p.isRunning }
        #expect(p.terminationStatus == 143, "\(E2E.readSpawned(p))")
        #expect(try !running(), "stopped after interruption")

        // Never ready: a clear error within the timeout, and the process is gone. The duration is
        // unique to this run, so another `sleep 300` on the machine is not taken for the server.
        let seconds = "300.\(Int.random(in: 100_000...999_999))"
        let never = try E2E.writeJob(s.dir, url: "http://127.0.0.1:\(port)", model: [
            "server": #"{command: ["sleep", "\#(seconds)"], ready-url: "http://127.0.0.1:\#(port)/health", ready-timeout: 2}"#], name: "never.yml")
        let n = try E2E.reindex(["--job", never.path, "--full"])
        #expect(n.status == 69)
        #expect(n.stderr.contains("not ready after 2 s"))
        let left = try E2E.run("/usr/bin/pgrep", ["-af", "sleep \(seconds)"])
        #expect(left.status != 0, "still running: \(left.stdout); reindex said: \(n.stderr)")
    }

    /// A server that exits before it is ready is reported at once with its
    /// exit code or signal and, when it has a log, the log's last lines.
    @Test(arguments: [
        (#"["no-such-model-server-e2e", "--port", "1"]"#, ["command not found"]),
        (#"["sh", "-c", "no-such-model-server-e2e --port 1"]"#, ["exit code 127: command not found", "not found"]),
        (#"["sh", "-c", "echo starting; echo 'fatal: cannot load model.gguf' >&2; exit 3"]"#, ["exit code 3", "fatal: cannot load model.gguf"]),
        (#"["sh", "-c", "echo about to die; kill -KILL $$"]"#, ["killed by signal 9", "about to die"]),
    ])
    func managedServerThatExitsEarlySaysWhy(command: String, says: [String]) throws {
        let dir = try E2E.tempDir("managed-early-exit")
        defer { try? FileManager.default.removeItem(at: dir) }
        try E2E.makePrimary(dir.appendingPathComponent("primary.db"), messages: 20, knowledge: 5)
        let port = try E2E.freePort()
        // An old line from an earlier run must not be quoted as this run's.
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: true)
        try "stale line from an earlier run\n".write(to: dir.appendingPathComponent("logs/early.log"), atomically: false, encoding: .utf8)
        let job = try E2E.writeJob(dir, url: "http://127.0.0.1:\(port)", model: [
            "server": "{command: \(command), ready-url: \"http://127.0.0.1:\(port)/health\", ready-timeout: 120, log: logs/early.log}"])
        let r = try E2E.reindex(["--job", job.path, "--full"])
        #expect(r.status == 69, "\(r.stderr)")
        for text in says { #expect(r.stderr.contains(text), "\(r.stderr)") }
        #expect(!r.stderr.contains("stale line"), "\(r.stderr)")
        #expect(!r.stderr.contains("not ready after"), "an early exit is not a timeout: \(r.stderr)")
        #expect(r.stderr.contains(" — "), "says what to do: \(r.stderr)")
    }
}
