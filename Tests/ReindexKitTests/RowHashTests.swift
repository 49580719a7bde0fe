import Foundation
import GRDB
import Testing
@testable import ReindexKit

/// Issue 15: the hash pass hashes rows inside SQLite (`reindex_row_hash`).
/// Its hash must be the scan's own, bit for bit, or every row would look
/// changed; what it cannot hash plainly goes to the scan in Swift.
struct RowHashTests {
    func model(prefix: String = "", maxInputChars: Int = 12) throws -> ModelConfig {
        var job = try JobConfig.parse(yaml: """
            name: t
            primary: p.db
            output: out/v.db
            sources:
              - name: m
                query: SELECT id, content AS text FROM m
            model:
              provider: openai
              url: http://127.0.0.1:9
              name: m
              dimensions: 8
              max-input-chars: \(maxInputChars)
            """, file: "/jobs/job.yml")
        job.model.prefix = prefix
        return job.model
    }

    /// What the scan in Swift makes of a text: skipped (nil), cut, or staged with its hash.
    func scanned(_ text: String, _ model: ModelConfig) -> (hash: Data, truncated: Bool)? {
        var counts = ScanCounts()
        return SourceScanner.scannedRow(source: "m", sourceID: "1", text: text, bytes: text.utf8.count, attributes: [], model: model,
                                        maxRowBytes: 1 << 20, counts: &counts, logger: .init(label: "test")).map { ($0.hash, $0.truncated) }
    }

    static let texts = ["hello", "  leading and trailing  ", "\n\ttabbed", "déjà vu", "東京タワー", "🙂🙂🙂", "exactly12chr",
                        "thirteen char", "東京東京東京東京東京東京", "東京東京東京東京東京東京東", "a\u{0301}ccent", " ", "\u{00A0}\u{2003}", "\u{3000}x",
                        "\u{2028}", "", "x"]

    @Test(arguments: ["", "query: "])
    func thePlainHashIsTheScansHash(prefix: String) throws {
        let model = try model(prefix: prefix)
        for text in Self.texts {
            let plain = SourceScanner.plainHash(text, prefix: Array(prefix.utf8), maxInputChars: model.maxInputChars)
            switch scanned(text, model) {
            case nil: #expect(plain == .blank, "\(text.debugDescription) is skipped by the scan")
            case let row? where row.truncated: #expect(plain == .needsScan, "\(text.debugDescription) is cut by the scan")
            case let row?:
                guard case .hash(let digest) = plain else { Issue.record("\(text.debugDescription): \(plain), the scan hashes it"); continue }
                #expect(Data(digest) == row.hash, "\(text.debugDescription)")
            }
        }
    }

    /// Through SQLite, on values no Swift string literal makes: invalid UTF-8,
    /// an embedded NUL, numbers, blobs. Text goes through GRDB's own
    /// conversion in both paths; any other type is left to the scan.
    @Test func theSQLFunctionHashesWhatTheScanReads() throws {
        let model = try model(prefix: "p: ", maxInputChars: 100)
        let db = try DatabaseQueue()
        try db.writeWithoutTransaction { db in
            try SourceScanner.addRowHashFunction(db, model: model)
            try db.execute(sql: """
                CREATE TABLE m(id INTEGER PRIMARY KEY, content);
                INSERT INTO m(content) VALUES ('plain'), (CAST(x'68c328' AS TEXT)), ('a' || char(0) || 'b'), ('  '), (42), (x'6869'), (NULL), (1.5),
                                              (CAST(x'f09f9982' AS TEXT)), (CAST(x'eda080' AS TEXT)), (char(9, 10, 11, 12, 13, 32)), (char(28)),
                                              ('  leading'), (''), (replace(hex(zeroblob(100)), '00', 'a')), (replace(hex(zeroblob(101)), '00', 'a')),
                                              ('déjà ' || replace(hex(zeroblob(95)), '00', 'a')), ('déjà ' || replace(hex(zeroblob(96)), '00', 'a')),
                                              (char(160, 8195)), (replace(hex(zeroblob(20)), '00', 'abcdefgh') || char(0) || 'tail');
                """)
        }
        let rows = try db.read { db in
            try Row.fetchAll(db, sql: "SELECT content, reindex_row_hash(content), typeof(reindex_row_hash(content)) FROM m ORDER BY id")
        }
        #expect(rows.count == 20)
        for row in rows {
            let value: DatabaseValue = row[0]
            let kind: String = row[2]
            guard case .string(let text) = value.storage else {
                #expect(kind == "null", "\(value) is not text: the scan reads it")
                continue
            }
            switch scanned(text, model) {
            case nil: #expect(kind == "integer", "\(text.debugDescription): blank, skipped")
            case let r? where r.truncated: #expect(kind == "null", "\(text.debugDescription): cut, left to the scan")
            case let r?: #expect((row[1] as Data?) == r.hash, "\(text.debugDescription)")
            }
        }
    }

    /// The 8-bytes-at-a-time test says what a byte-by-byte one says.
    @Test func plainASCIIIsEveryByteBelow0x80AndNoneZero() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let count = Int.random(in: 0...40, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 1...0x7F, using: &generator) }
            if count > 0, Bool.random(using: &generator) { bytes[Int.random(in: 0..<count, using: &generator)] = [0, 0x80, 0xC3, 0xFF].randomElement(using: &generator)! }
            let expected = bytes.allSatisfy { $0 != 0 && $0 < 0x80 }
            bytes.withUnsafeBytes { #expect(SourceScanner.isPlainASCII($0) == expected, "\(bytes)") }
        }
    }
}
