import Foundation
import GRDB
import Testing

/// Issue 13: long rows indexed in full as chunks with overlap, found by any
/// passage, with edits re-embedding only the chunks they change. Runs with
/// the real default chunk size (`chunk-tokens: 128`) against the fixture
/// server, whose vectors depend only on the exact input text.
@Suite(.serialized) struct ChunkingTests {
    static let chunked = Harness.Job(model: ["chunk-tokens": "128"])

    struct Chunk { var chunk: Int; var start: Int; var end: Int; var hash: Data }

    /// The chunks of every row of a vector file, by "source/id", in order.
    static func chunks(_ path: URL) throws -> [String: [Chunk]] {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: path.path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in
            var out: [String: [Chunk]] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT source, source_id, chunk, span_start, span_end, content_hash FROM items ORDER BY source, source_id, chunk") {
                out["\(r[0] as String)/\(r[1] as String)", default: []].append(Chunk(chunk: r[2], start: r[3], end: r[4], hash: r[5]))
            }
            return out
        }
    }

    /// A message's text from the primary.
    static func message(_ primary: URL, _ id: String) throws -> String {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: primary.path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in try String.fetchOne(db, sql: #"SELECT content FROM "Message" WHERE id = ?"#, arguments: [id]) ?? "" }
    }

    static func slice(_ text: String, _ c: Chunk) -> String {
        let s = Array(text.unicodeScalars)
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s[c.start..<c.end])
        return String(v)
    }

    @Test func longRowsBecomeChunksThatCoverTheirTextWithOverlap() throws {
        let h = try Harness(job: Self.chunked, publish: .init(args: ["--format", "json"]))
        defer { h.cleanup() }
        let rows = try Self.chunks(h.output)
        let multi = rows.filter { $0.value.count > 1 }
        #expect(!multi.isEmpty, "the fixture's long messages (3,000–12,000 characters) are several chunks")
        for (key, chunks) in multi where key.hasPrefix("message/") {
            let text = try Self.message(h.primary, String(key.dropFirst("message/".count)))
            #expect(chunks.first?.start == 0 && chunks.last?.end == text.unicodeScalars.count, "\(key) covered end to end")
            for (a, b) in zip(chunks, chunks.dropFirst()) {
                #expect(b.start <= a.end, "\(key): no gap between chunk \(a.chunk) and \(b.chunk)")
                #expect(b.start < a.end, "\(key): consecutive chunks overlap")
                #expect(b.end > a.end)
            }
            // Each chunk's hash is the hash of exactly its passage (no prefix in this job).
            for c in chunks { #expect(c.hash == Digest.sha256(Data(Self.slice(text, c).utf8)), "\(key) chunk \(c.chunk)") }
        }
        // Short rows are exactly one chunk, hashed as the whole text.
        #expect(rows.values.filter { $0.count == 1 }.count > 1000)
        let meta: String? = try E2E.scalar(h.output, "SELECT value FROM meta WHERE key = 'row_count'")
        #expect(meta == String(rows.count))
        let v = try h.command("verify")
        #expect(v.status == 0, "\(v.stdout)")
        #expect(v.stdout.contains("chunks cover their rows"))
    }

    @Test func aPassageNearTheEndOfALongRowFindsIt() throws {
        let h = try Harness(job: Self.chunked, publish: .init())
        defer { h.cleanup() }
        let rows = try Self.chunks(h.output)
        let (key, chunks) = try #require(rows.filter { $0.key.hasPrefix("message/") && $0.value.count >= 4 }.max { $0.value.count < $1.value.count })
        let id = String(key.dropFirst("message/".count))
        let last = chunks.last!
        let passage = Self.slice(try Self.message(h.primary, id), last)
        let r = try h.command("search", [passage, "--k", "5", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let results = try E2E.json(r.stdout)["results"] as? [[String: Any]] ?? []
        #expect(results.first?["id"] as? String == id, "\(results.prefix(2))")
        #expect(results.first?["chunk"] as? Int == last.chunk, "the best chunk is the one at the end")
        #expect(abs((results.first?["score"] as? Double ?? 0) - 1) < 1e-4)
        #expect((results.first?["passage"] as? String)?.isEmpty == false)
        // Rows, not chunks: a row appears once however many of its chunks score.
        let ids = results.compactMap { "\($0["source"] ?? "")/\($0["id"] ?? "")" }
        #expect(Set(ids).count == ids.count)
    }

    @Test func appendingToALongRowReembedsOnlyItsLastChunks() throws {
        let h = try Harness(job: Self.chunked, publish: .init())
        defer { h.cleanup() }
        let before = try Self.chunks(h.output)
        let (key, old) = try #require(before.filter { $0.key.hasPrefix("message/") && $0.value.count >= 5 }.max { $0.value.count < $1.value.count })
        let id = String(key.dropFirst("message/".count))
        let q = try DatabaseQueue(path: h.primary.path)
        try q.write { db in
            try db.execute(sql: #"UPDATE "Message" SET content = content || char(10) || char(10) || ? WHERE id = ?"#,
                           arguments: ["And one more paragraph, appended later: the plan changed again, so bring the blue folder on Friday.", id])
        }
        try q.close()
        // The dry run cuts the changed row as the run will and counts only the chunks it lacks.
        let dry = try E2E.json(try h.runJob(["--dry-run", "--format", "json"]).stdout)
        #expect(dry["to_embed"] as? Int == 1)
        let estimated = dry["chunks_to_embed"] as? Int ?? -1
        let r = try h.runJob(["--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try E2E.json(r.stdout)
        #expect(summary["changed"] as? Int == 1)
        let after = try Self.chunks(h.output)[key] ?? []
        let stats = try h.server.stats()
        let sent = (stats["inputs"] as? Int ?? 0) - Probe.count
        #expect(sent >= 1 && sent <= 2, "only the last chunk or two of \(old.count) are sent again (sent \(sent))")
        #expect(summary["embedded"] as? Int == sent)
        #expect(estimated == sent, "the dry run's estimate is exact here")
        // Every chunk before the tail is the same passage with the same vector.
        let kept = Set(old.dropLast(2).map(\.hash))
        #expect(kept.isSubset(of: Set(after.map(\.hash))))
        #expect(try h.command("verify").status == 0)
    }
}
