import Foundation
import GRDB
import Testing

/// Issue 7: the sqlite-vec `vec_items` index in the published file, read by a
/// real consumer (another SQLite client with the extension loaded).
/// Tests that need the extension fail without it (`Vec.missing` says how to install
/// it): the test environment always has it, so a skip would hide a broken set-up.
@Suite(.serialized)
struct VecIndexTests {
    /// id → unit vector of every item.
    func vectors(_ path: URL) throws -> [(id: Int64, vector: [Float])] {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: path.path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in
            try Row.fetchAll(db, sql: "SELECT id, embedding FROM items ORDER BY id").map { row in
                let blob: Data = row[1]
                return (row[0], blob.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
            }
        }
    }

    func meta(_ path: URL, _ key: String) throws -> String? {
        try E2E.scalar(path, "SELECT value FROM meta WHERE key = '\(key)'")
    }

    /// vec_items holds exactly the items' ids and vectors.
    func expectIndexMatchesItems(_ output: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let items: Int? = try E2E.scalar(output, "SELECT count(*) FROM items")
        #expect(try Vec.int(output, "SELECT count(*) FROM vec_items") == items, sourceLocation: sourceLocation)
        #expect(try Vec.int(output, """
            SELECT count(*) FROM items i WHERE (SELECT v.embedding FROM vec_items v WHERE v.rowid = i.id) IS NOT i.embedding
            """) == 0, sourceLocation: sourceLocation)
        #expect(try Vec.int(output, "SELECT count(*) FROM vec_items v WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.id = v.rowid)") == 0,
                sourceLocation: sourceLocation)
    }

    @Test func fullAndIncrementalRunsKeepVecItemsExactWithoutBloat() throws {
        try #require(Vec.available, Vec.missing)
        let h = try Harness(job: .init(extraTop: "index: vec0\n"))
        defer { h.cleanup() }
        let output = h.output

        let full = try h.runJob(["--full", "--format", "json"])
        #expect(full.status == 0, "stderr: \(full.stderr)")
        #expect((try E2E.json(full.stdout)["note"] as? String ?? "").contains("vec_items index built"))
        #expect(try meta(output, "index") == "vec0")
        #expect(try meta(output, "sqlite_vec_version")?.hasPrefix("v0.1") == true)
        try expectIndexMatchesItems(output)
        let fullSize = Vec.size(output)

        for round in 1...3 {
            _ = try h.mutate(["--insert", "20", "--update", "10", "--delete", "5", "--seed", String(round)])
            let r = try h.runJob(["--format", "json"])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            let summary = try E2E.json(r.stdout)
            #expect(summary["mode"] as? String == "incremental")
            #expect(summary["embedded"] as? Int == 30)
            try expectIndexMatchesItems(output)
        }
        let size = Vec.size(output)
        #expect(Double(size) <= Double(fullSize) * 1.05, "after 3 incremental runs \(size) bytes vs \(fullSize) after the full run")

        // A later full run gives the same size: no dead space carried along.
        #expect(try h.runJob(["--full"]).status == 0)
        #expect(abs(Double(Vec.size(output)) - Double(size)) <= Double(fullSize) * 0.05)
    }

    @Test func changingTheIndexSettingRepublishesEvenWithoutDataChanges() throws {
        try #require(Vec.available, Vec.missing)
        let h = try Harness(primary: .init(messages: 300, knowledge: 10), job: nil)
        defer { h.cleanup() }
        let output = h.output
        let none = try h.writeJob("none.yml", extraTop: "index: none\n")
        let vec0 = try h.writeJob("vec0.yml", extraTop: "index: vec0\n")

        #expect(try h.runJob(["--full"], job: none).status == 0)
        #expect(try meta(output, "index") == "none")
        #expect(try Vec.sql(output, "SELECT count(*) FROM vec_items")["error"] as? String == "no such table: vec_items")

        // Same data, but the job now wants the index: the run must publish it.
        let added = try h.runJob(["--format", "json"], job: vec0)
        #expect(added.status == 0, "stderr: \(added.stderr)")
        #expect(try E2E.json(added.stdout)["published"] as? Bool == true)
        #expect(try meta(output, "index") == "vec0")
        try expectIndexMatchesItems(output)

        // Unchanged again: nothing to publish.
        let same = try h.runJob(["--format", "json"], job: vec0)
        #expect(try E2E.json(same.stdout)["published"] as? Bool == false)

        // And back: the index is removed.
        let removed = try h.runJob(["--format", "json"], job: none)
        #expect(try E2E.json(removed.stdout)["published"] as? Bool == true)
        #expect(try meta(output, "index") == "none")
        #expect(try E2E.scalar(output, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'vec_items%'") == 0)
    }

    @Test func consumerKNNEqualsBruteForceCosine() throws {
        try #require(Vec.available, Vec.missing)
        let h = try Harness()  // index: auto finds the extension
        defer { h.cleanup() }
        let r = try h.runJob(["--full"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let output = h.output
        let items = try vectors(output)
        #expect(items.count > 1000)

        // Query vectors: some stored vectors, perturbed ones, and random directions.
        var rng = SystemRandomNumberGenerator()
        var queries: [[Float]] = []
        for i in stride(from: 0, to: items.count, by: items.count / 5) { queries.append(items[i].vector) }
        for i in stride(from: 7, to: items.count, by: items.count / 5) {
            queries.append(items[i].vector.map { $0 + Float.random(in: -0.05...0.05, using: &rng) })
        }
        for _ in 0..<5 { queries.append((0..<384).map { _ in Float.random(in: -1...1, using: &rng) }) }
        queries = queries.map { q in
            let n = q.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return q.map { $0 / n }
        }

        let k = 10
        let knn = try Vec.knn(output, queries: queries, k: k, dir: h.dir)
        #expect(knn.count == queries.count)
        for (q, got) in zip(queries, knn) {
            // Brute force in double precision: cosine distance = 1 − cos.
            var ranked: [(id: Int64, distance: Double)] = []
            ranked.reserveCapacity(items.count)
            for item in items {
                var dot = 0.0
                for j in 0..<q.count { dot += Double(q[j]) * Double(item.vector[j]) }
                ranked.append((item.id, 1 - dot))
            }
            ranked.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
            let expected = Array(ranked.prefix(k))
            #expect(got.count == k)
            var distance: [Int64: Double] = [:]
            for r in ranked { distance[r.id] = r.distance }
            for (i, hit) in got.enumerated() where i < expected.count {
                let (id, d) = hit
                // Same id at each rank, or a tie within float32 rounding.
                let tie = abs((distance[id] ?? 9) - expected[i].distance) < 1e-5
                #expect(id == expected[i].id || tie, "rank \(i + 1): vec0 gave \(id) (\(d)), brute force \(expected[i].id) (\(expected[i].distance))")
                #expect(abs(d - expected[i].distance) < 1e-4)
            }
        }

        // A reader without the extension still reads everything but vec_items.
        let plain = try Vec.sql(output, "SELECT count(*) FROM items", ext: false)
        #expect(((plain["rows"] as? [[Any]])?.first?.first as? NSNumber)?.intValue == items.count)
        let noModule = try Vec.sql(output, "SELECT count(*) FROM vec_items", ext: false)
        #expect(noModule["error"] as? String == "no such module: vec0")
    }

    @Test func vec0WithoutTheExtensionFailsBeforeAnyWork() throws {
        let h = try Harness(server: nil, primary: .init(messages: 50, knowledge: 5), job: .init(extraTop: "index: vec0\n"))
        defer { h.cleanup() }
        let dir = h.dir
        let listing = try E2E.listing(dir)

        let hidden = try h.runJob(["--full"], env: Vec.hiddenExtensionEnv(dir))
        #expect(hidden.status == 64, "stderr: \(hidden.stderr)")
        #expect(hidden.stderr.contains("index: vec0 needs the sqlite-vec extension"))
        #expect(hidden.stderr.contains("--sqlite-vec"))

        let wrong = try h.runJob(["--full", "--sqlite-vec", dir.appendingPathComponent("nope/vec0.so").path])
        #expect(wrong.status == 64, "stderr: \(wrong.stderr)")
        #expect(wrong.stderr.contains("--sqlite-vec") && wrong.stderr.contains("no such file"))

        let notALibrary = dir.appendingPathComponent("fake.so")
        try Data("not a library".utf8).write(to: notALibrary)
        let bad = try h.runJob(["--full", "--sqlite-vec", notALibrary.path], env: Vec.hiddenExtensionEnv(dir))
        #expect(bad.status == 64, "stderr: \(bad.stderr)")
        #expect(bad.stderr.contains("failed to load"))
        try? FileManager.default.removeItem(at: notALibrary)
        #expect(try E2E.listing(dir) == listing || (try E2E.listing(dir)) == (listing + ["out"]).sorted())
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/vectors.db").path))
    }

    @Test func autoWithoutTheExtensionPublishesAndSaysSo() throws {
        let h = try Harness(primary: .init(messages: 200, knowledge: 10))
        defer { h.cleanup() }
        let r = try h.runJob(["--full", "--format", "json"], env: Vec.hiddenExtensionEnv(h.dir))
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["published"] as? Bool == true)
        #expect((summary["note"] as? String ?? "").contains("no vec_items index"))
        #expect(r.stderr.contains("sqlite-vec not found"))
        let output = h.output
        #expect(try meta(output, "index") == "none")
        #expect(try E2E.scalar(output, "SELECT count(*) FROM sqlite_schema WHERE name = 'vec_items'") == 0)
    }
}
