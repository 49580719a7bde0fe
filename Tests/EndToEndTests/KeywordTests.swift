import Foundation
import GRDB
import Testing

/// Issue 17: the FTS5 keyword index beside `vec_items` (`keywords: fts5`),
/// `search --mode keyword|hybrid` and the keyword-only fallback.
@Suite(.serialized) struct KeywordTests {
    /// Messages the generated primary cannot contain: identifiers, diacritics, CJK, a word to edit away.
    static var include: [String: Any] { ["messages": [
        ["id": "kw-ident", "content": "The nightly backup failed again with SQLITE_CORRUPT_VTAB on order ORD-2025-118734, see ticket E-40417."],
        ["id": "kw-accent", "content": "Dessert at Café Zoë: crème brûlée for everyone, the bill is on me."],
        ["id": "kw-cjk", "content": "昨日は東京タワーの夜景を見ました。とても綺麗でした。"],
        ["id": "kw-edit", "content": "The staging host zebracorn42 needs a reboot before Friday."],
        ["id": "kw-words", "content": "Bring a sweater or a jacket, and NEAR the lake it is colder."],
    ]] }

    static func yaml(_ h: Harness, keywords: String? = "fts5", output: String = "out/vectors.db") -> String {
        """
        name: keywords
        primary: primary.db
        output: \(output)
        \(keywords.map { "keywords: \($0)" } ?? "")
        sources:
          - name: message
            query: SELECT id, content AS text, "roomId" AS room FROM "Message" WHERE "deletedAt" IS NULL
            attributes: {room: partition}
          - name: knowledge
            query: SELECT id, title || char(10) || body AS text, "roomId" AS room FROM "KnowledgeEntry"
            attributes: {room: partition}
        model:
          provider: openai
          url: \(h.url)
          name: fixture-embed-384
          dimensions: 384
          batch-size: 64
          max-retries: 1
          chunk-tokens: 64
        """
    }

    static func harness(keywords: String? = "fts5", messages: Int = 400) throws -> Harness {
        let h = try Harness(primary: .init(messages: messages, knowledge: 12, include: include))
        try h.writeJob(yaml: yaml(h, keywords: keywords))
        return h
    }

    /// (source, source_id, chunk) → text of every keyword row, and the table's presence.
    static func keywordRows(_ file: URL) throws -> [String: String]? {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: file.path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in
            guard try Bool.fetchOne(db, sql: "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'keywords'") == true else { return nil }
            var out: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT i.source, i.source_id, i.chunk, k.text FROM keywords k JOIN items i ON i.id = k.rowid") {
                out["\(row[0] as String)/\(row[1] as String)/\(row[2] as Int)"] = row[3]
            }
            return out
        }
    }

    static func search(_ h: Harness, _ query: String, _ extra: [String] = [], job: URL? = nil) throws -> (status: Int32, json: [String: Any], stderr: String) {
        let r = try h.command("search", [query, "--format", "json"] + extra, job: job)
        return (r.status, r.status == 0 ? try E2E.json(r.stdout) : [:], r.stderr)
    }

    static func ids(_ json: [String: Any]) -> [String] {
        (json["results"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    @Test func theJobKeyAddsAndRemovesTheIndexWithoutCallingTheModel() throws {
        let h = try Self.harness(keywords: nil)
        defer { h.cleanup() }
        #expect(try h.runJob(["--full"]).status == 0)
        #expect(try Self.keywordRows(h.output) == nil, "off by default")
        #expect(try E2E.scalar(h.output, "SELECT count(*) FROM meta WHERE key = 'keywords'") as Int? == 0)
        let search = try Self.search(h, "zebracorn42", ["--mode", "keyword"])
        #expect(search.status == 64 && search.stderr.contains("keywords: fts5"), "\(search.stderr)")

        // On: the next run republishes with the index and sends nothing to the model.
        try h.writeJob(yaml: Self.yaml(h, keywords: "fts5"))
        try h.server.reset()
        let plan = try E2E.json(try h.runJob(["--dry-run", "--format", "json"]).stdout)
        #expect(plan["keywords"] as? String == "added" && plan["to_embed"] as? Int == 0, "\(plan)")
        let on = try h.runJob(["--format", "json"])
        #expect(on.status == 0, "\(on.stderr)")
        #expect(try E2E.json(on.stdout)["published"] as? Bool == true)
        #expect(try h.server.stats()["requests"] as? Int == 0, "no model call")
        let rows = try #require(try Self.keywordRows(h.output))
        #expect(rows.count == (try E2E.scalar(h.output, "SELECT count(*) FROM items") as Int? ?? -1))
        #expect(rows["message/kw-edit/0"] == "The staging host zebracorn42 needs a reboot before Friday.")
        let meta: String? = try E2E.scalar(h.output, "SELECT value FROM meta WHERE key = 'keywords'")
        #expect(meta?.contains("\"tokenizer\":\"unicode61\"") == true, "\(meta ?? "nil")")
        #expect(try h.command("verify").status == 0)

        // The same content as a fresh full build with keywords on.
        let fresh = try h.writeJob(yaml: Self.yaml(h, output: "fresh/vectors.db"), name: "fresh.yml")
        #expect(try h.runJob(["--full"], job: fresh).status == 0)
        #expect(try Self.keywordRows(h.dir.appendingPathComponent("fresh/vectors.db")) == rows)

        // A run with nothing new keeps the file as it is.
        let before = try E2E.sha256(h.output)
        #expect(try h.runJob().status == 0)
        #expect(try E2E.sha256(h.output) == before)

        // Off again: removed, no model call.
        try h.writeJob(yaml: Self.yaml(h, keywords: nil))
        try h.server.reset()
        #expect(try h.runJob().status == 0)
        #expect(try Self.keywordRows(h.output) == nil)
        #expect(try E2E.scalar(h.output, "SELECT count(*) FROM meta WHERE key = 'keywords'") as Int? == 0)
        #expect(try h.server.stats()["requests"] as? Int == 0, "no model call")
    }

    @Test func anIncrementalRunKeepsTheIndexEqualToAFreshBuild() throws {
        let h = try Self.harness()
        defer { h.cleanup() }
        #expect(try h.runJob(["--full"]).status == 0)
        #expect(Self.ids(try Self.search(h, "zebracorn42", ["--mode", "keyword"]).json) == ["kw-edit"])

        // An edit replaces the chunk's words; inserts, updates and deletes elsewhere.
        let q = try DatabaseQueue(path: h.primary.path)
        try q.write { db in
            try db.execute(sql: #"UPDATE "Message" SET content = 'The staging host quokka7 needs a reboot before Friday.' WHERE id = 'kw-edit'"#)
        }
        try q.close()
        try h.mutate(["--insert", "20", "--update", "15", "--delete", "10"])
        let run = try h.runJob(["--format", "json"])
        #expect(run.status == 0, "\(run.stderr)")
        let summary = try E2E.json(run.stdout)
        #expect(summary["published"] as? Bool == true)
        // The clone path (issue 15): the keyword index followed the delta, not a rebuild.
        #expect((summary["build"] as? String ?? "").hasPrefix("clone"), "\(summary)")
        #expect(!run.stderr.contains("built keywords"), "\(run.stderr)")

        #expect(Self.ids(try Self.search(h, "zebracorn42", ["--mode", "keyword"]).json).isEmpty, "the old word no longer matches")
        #expect(Self.ids(try Self.search(h, "quokka7", ["--mode", "keyword"]).json) == ["kw-edit"])
        let fresh = try h.writeJob(yaml: Self.yaml(h, output: "fresh/vectors.db"), name: "fresh.yml")
        #expect(try h.runJob(["--full"], job: fresh).status == 0)
        let incremental = try #require(try Self.keywordRows(h.output))
        #expect(incremental == (try Self.keywordRows(h.dir.appendingPathComponent("fresh/vectors.db"))))
        #expect(incremental.count == (try E2E.scalar(h.output, "SELECT count(*) FROM items") as Int? ?? -1))
        #expect(try h.command("verify").status == 0)

        // Another tokenizer on the clone path: the index is built anew, equal to a fresh porter build.
        try h.writeJob(yaml: Self.yaml(h, keywords: "{tokenizer: porter}"))
        try h.mutate(["--insert", "3"])
        let porter = try h.runJob(["--format", "json"])
        #expect(porter.status == 0, "\(porter.stderr)")
        #expect((try E2E.json(porter.stdout)["build"] as? String ?? "").hasPrefix("clone"))
        #expect(Self.ids(try Self.search(h, "quokka7 reboots", ["--mode", "keyword", "--k", "1"]).json) == ["kw-edit"], "stemmed")
        let freshPorter = try h.writeJob(yaml: Self.yaml(h, keywords: "{tokenizer: porter}", output: "fresh2/vectors.db"), name: "fresh2.yml")
        #expect(try h.runJob(["--full"], job: freshPorter).status == 0)
        #expect(try Self.keywordRows(h.output) == (try Self.keywordRows(h.dir.appendingPathComponent("fresh2/vectors.db"))))
        #expect(try h.command("verify").status == 0)
    }

    @Test func wordsMatchAcrossDiacriticsAndCJKMatchesWithTrigrams() throws {
        let h = try Self.harness()
        defer { h.cleanup() }
        #expect(try h.runJob(["--full"]).status == 0)
        #expect(Self.ids(try Self.search(h, "creme brulee cafe", ["--mode", "keyword", "--k", "1"]).json) == ["kw-accent"])
        #expect(Self.ids(try Self.search(h, "Zoë", ["--mode", "keyword"]).json) == ["kw-accent"])
        // unicode61 sees a run of CJK characters as one token: a word inside it does not match.
        #expect(Self.ids(try Self.search(h, "タワー", ["--mode", "keyword"]).json).isEmpty)

        let tri = try h.writeJob(yaml: Self.yaml(h, keywords: "{index: fts5, tokenizer: trigram}", output: "tri/vectors.db"), name: "tri.yml")
        #expect(try h.runJob(["--full"], job: tri).status == 0)
        #expect(Self.ids(try Self.search(h, "タワー", ["--mode", "keyword"], job: tri).json) == ["kw-cjk"])
        #expect(Self.ids(try Self.search(h, "ORD-2025-118734", ["--mode", "keyword", "--k", "1"], job: tri).json) == ["kw-ident"])
        #expect(try h.command("verify", job: tri).status == 0)

        let porter = try h.writeJob(yaml: Self.yaml(h, keywords: "{tokenizer: porter}", output: "porter/vectors.db"), name: "porter.yml")
        #expect(try h.runJob(["--full"], job: porter).status == 0)
        // Stemming: "reboots" finds "reboot".
        #expect(Self.ids(try Self.search(h, "zebracorn42 reboots", ["--mode", "keyword", "--k", "1"], job: porter).json) == ["kw-edit"])

        let bad = try h.writeJob(yaml: Self.yaml(h, keywords: "{tokenizer: snowball}", output: "bad/vectors.db"), name: "bad.yml")
        let r = try h.runJob([], job: bad)
        #expect(r.status == 64 && r.stderr.contains("keywords.tokenizer") && r.stderr.contains("snowball"), "\(r.stderr)")
    }

    @Test func fts5SyntaxInAQueryIsPlainText() throws {
        let h = try Self.harness()
        defer { h.cleanup() }
        #expect(try h.runJob(["--full"]).status == 0)
        for query in ["\"", "*", "NEAR(", "-", "OR", "AND", "NOT", "(", ")", "\"unterminated", "text:zebracorn42", "^zebracorn42",
                      "a\"b", "NEAR(zebracorn42 reboot, 2)", "zebracorn42 -reboot", "{text}: x", "+", "'; DROP TABLE keywords; --"] {
            for mode in ["keyword", "hybrid"] {
                let r = try Self.search(h, query, ["--mode", mode])
                #expect(r.status == 0, "\(mode) \(query): \(r.stderr)")
            }
        }
        // Operators are words: `-reboot` does not exclude, `*` does not expand, NEAR/OR are the words themselves.
        #expect(Self.ids(try Self.search(h, "zebracorn42 -reboot", ["--mode", "keyword", "--k", "1"]).json) == ["kw-edit"])
        #expect(Self.ids(try Self.search(h, "zebracorn*", ["--mode", "keyword"]).json).isEmpty, "no prefix query")
        #expect(Self.ids(try Self.search(h, "NEAR(sweater OR jacket)", ["--mode", "keyword", "--k", "1"]).json) == ["kw-words"])
        #expect(Self.ids(try Self.search(h, "text:zebracorn42", ["--mode", "keyword", "--k", "1"]).json).isEmpty,
                "a column filter is a phrase of two words, not a filter")
        let q = "'; DROP TABLE keywords; --"
        _ = try Self.search(h, q, ["--mode", "keyword"])
        #expect(try Self.keywordRows(h.output)?.isEmpty == false)
    }

    @Test func hybridFusesBothSidesScopesThemAndFallsBackToKeywords() throws {
        let h = try Self.harness()
        defer { h.cleanup() }
        #expect(try h.runJob(["--full"]).status == 0)
        let exact = "The nightly backup failed again with SQLITE_CORRUPT_VTAB on order ORD-2025-118734, see ticket E-40417."

        // The default mode of a file with keywords is hybrid; a row found by both sides carries both ranks.
        let both = try Self.search(h, exact, ["--k", "5"])
        #expect(both.status == 0, "\(both.stderr)")
        #expect(both.json["mode"] as? String == "hybrid" && both.json["degraded"] is NSNull)
        let top = (both.json["results"] as? [[String: Any]] ?? []).first ?? [:]
        #expect(top["id"] as? String == "kw-ident")
        #expect((top["vector"] as? [String: Any])?["rank"] as? Int == 1)
        #expect((top["keyword"] as? [String: Any])?["rank"] as? Int == 1)
        #expect(abs((top["score"] as? Double ?? 0) - 2.0 / 61) < 1e-9, "RRF: 1/(60+1) from each side")
        let scores = (both.json["results"] as? [[String: Any]] ?? []).compactMap { $0["score"] as? Double }
        #expect(scores == scores.sorted(by: >))
        // Weights: keywords off leaves the vector ranking.
        let vectorOnly = try Self.search(h, "ORD-2025-118734 backup", ["--k", "10", "--keyword-weight", "0"])
        #expect(Self.ids(vectorOnly.json) == Self.ids(try Self.search(h, "ORD-2025-118734 backup", ["--k", "10", "--mode", "vector"]).json))

        // A scope applies to both sides: the identifier's room finds it, another room does not.
        let room: String = try #require(try E2E.scalar(h.primary, #"SELECT "roomId" FROM "Message" WHERE id = 'kw-ident'"#))
        let other: String = try #require(try E2E.scalar(h.primary, #"SELECT "roomId" FROM "Message" WHERE "roomId" != '\#(room)' LIMIT 1"#))
        for mode in ["keyword", "hybrid"] {
            let inRoom = try Self.search(h, "SQLITE_CORRUPT_VTAB", ["--mode", mode, "--where", "room=\(room)"])
            #expect(Self.ids(inRoom.json).first == "kw-ident")
            let elsewhere = try Self.search(h, "SQLITE_CORRUPT_VTAB", ["--mode", mode, "--where", "room=\(other)", "--k", "50"])
            #expect(!Self.ids(elsewhere.json).contains("kw-ident"))
            let rooms = (elsewhere.json["results"] as? [[String: Any]] ?? []).compactMap { ($0["attributes"] as? [String: Any])?["room"] as? String }
            #expect(Set(rooms).subtracting([other]).isEmpty, "\(mode): \(Set(rooms))")
        }

        // The model is down: hybrid answers from keywords and says so; vector fails (69); keyword never needs it.
        h.server.stop()
        let degraded = try h.command("search", ["SQLITE_CORRUPT_VTAB", "--format", "json"])
        #expect(degraded.status == 0, "\(degraded.stderr)")
        let json = try E2E.json(degraded.stdout)
        #expect((json["degraded"] as? String)?.hasPrefix("keyword only: ") == true, "\(json)")
        #expect(Self.ids(json).first == "kw-ident")
        #expect(degraded.stderr.contains("answered from keywords alone"), "\(degraded.stderr)")
        let text = try h.command("search", ["SQLITE_CORRUPT_VTAB"])
        #expect(text.status == 0 && text.stdout.hasPrefix("(keyword only: "), "\(text.stdout)")
        #expect(try h.command("search", ["SQLITE_CORRUPT_VTAB", "--mode", "vector"]).status == 69)
        #expect(Self.ids(try Self.search(h, "SQLITE_CORRUPT_VTAB", ["--mode", "keyword"]).json).first == "kw-ident")
    }

    /// The application side of docs/format.md's keyword SQL, under Debian's python3 with
    /// sqlite-vec: the named statements are read from the document (so the documented text
    /// is what is tested) and run for each case; the query is quoted by the documented rule.
    /// Prints {"results": [[[source, id, score], …], …]}.
    static let consumerScript = #"""
    import json, re, sqlite3, struct, sys
    db, ext, doc, cases_file = sys.argv[1:5]
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    con.enable_load_extension(True); con.load_extension(ext)
    block = open(doc).read().split("<!-- keyword-sql:begin -->")[1].split("<!-- keyword-sql:end -->")[0]
    named = {}
    for part in re.split(r"^-- name: ", block.replace("```sql", "").replace("```", ""), flags=re.M)[1:]:
        name, body = part.split("\n", 1)
        named[name.strip()] = "\n".join(l for l in body.splitlines() if not l.startswith("--")).strip().rstrip(";")
    assert set(named) == {"keyword", "keyword_room", "hybrid", "hybrid_room"}, named.keys()
    def quoted(text):
        terms = [t for t in text.split() if any(c.isalnum() for c in t)]
        return " OR ".join(dict.fromkeys('"' + t.replace('"', '""') + '"' for t in terms))
    out = []
    for case in json.load(open(cases_file)):
        depth = max(2 * case["k"], 50)
        p = {"match": quoted(case["text"]), "k": case["k"], "depth": depth, "knn": 4096, "candidates": 2 * depth,
             "terms": json.dumps(list(dict.fromkeys('"' + t.replace('"', '""') + '"' for t in case["text"].split() if any(c.isalnum() for c in t)))),
             "coverage": 0.5, "rrf_k": 60.0, "vector_weight": 1.0, "keyword_weight": 1.0, "room": case.get("room")}
        if "vector" in case: p["query"] = struct.pack("<%df" % len(case["vector"]), *case["vector"])
        rows = con.execute(named[case["sql"]], p).fetchall()
        if case["sql"].startswith("keyword"):
            out.append([[r[0], r[1], -r[3], r[4]] for r in rows])
        else:
            out.append([[r[0], r[1], r[2]] for r in rows])
    print(json.dumps({"results": out}))
    """#

    @Test func consumerSQLRanksAsReindexSearch() throws {
        try #require(Vec.available, Vec.missing)
        let h = try Self.harness(messages: 600)
        defer { h.cleanup() }
        #expect(try h.runJob(["--full"]).status == 0)
        let q = try DatabaseQueue(path: h.primary.path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        let sampled: [String] = try q.read { db in
            try String.fetchAll(db, sql: """
                SELECT content FROM "Message" WHERE "deletedAt" IS NULL AND length(content) BETWEEN 30 AND 300 ORDER BY id LIMIT 6 OFFSET 17
                """).map { $0.split(separator: " ").prefix(6).joined(separator: " ") }
        }
        let room: String = try #require(try q.read { db in try String.fetchOne(db, sql: #"SELECT "roomId" FROM "Message" WHERE id = 'kw-ident'"#) })
        try q.close()
        let texts = ["SQLITE_CORRUPT_VTAB backup", "crème brûlée", "reboot the staging host", "\"NEAR( * - OR", "lake"] + sampled

        // The same cases through `reindex search` and through the documented SQL.
        var cases: [[String: Any]] = []
        var expected: [[[Any]]] = []
        for text in texts {
            let vector = try h.server.rawVectors([text])[0].map(Double.init)
            for (sql, args) in [("keyword", ["--mode", "keyword"]), ("keyword_room", ["--mode", "keyword", "--where", "room=\(room)"]),
                                ("hybrid", ["--mode", "hybrid"]),
                                ("hybrid_room", ["--mode", "hybrid", "--where", "room=\(room)"])] {
                let r = try Self.search(h, text, args + ["--k", "10"])
                #expect(r.status == 0, "\(text) \(args): \(r.stderr)")
                let results = r.json["results"] as? [[String: Any]] ?? []
                expected.append(results.map { [$0["source"] as? String ?? "", $0["id"] as? String ?? "", $0["score"] as? Double ?? .nan] })
                cases.append(["text": text, "k": 10, "sql": sql, "vector": vector, "room": room])
            }
        }
        let casesFile = h.dir.appendingPathComponent("cases.json")
        try JSONSerialization.data(withJSONObject: cases).write(to: casesFile)
        let script = h.dir.appendingPathComponent("consumer.py")
        try Self.consumerScript.write(to: script, atomically: true, encoding: .utf8)
        let r = try E2E.run(Vec.systemPython, [script.path, h.output.path, Vec.extensionPath!,
                                               E2E.root.appendingPathComponent("docs/format.md").path, casesFile.path])
        #expect(r.status == 0, "consumer.py: \(r.stderr)")
        let got = (try E2E.json(r.stdout))["results"] as? [[[Any]]] ?? []
        #expect(got.count == cases.count)
        var compared = 0
        for (i, (mine, theirs)) in zip(expected, got).enumerated() {
            let label = "\(cases[i]["sql"]!) \"\(cases[i]["text"]!)\""
            #expect(mine.map { "\($0[0])/\($0[1])" } == theirs.map { "\($0[0])/\($0[1])" }, "\(label): rows differ")
            for (a, b) in zip(mine, theirs) {
                let (x, y) = (a[2] as? Double ?? .nan, (b[2] as? NSNumber)?.doubleValue ?? .nan)
                #expect(abs(x - y) <= 1e-6 * max(1, abs(x)), "\(label): score \(x) vs \(y)")
            }
            if !mine.isEmpty { compared += 1 }
            if (cases[i]["sql"] as? String)?.hasPrefix("keyword") == true, let first = theirs.first {
                #expect((first[3] as? String)?.contains("[") == true, "a snippet marks the match: \(first)")
            }
        }
        #expect(compared >= 40, "most cases have results (\(compared))")
        #expect(expected[0].first?[1] as? String == "kw-ident", "the identifier is found by keyword")
    }

    /// An attribute may be named like the keyword query's own aliases; a scope on it still holds.
    @Test func attributesNamedLikeTheQuerysAliasesKeepTheirValues() throws {
        let h = try Harness(primary: .init(messages: 200, knowledge: 5, include: Self.include))
        defer { h.cleanup() }
        let yaml = Self.yaml(h)
            .replacingOccurrences(of: #""roomId" AS room FROM "Message""#, with: #""roomId" AS room, length(content) AS kw_score FROM "Message""#)
            .replacingOccurrences(of: #""roomId" AS room FROM "KnowledgeEntry""#, with: #""roomId" AS room, 0 AS kw_score FROM "KnowledgeEntry""#)
            .replacingOccurrences(of: "attributes: {room: partition}", with: "attributes: {room: partition, kw_score: filter}")
        try h.writeJob(yaml: yaml)
        #expect(try h.runJob(["--full"]).status == 0)
        let length = "The staging host zebracorn42 needs a reboot before Friday.".count
        for mode in ["keyword", "hybrid"] {
            let r = try Self.search(h, "zebracorn42", ["--mode", mode, "--where", "kw_score=\(length)"])
            #expect(r.status == 0, "\(r.stderr)")
            let first = (r.json["results"] as? [[String: Any]] ?? []).first
            #expect(first?["id"] as? String == "kw-edit")
            #expect((first?["attributes"] as? [String: Any])?["kw_score"] as? Int == length, "\(first ?? [:])")
            if mode == "keyword" {
                // The score is −bm25 of the match, not the attribute of the same name.
                let score = first?["score"] as? Double ?? 0
                #expect(score > 0 && score < Double(length), "score \(score)")
            }
        }
    }
}
