import Foundation
import GRDB
import Testing

/// Issue 7: `reindex verify` — exit 0 on a good file, 65 naming the problem
/// on a tampered one, and never a file created or changed.
@Suite(.serialized) struct VerifyCommandTests {
    /// A published file (`--full`; exit 3, published with failed rows, counts) for a
    /// small primary, and the job to verify it with. The server's counters are kept.
    func fixture(_ name: String = #function, include: [String: Any]? = nil, faults: [String: Any]? = nil) throws -> Harness {
        try Harness(name, server: .init(faults: faults), primary: .init(messages: 400, knowledge: 20, include: include),
                    publish: .init(args: ["--full"], accept: [0, 3], resetStats: false))
    }

    /// A copy of the published file to tamper with, changed by `sql` (run with GRDB, no extension).
    func tampered(_ f: Harness, _ name: String, _ sql: String) throws -> URL {
        let copy = f.dir.appendingPathComponent("\(name).db")
        try? FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(at: f.output, to: copy)
        let q = try DatabaseQueue(path: copy.path)
        try q.write { db in try db.execute(sql: sql) }
        try q.close()
        return copy
    }

    func verify(_ f: Harness, output: URL? = nil, json: Bool = false) throws -> E2E.Result {
        var args: [String] = []
        if let output { args += ["--output", output.path] }
        if json { args += ["--format", "json"] }
        return try f.command("verify", args)
    }

    @Test func goodFileIsConsistentAndNothingIsWritten() throws {
        let f = try fixture()
        defer { f.cleanup() }
        let listing = try E2E.listing(f.dir)
        let outListing = try f.outListing()
        let before = try E2E.sha256(f.output)
        let primaryBefore = try E2E.sha256(f.primary)

        let text = try verify(f)
        #expect(text.status == 0, "stdout: \(text.stdout) stderr: \(text.stderr)")
        #expect(text.stdout.contains("consistent"))
        let json = try verify(f, json: true)
        #expect(json.status == 0)
        let report = try E2E.json(json.stdout)
        #expect(report["consistent"] as? Bool == true)
        #expect((report["problems"] as? [String])?.isEmpty == true)
        // fixtures/setup.sh installs sqlite-vec, so the file has vec_items and verify checks it.
        #expect(Vec.available, Vec.missing)
        #expect((report["vec_items"] as? [String: Bool])?["checked"] == true)
        #expect((report["passed"] as? [String] ?? []).contains("vec_items"))

        #expect(try E2E.listing(f.dir) == listing)
        #expect(try f.outListing() == outListing)
        #expect(try E2E.sha256(f.output) == before)
        #expect(try E2E.sha256(f.primary) == primaryBefore)
    }

    @Test func tamperedFilesExit65NamingTheProblem() throws {
        let f = try fixture()
        defer { f.cleanup() }
        let victim: (id: Int64, sourceID: String) = try {
            let q = try DatabaseQueue(path: f.output.path, configuration: { var c = Configuration(); c.readonly = true; return c }())
            defer { try? q.close() }
            return try q.read { db in
                let row = try Row.fetchOne(db, sql: "SELECT id, source_id FROM items WHERE source = 'message' ORDER BY id LIMIT 1 OFFSET 17")!
                return (row[0], row[1])
            }
        }()

        let cases: [(String, String, [String])] = [
            ("deleted", "DELETE FROM items WHERE id = \(victim.id)", ["missing", victim.sourceID]),
            ("stale", "UPDATE items SET row_hash = zeroblob(32) WHERE id = \(victim.id)", ["stale", victim.sourceID]),
            ("extra", "INSERT INTO items(source, source_id, chunk, span_start, span_end, row_hash, content_hash, embedding, embedded_at) SELECT source, 'ghost-1', chunk, span_start, span_end, row_hash, content_hash, embedding, embedded_at FROM items WHERE id = \(victim.id)",
             ["extra", "ghost-1"]),
            ("chunks", "UPDATE items SET span_start = 1 WHERE id = \(victim.id)", ["do not cover", victim.sourceID]),
            ("norm", "UPDATE items SET embedding = zeroblob(1536) WHERE id = \(victim.id)",
             ["not finite unit vectors", victim.sourceID]),
            ("dimensions", "UPDATE items SET embedding = zeroblob(16) WHERE id = \(victim.id)", ["float32", String(victim.id)]),
            ("meta", "UPDATE meta SET value = 'other-model' WHERE key = 'model'", ["meta model"]),
        ]
        for (name, sql, words) in cases {
            let copy = try tampered(f, name, sql)
            let r = try verify(f, output: copy)
            #expect(r.status == 65, "\(name): stdout \(r.stdout) stderr \(r.stderr)")
            #expect(r.stderr.contains("vector file inconsistent"), "\(name): \(r.stderr)")
            for w in words {
                #expect(r.stdout.contains(w), "\(name): report lacks \"\(w)\": \(r.stdout)")
            }
        }

        // vec_items out of step with items (needs the extension to tamper with it).
        #expect(Vec.available, Vec.missing)
        do {
            let copy = try tampered(f, "vec", "SELECT 1")
            let out = try Vec.sql(copy, "DELETE FROM vec_items WHERE rowid = \(victim.id)", write: true)
            #expect(out["error"] == nil, "\(out)")
            let r = try verify(f, output: copy, json: true)
            #expect(r.status == 65)
            let problems = (try E2E.json(r.stdout)["problems"] as? [String]) ?? []
            #expect(problems.contains { $0.contains("vec_items has") }, "\(problems)")
        }

        // A missing file and a WAL-mode file.
        let missing = try verify(f, output: f.dir.appendingPathComponent("none.db"))
        #expect(missing.status == 65 && missing.stdout.contains("no vector file"))
        let wal = try tampered(f, "wal", "SELECT 1")
        let q = try DatabaseQueue(path: wal.path)
        _ = try q.writeWithoutTransaction { db in try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
        try q.close()
        let walBefore = try E2E.listing(f.dir)
        let r = try verify(f, output: wal)
        #expect(r.status == 65 && r.stdout.contains("WAL mode"), "\(r.stdout)")
        #expect(try E2E.listing(f.dir) == walBefore, "verify must not create -shm/-wal")
    }

    @Test func primaryChangesAreReportedPerSource() throws {
        let f = try fixture()
        defer { f.cleanup() }
        let changed = try f.mutate(["--insert", "2", "--update", "3", "--delete", "4"])
        let r = try verify(f, json: true)
        #expect(r.status == 65)
        let report = try E2E.json(r.stdout)
        let message = (report["sources"] as? [String: Any])?["message"] as? [String: Any] ?? [:]
        #expect(message["missing"] as? Int == 2)
        #expect(message["stale"] as? Int == 3)
        #expect(message["extra"] as? Int == 4)
        let samples = message["samples"] as? [String: [String]] ?? [:]
        #expect(Set(samples["missing"] ?? []) == Set(changed["inserted"] ?? []))
        #expect(Set(samples["stale"] ?? []) == Set(changed["updated"] ?? []))
        #expect(Set(samples["extra"] ?? []) == Set(changed["deleted"] ?? []))
        // After a run, consistent again.
        #expect(try f.runJob().status == 0)
        #expect(try verify(f).status == 0)
    }

    @Test func rowsRecordedAsFailedAreNotMissing() throws {
        let poison = "FORBIDDEN-TOKEN-7"
        let f = try fixture(include: ["messages": [["id": "zz-poisoned-1", "content": "this one carries \(poison) inside"]]],
                            faults: ["poison": poison])
        defer { f.cleanup() }
        let r = try verify(f, json: true)
        #expect(r.status == 0, "stdout: \(r.stdout) stderr: \(r.stderr)")
        let message = (try E2E.json(r.stdout)["sources"] as? [String: Any])?["message"] as? [String: Any] ?? [:]
        #expect(message["failed"] as? Int == 1)
        #expect(message["missing"] as? Int == 0)
        let text = try verify(f)
        #expect(text.stdout.contains("1 recorded as failed"))
    }
}
