import Foundation
import Testing
@testable import ReindexKit

/// Issue 14: attributes declared per source, refused before any work (exit 64) when they
/// cannot be stored, each message naming the key and what was expected.
struct AttributeSpecTests {
    static func job(_ sources: String) -> String {
        """
        name: rooms
        primary: p.db
        output: v.db
        sources:
        \(sources)
        model:
          provider: openai
          url: http://127.0.0.1:8080
          name: m
          dimensions: 8
        """
    }

    static let two = """
          - name: message
            query: SELECT id, content AS text, "roomId" AS room, "createdAt" AS created FROM "Message"
            attributes: {room: partition, created: filter}
          - name: knowledge
            query: SELECT id, body AS text, NULL AS room, "createdAt" AS created FROM "KnowledgeEntry"
            attributes: {created: filter, room: {role: partition, type: text}}
        """

    static func refusal(_ sources: String) -> ReindexError? {
        do {
            _ = try JobConfig.parse(yaml: job(sources), file: "/j.yml")
            return nil
        } catch let error as ReindexError {
            return error
        } catch {
            return .internal("\(error)")
        }
    }

    @Test func parsesShortAndLongFormsSortedByName() throws {
        // The second source declares a type for room: the sets differ, so it is refused...
        let e = try #require(Self.refusal(Self.two))
        #expect(e.exitCode == 64)
        #expect("\(e)".contains("sources[1].attributes"), "\(e)")
        #expect("\(e)".contains("{created: filter, room: partition/text}") && "\(e)".contains("{created: filter, room: partition}"), "\(e)")
        // ...and accepted once both declare the same.
        let same = Self.two.replacingOccurrences(of: "room: {role: partition, type: text}", with: "room: partition")
        let job = try JobConfig.parse(yaml: Self.job(same), file: "/j.yml")
        #expect(job.attributes == [AttributeSpec(name: "created", role: .filter), AttributeSpec(name: "room", role: .partition)])
        #expect(job.sources.allSatisfy { $0.attributes == job.attributes })
        let typed = try JobConfig.parse(yaml: Self.job("""
              - name: m
                query: SELECT id, t AS text, r AS room FROM x
                attributes: {room: {role: stored, type: integer}}
            """), file: "/j.yml")
        #expect(typed.attributes == [AttributeSpec(name: "room", role: .stored, type: .integer)])
    }

    @Test func aJobWithoutAttributesHasNone() throws {
        let job = try JobConfig.parse(yaml: Self.job("""
              - name: m
                query: SELECT id, t AS text FROM x
            """), file: "/j.yml")
        #expect(job.attributes.isEmpty)
    }

    @Test(arguments: [
        ("{room: partitioned}", "sources[0].attributes.room", "unknown role; expected one of partition, filter, stored (got \"partitioned\")"),
        ("{source: filter}", "sources[0].attributes.source", "collides"),
        ("{embedded_at: stored}", "sources[0].attributes.embedded_at", "collides"),
        ("{distance: filter}", "sources[0].attributes.distance", "collides"),
        ("{select: filter}", "sources[0].attributes.select", "SQL keyword"),
        ("{\"room id\": filter}", "sources[0].attributes.room id", "expected a column name"),
        ("{room: {role: partition, type: real}}", "sources[0].attributes.room.type", "a partition key is an integer or a text"),
        ("{room: {role: filter, type: float}}", "sources[0].attributes.room.type", "unknown type; expected one of integer, real, text"),
        ("{room: {role: filter, kind: text}}", "sources[0].attributes.room.kind", "unknown key"),
        ("{a: partition, b: partition, c: partition, d: partition, e: partition}", "sources[0].attributes", "more partition attributes than vec0 allows (got 5, at most 4)"),
        ("[room]", "sources[0].attributes", "expected a mapping of column name to role"),
        ("{room: filter, ROOM: stored}", "sources[0].attributes.", "declared twice"),
    ])
    func refusesWhatCannotBeStored(attributes: String, key: String, detail: String) throws {
        let e = try #require(Self.refusal("""
              - name: m
                query: SELECT id, t AS text FROM x
                attributes: \(attributes)
            """))
        #expect(e.exitCode == 64)
        #expect("\(e)".contains(key), "\(e)")
        #expect("\(e)".contains(detail), "\(e)")
    }

    @Test func sourcesMustShareTheAttributeSet() throws {
        let e = try #require(Self.refusal("""
              - name: message
                query: SELECT id, t AS text, r AS room FROM x
                attributes: {room: partition}
              - name: knowledge
                query: SELECT id, t AS text FROM y
            """))
        #expect(e.exitCode == 64)
        #expect("\(e)".contains("sources[1].attributes: every source must declare the same attributes"), "\(e)")
        #expect("\(e)".contains("(got none in \"knowledge\", expected {room: partition} as in \"message\")"), "\(e)")
    }

    @Test func chunkSizeFollowsThePartitions() {
        // One big partition: vec0's default.
        #expect(VecIndex.chunkSize(partitionSizes: [100_000]) == 1024)
        // 200 rooms of one row: the smallest chunk (the 302 MB case).
        #expect(VecIndex.chunkSize(partitionSizes: Array(repeating: 1, count: 200)) == 8)
        // 12 rooms of ~110: chunks no larger than the rooms.
        let twelve = VecIndex.chunkSize(partitionSizes: Array(repeating: 110, count: 12))
        #expect(twelve <= 128 && twelve >= 8)
        // Whatever the sizes, the empty slots stay within a quarter unless 8 is reached.
        for sizes in [[5000, 3, 3, 3, 1], [64, 64, 64], Array(repeating: 40, count: 500), [1_000_000]] {
            let c = VecIndex.chunkSize(partitionSizes: sizes)
            let slots = sizes.reduce(0) { $0 + ($1 + c - 1) / c * c }
            #expect(c == 8 || slots * 4 <= sizes.reduce(0, +) * 5, "\(sizes) -> \(c)")
            #expect([8, 16, 32, 64, 128, 256, 512, 1024].contains(c))
        }
    }

    @Test func whereConditionsParseAndScope() throws {
        #expect(try AttributeFilter.parse("room=R 1") == AttributeFilter(name: "room", op: "=", value: "R 1"))
        #expect(try AttributeFilter.parse("created>=17") == AttributeFilter(name: "created", op: ">=", value: "17"))
        #expect(try AttributeFilter.parse("n!=a=b") == AttributeFilter(name: "n", op: "!=", value: "a=b"))
        #expect(throws: ReindexError.self) { try AttributeFilter.parse("room") }
        let columns = [AttributeColumn(name: "room", role: .partition, type: .text), AttributeColumn(name: "created", role: .filter, type: .integer),
                       AttributeColumn(name: "author", role: .stored, type: .text)]
        let (sql, arguments) = try AttributeFilter.sql([.init(name: "created", op: ">=", value: "5"), .init(name: "room", op: "=", value: "R"),
                                                        .init(name: "created", op: "<", value: "9")], orNull: ["room"], columns: columns)
        #expect(sql == "(created >= ? AND created < ?) AND ((room = ?) OR room IS NULL)")
        #expect(arguments == [5, 9, "R"])
        for (filters, orNull, detail) in [([AttributeFilter(name: "room", op: "<", value: "R")], [String](), "takes only ="),
                                          ([AttributeFilter(name: "author", op: "=", value: "a")], [], "stored attribute"),
                                          ([AttributeFilter(name: "created", op: "=", value: "x")], [], "integer attribute"),
                                          ([AttributeFilter(name: "nope", op: "=", value: "x")], [], "no such attribute"),
                                          ([], ["room"], "no --where on room")] {
            #expect {
                _ = try AttributeFilter.sql(filters, orNull: orNull, columns: columns)
            } throws: { error in
                (error as? ReindexError)?.exitCode == 64 && "\(error)".contains(detail)
            }
        }
    }

    @Test func metaRoundTrips() {
        let columns = [AttributeColumn(name: "author", role: .stored, type: .text), AttributeColumn(name: "created", role: .filter, type: .integer),
                       AttributeColumn(name: "room", role: .partition, type: .text), AttributeColumn(name: "score", role: .filter, type: .real)]
        let text = AttributeColumn.encode(columns)
        #expect(text.contains(#""vec_null":-9223372036854775808"#) && text.contains(#""vec_null":"-inf""#) && text.contains(#""vec_null":null"#))
        #expect(AttributeColumn.decode(text) == columns)
        #expect(AttributeColumn.decode(nil) == [])
        #expect(AttributeColumn.decode("not json") == nil)
    }
}
