import Foundation
import GRDB
import Testing

/// Issue 7: `reindex search` ranks the stored vectors against an embedded query.
@Suite(.serialized) struct SearchCommandTests {
    @Test func exactTextOfAStoredMessageRanksFirst() throws {
        let h = try Harness(primary: .init(messages: 600, knowledge: 20))
        defer { h.cleanup() }
        let primary = h.primary
        #expect(try h.runJob(["--full"]).status == 0)

        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: primary.path, configuration: config)
        let picks: [(id: String, content: String)] = try q.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, content FROM "Message" WHERE "deletedAt" IS NULL AND length(trim(content)) > 20 AND length(content) < 200
                  AND content NOT LIKE '%' || char(10) || '%' ORDER BY id LIMIT 3 OFFSET 40
                """).map { ($0[0], $0[1]) }
        }
        try q.close()
        #expect(picks.count == 3)
        for pick in picks {
            let r = try h.command("search", [pick.content, "--k", "5", "--format", "json"])
            #expect(r.status == 0, "stderr: \(r.stderr)")
            let out = try E2E.json(r.stdout)
            #expect(out["query"] as? String == pick.content)
            let results = out["results"] as? [[String: Any]] ?? []
            #expect(results.count == 5)
            let first = results.first ?? [:]
            #expect(first["source"] as? String == "message")
            #expect(first["id"] as? String == pick.id)
            #expect(abs((first["score"] as? Double ?? 0) - 1) < 1e-4)
            #expect(first["passage"] as? String == pick.content.split(whereSeparator: \.isWhitespace).joined(separator: " "))
            #expect(first["chunk"] as? Int == 0)
            let scores = results.compactMap { $0["score"] as? Double }
            #expect(scores == scores.sorted(by: >), "best first")
        }

        let text = try h.command("search", [picks[0].content, "--k", "3"])
        #expect(text.status == 0)
        #expect(text.stdout.split(separator: "\n").count == 3)
        #expect(text.stdout.hasPrefix(" 1. 1.0000  message \(picks[0].id)"), "\(text.stdout)")
    }

    @Test func searchWithoutAVectorFileFailsClearly() throws {
        let h = try Harness(server: nil, primary: .init(messages: 20, knowledge: 2))
        defer { h.cleanup() }
        let r = try h.command("search", ["hello"])
        #expect(r.status == 74, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("no vector file"))
    }
}
