import Foundation
import GRDB
import Testing

/// Issue 14: rows carry their attributes. Scope is a security property: a query
/// scoped to a room returns that room's rows and nothing else, through `vec_items`
/// (a vec0 partition key) and through `reindex search --where`; an attribute-only
/// change costs no embedding.
@Suite(.serialized)
struct AttributeTests {
    /// Messages carry their room and time; a third of the knowledge belongs to every room (NULL).
    static func yaml(_ h: Harness, roles: String = "{room: partition, created: filter, author: stored}", index: String = "vec0") -> String {
        """
        name: rooms
        primary: primary.db
        output: out/vectors.db
        index: \(index)
        sources:
          - name: message
            query: SELECT id, content AS text, "roomId" AS room, "createdAt" AS created, "authorId" AS author FROM "Message" WHERE "deletedAt" IS NULL
            attributes: \(roles)
          - name: knowledge
            query: SELECT id, title || char(10) || body AS text, CASE WHEN rowid % 3 = 0 THEN NULL ELSE "roomId" END AS room, "createdAt" AS created, NULL AS author FROM "KnowledgeEntry"
            attributes: \(roles)
        model:
          provider: openai
          url: \(h.url)
          name: fixture-embed-384
          dimensions: 384
          batch-size: 64
          chunk-tokens: 16384
        """
    }

    /// Rooms of very different sizes: 70% (and the knowledge), 20%, the rest, then rooms of 5, 2 and 1 messages.
    static func skewRooms(_ primary: URL) throws -> [String] {
        let q = try DatabaseQueue(path: primary.path)
        defer { try? q.close() }
        return try q.write { db in
            let rooms = try String.fetchAll(db, sql: #"SELECT id FROM "Room" ORDER BY id"#)
            let ids = try String.fetchAll(db, sql: #"SELECT id FROM "Message" WHERE "deletedAt" IS NULL AND trim(content) != '' ORDER BY id"#)
            let n = ids.count
            for (i, id) in ids.enumerated() {
                let room: String
                switch i {
                case 0..<1: room = rooms[5]
                case 1..<3: room = rooms[4]
                case 3..<8: room = rooms[3]
                case 8..<(8 + n * 7 / 10): room = rooms[0]
                case (8 + n * 7 / 10)..<(8 + n * 9 / 10): room = rooms[1]
                default: room = rooms[2]
                }
                try db.execute(sql: #"UPDATE "Message" SET "roomId" = ? WHERE id = ?"#, arguments: [room, id])
            }
            // Knowledge: in the big room (a third of it belongs to every room through the job's query).
            try db.execute(sql: #"UPDATE "KnowledgeEntry" SET "roomId" = ?"#, arguments: [rooms[0]])
            return Array(rooms.prefix(6))
        }
    }

    /// Consumer queries through vec0 against brute force over `items`, in Debian's
    /// python3 with sqlite-vec: every room scoped with `vec_items ... AND room = ?` and
    /// with the consumer SQL of docs/format.md (extracted from the document, so the
    /// documented text is what is tested). Prints {"checked": n, "violations": [...]}.
    static let consumerScript = #"""
    import json, random, re, sqlite3, struct, sys
    db, ext, doc, rooms_json, per_room = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    con.enable_load_extension(True); con.load_extension(ext)
    text = open(doc).read()
    block = text.split("<!-- consumer-sql:begin -->")[1].split("<!-- consumer-sql:end -->")[0]
    named = {}
    for part in re.split(r"^-- name: ", block.replace("```sql", "").replace("```", ""), flags=re.M)[1:]:
        name, body = part.split("\n", 1)
        named[name.strip()] = "\n".join(l for l in body.splitlines() if not l.startswith("--")).strip().rstrip(";")
    assert set(named) == {"room", "room_and_everywhere", "room_between"}, named.keys()
    rooms = json.loads(rooms_json)
    rnd = random.Random(7)
    created = [r[0] for r in con.execute("SELECT created FROM items WHERE created IS NOT NULL ORDER BY created")]
    violations, checked = [], 0
    def blob(v): return struct.pack("<%df" % len(v), *v)
    def brute(where, args, q, k):
        return [round(r[1], 5) for r in con.execute(
            "SELECT id, vec_distance_cosine(embedding, ?) AS d FROM items WHERE %s ORDER BY d, id LIMIT ?" % where, [q] + args + [k])]
    def room_of(ids):
        return [con.execute("SELECT room FROM items WHERE id = ?", (i,)).fetchone()[0] for i in ids]
    for room in rooms:
        for t in range(per_room):
            q = blob([rnd.gauss(0, 1) for _ in range(384)])
            k = rnd.choice([1, 5, 10, 25])
            checked += 1
            # vec_items scoped by its partition key: only this room, and exactly its k nearest.
            got = con.execute("SELECT rowid, distance FROM vec_items WHERE embedding MATCH ? AND k = ? AND room = ? ORDER BY distance", (q, k, room)).fetchall()
            if any(r != room for r in room_of([g[0] for g in got])):
                violations.append("vec_items room=%s returned another room's rows: %s" % (room, set(room_of([g[0] for g in got]))))
            if [round(g[1], 5) for g in got] != brute("room = ?", [room], q, k):
                violations.append("vec_items room=%s k=%d is not the room's %d nearest" % (room, k, k))
            # The documented consumer SQL.
            p = {"query": q, "k": k, "room": room}
            got = con.execute(named["room"], p).fetchall()
            if [round(g[3], 5) for g in got] != brute("room = ?", [room], q, k):
                violations.append("format.md 'room' differs from brute force (room %s, k %d)" % (room, k))
            got = con.execute(named["room_and_everywhere"], p).fetchall()
            if [round(g[3], 5) for g in got] != brute("(room = ? OR room IS NULL)", [room], q, k):
                violations.append("format.md 'room_and_everywhere' differs from brute force (room %s, k %d)" % (room, k))
            lo = created[rnd.randrange(len(created) // 2)]; hi = created[rnd.randrange(len(created) // 2, len(created))]
            p.update({"from": lo, "to": hi})
            got = con.execute(named["room_between"], p).fetchall()
            if [round(g[3], 5) for g in got] != brute("room = ? AND created BETWEEN ? AND ?", [room, lo, hi], q, k):
                violations.append("format.md 'room_between' differs from brute force (room %s, k %d)" % (room, k))
    print(json.dumps({"checked": checked, "violations": violations[:20]}))
    """#

    @Test func scopedQueriesNeverLeaveTheirRoom() throws {
        try #require(Vec.available, Vec.missing)
        let h = try Harness(primary: .init(messages: 1500, knowledge: 45, extra: ["--rooms", "6"]), job: nil)
        defer { h.cleanup() }
        let rooms = try Self.skewRooms(h.primary)
        try h.writeJob(yaml: Self.yaml(h))
        let full = try h.runJob(["--full", "--format", "json"])
        #expect(full.status == 0, "stderr: \(full.stderr)")
        let sizes = try rooms.map { room -> Int in try E2E.scalar(h.output, "SELECT count(*) FROM items WHERE room = '\(room)'") ?? 0 }
        #expect(sizes[5] == 1 && sizes[4] == 2 && sizes[3] == 5 && sizes[0] > 700, "room sizes \(sizes)")
        let nulls: Int? = try E2E.scalar(h.output, "SELECT count(*) FROM items WHERE room IS NULL")
        #expect(nulls == 15)

        // Through vec_items and the documented consumer SQL, 20 random queries per room.
        let script = h.dir.appendingPathComponent("consumer.py")
        try Self.consumerScript.write(to: script, atomically: true, encoding: .utf8)
        let roomsJSON = String(decoding: try JSONSerialization.data(withJSONObject: rooms), as: UTF8.self)
        let r = try E2E.run(Vec.systemPython, [script.path, h.output.path, Vec.extensionPath!,
                                               E2E.root.appendingPathComponent("docs/format.md").path, roomsJSON, "20"])
        #expect(r.status == 0, "consumer.py: \(r.stderr)")
        let out = try E2E.json(r.stdout)
        #expect(out["checked"] as? Int == 120)
        #expect((out["violations"] as? [String] ?? ["no answer"]).isEmpty, "\(out["violations"] ?? "")")

        // Through `reindex search --where`: the exact text of a message of the biggest room,
        // scoped to each room, finds only that room's rows; small rooms get all of theirs.
        let q = try DatabaseQueue(path: h.primary.path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        let probes: [String] = try q.read { db in
            try String.fetchAll(db, sql: """
                SELECT content FROM "Message" WHERE "roomId" IN (?, ?) AND "deletedAt" IS NULL AND length(content) BETWEEN 20 AND 200
                ORDER BY id LIMIT 3
                """, arguments: [rooms[0], rooms[3]])
        }
        try q.close()
        #expect(probes.count == 3)
        for text in probes {
            for (i, room) in rooms.enumerated() {
                let s = try h.command("search", [text, "--k", "10", "--where", "room=\(room)", "--format", "json"])
                #expect(s.status == 0, "stderr: \(s.stderr)")
                let results = try E2E.json(s.stdout)["results"] as? [[String: Any]] ?? []
                let seen = Set(results.map { ($0["attributes"] as? [String: Any])?["room"] as? String ?? "<null>" })
                #expect(seen.isSubset(of: [room]), "search --where room=\(room) returned rows of \(seen)")
                #expect(results.count == min(10, sizes[i]), "room \(i) of \(sizes[i]) rows gave \(results.count)")
                // The same ids as vec_items scoped to the room, for the query's own vector.
                let raw = try h.server.rawVectors([text])[0]
                let norm = sqrt(raw.reduce(0) { $0 + $1 * $1 })
                let knn = try Vec.knnScoped(h.output, query: raw.map { $0 / norm }, k: 10, room: room)
                let ids = try results.map { hit -> Int64 in
                    try E2E.scalar(h.output, "SELECT id FROM items WHERE source = '\(hit["source"] as! String)' AND source_id = '\(hit["id"] as! String)'") ?? -1
                }
                #expect(Set(ids) == Set(knn.map(\.0)), "room \(i): search and vec_items disagree")
            }
        }

        // --or-null adds the rows that belong to every room, and nothing of another room.
        let wide = try h.command("search", [probes[0], "--k", "40", "--where", "room=\(rooms[5])", "--or-null", "room", "--format", "json"])
        #expect(wide.status == 0, "stderr: \(wide.stderr)")
        let hits = try E2E.json(wide.stdout)["results"] as? [[String: Any]] ?? []
        let wideRooms = hits.map { ($0["attributes"] as? [String: Any])?["room"] }
        #expect(hits.count == 16, "1 message + 15 every-room knowledge entries, got \(hits.count)")
        #expect(wideRooms.allSatisfy { ($0 as? String) == rooms[5] || $0 is NSNull })
    }

    @Test func anAttributeOnlyChangeIsUpdatedWithoutEmbedding() throws {
        try #require(Vec.available, Vec.missing)
        let h = try Harness(primary: .init(messages: 1000, knowledge: 30, extra: ["--rooms", "5"]), job: nil)
        defer { h.cleanup() }
        try h.writeJob(yaml: Self.yaml(h))
        let full = try h.runJob(["--full", "--format", "json"])
        #expect(full.status == 0, "stderr: \(full.stderr)")
        let chunkSize: String? = try E2E.scalar(h.output, "SELECT value FROM meta WHERE key = 'vec_chunk_size'")
        #expect(chunkSize.flatMap(Int.init).map { $0 >= 8 && $0 <= 256 } == true, "chunk size \(chunkSize ?? "nil") for 5 rooms of ~200")
        let attributes: String? = try E2E.scalar(h.output, "SELECT value FROM meta WHERE key = 'attributes'")
        #expect(attributes == #"{"attributes":[{"name":"author","role":"stored","type":"text","vec_null":null},{"name":"created","role":"filter","type":"integer","vec_null":-9223372036854775808},{"name":"room","role":"partition","type":"text","vec_null":""}]}"#)
        // NULL in items; its stand-in in vec_items.
        #expect(try Vec.int(h.output, "SELECT count(*) FROM vec_items WHERE room = ''") == 10)
        #expect(try Vec.int(h.output, "SELECT count(*) FROM items WHERE room IS NULL") == 10)
        try h.server.reset()

        // The application moves 10 messages (1%) to a new room and edits 5 authors (a stored column).
        let db = try DatabaseQueue(path: h.primary.path)
        let (moved, edited): ([String], [String]) = try db.write { db in
            let moved = try String.fetchAll(db, sql: #"SELECT id FROM "Message" WHERE "deletedAt" IS NULL AND trim(content) != '' ORDER BY id LIMIT 10"#)
            let edited = try String.fetchAll(db, sql: #"SELECT id FROM "Message" WHERE "deletedAt" IS NULL AND trim(content) != '' ORDER BY id DESC LIMIT 5"#)
            try db.execute(sql: #"UPDATE "Message" SET "roomId" = 'room-new' WHERE id IN (\#(moved.map { "'\($0)'" }.joined(separator: ",")))"#)
            try db.execute(sql: #"UPDATE "Message" SET "authorId" = 'someone-else' WHERE id IN (\#(edited.map { "'\($0)'" }.joined(separator: ",")))"#)
            return (moved, edited)
        }
        try db.close()

        // Dry run and verify count them on their own.
        let plan = try E2E.json(try h.runJob(["--dry-run", "--format", "json"]).stdout)
        #expect(plan["attributes_changed"] as? Int == 15 && plan["changed"] as? Int == 0 && plan["to_embed"] as? Int == 0, "\(plan)")
        let samples = (plan["sources"] as? [String: Any])?["message"].flatMap { ($0 as? [String: Any])?["samples"] as? [String: [String]] }
        #expect(Set(samples?["attributes_changed"] ?? []) == Set((moved + edited).sorted().prefix(10)))
        let verify = try h.command("verify", ["--format", "json"])
        #expect(verify.status == 65)
        let message = ((try E2E.json(verify.stdout))["sources"] as? [String: Any])?["message"] as? [String: Any]
        #expect(message?["attributes_changed"] as? Int == 15)

        // Nothing to embed: the run calls no model at all (not even the drift probes).
        let run = try h.runJob(["--format", "json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let summary = try E2E.json(run.stdout)
        #expect(summary["published"] as? Bool == true)
        #expect(summary["attributes_changed"] as? Int == 15 && summary["embedded"] as? Int == 0, "\(summary)")
        #expect(try h.server.stats()["requests"] as? Int == 0, "no model call")
        #expect(try E2E.scalar(h.output, "SELECT count(*) FROM items WHERE room = 'room-new'") as Int? == 10)
        #expect(try E2E.scalar(h.output, "SELECT count(*) FROM items WHERE author = 'someone-else'") as Int? == 5)
        #expect(try Vec.int(h.output, "SELECT count(*) FROM vec_items WHERE room = 'room-new'") == 10)
        #expect(try Vec.int(h.output, "SELECT count(*) FROM vec_items WHERE author = 'someone-else'") == 5)
        #expect(try h.command("verify").status == 0)

        // Nothing left to do; then a role change alone republishes, still without embedding.
        let again = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(again["published"] as? Bool == false)
        try h.writeJob(yaml: Self.yaml(h, roles: "{room: partition, created: stored, author: stored}"))
        let roles = try E2E.json(try h.runJob(["--format", "json"]).stdout)
        #expect(roles["published"] as? Bool == true && roles["embedded"] as? Int == 0, "\(roles)")
        let declared: String? = try E2E.scalar(h.output, "SELECT value FROM meta WHERE key = 'attributes'")
        #expect(declared?.contains(#""name":"created","role":"stored""#) == true)
        #expect(try h.command("verify").status == 0)
    }

    @Test func unusableAttributesStopBeforeAnyWork() throws {
        let h = try Harness(primary: .init(messages: 50, knowledge: 5), job: nil)
        defer { h.cleanup() }
        // A declared column the query lacks.
        try h.writeJob(yaml: Self.yaml(h).replacingOccurrences(of: #", "authorId" AS author FROM "Message""#, with: #" FROM "Message""#))
        let missing = try h.runJob()
        #expect(missing.status == 64)
        #expect(missing.stderr.contains(#"source "message": attributes.author: the query has no column named "author""#), "\(missing.stderr)")
        // A column whose values are of several types.
        try h.writeJob(yaml: Self.yaml(h).replacingOccurrences(of: #"NULL AS author FROM "KnowledgeEntry""#, with: #"42 AS author FROM "KnowledgeEntry""#))
        let mixed = try h.runJob()
        #expect(mixed.status == 64)
        #expect(mixed.stderr.contains("attributes.author: values of several types"), "\(mixed.stderr)")
        // Different sets across sources.
        try h.writeJob(yaml: Self.yaml(h).replacingOccurrences(of: "attributes: {room: partition, created: filter, author: stored}\n  - name: knowledge",
                                                                with: "attributes: {room: partition}\n  - name: knowledge"))
        let differ = try h.runJob()
        #expect(differ.status == 64, "\(differ.stderr)")
        #expect(try h.server.stats()["inputs"] as? Int == 0)
        #expect(!FileManager.default.fileExists(atPath: h.output.path))
    }
}

extension Vec {
    /// KNN through vec0 scoped to one room (partition key): (rowid, distance) best first.
    static func knnScoped(_ db: URL, query: [Float], k: Int, room: String) throws -> [(Int64, Double)] {
        let hex = query.map { String(format: "%08x", $0.bitPattern.byteSwapped) }.joined()
        let out = try sql(db, "SELECT rowid, distance FROM vec_items WHERE embedding MATCH X'\(hex)' AND k = \(k) AND room = '\(room)' ORDER BY distance")
        if let error = out["error"] { throw E2E.Failure("knn: \(error)") }
        return (out["rows"] as? [[Any]] ?? []).map { (($0[0] as! NSNumber).int64Value, ($0[1] as! NSNumber).doubleValue) }
    }
}
