import Foundation
import GRDB
import Logging
import Testing
@testable import ReindexKit

struct VecIndexUnitTests {
    static let ext = try? SQLiteVecExtension.locate(explicit: nil, environment: ProcessInfo.processInfo.environment)

    func work(_ dir: URL, rows: Int) async throws -> WorkFile {
        let work = try WorkFile(path: dir.appendingPathComponent("work.db").path, dimensions: 4, wal: true)
        var items: [EmbeddedItem] = []
        for i in 1...rows {
            var v: [Float] = [Float(i), 1, 2, 3]
            try v.withUnsafeMutableBufferPointer { try VectorNormalizer.normalize($0) }
            items.append(EmbeddedItem(source: "s", sourceID: String(i), chunk: 0, spanStart: 0, spanEnd: 4, rowHash: Data([0]), hash: Data([0]),
                                      embedding: v.withUnsafeBytes { Data($0) }))
        }
        try await work.write(items: items, failures: [])
        return work
    }

    static let fifty = WorkFile.Accounting(rows: 50, items: 50, unaccounted: 0, failures: [], itemsBySource: ["s": 50], rowsBySource: ["s": 50])

    /// What a plain connection (no extension) sees of the file.
    func schemaNames(_ path: String) throws -> (vec: [String], quick: [String], items: Int) {
        let q = try DatabaseQueue(path: path)
        defer { try? q.close() }
        return try q.read { db in
            (try String.fetchAll(db, sql: "SELECT name FROM sqlite_schema WHERE name LIKE 'vec_items%' ORDER BY name"),
             try String.fetchAll(db, sql: "PRAGMA quick_check"),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM items") ?? 0)
        }
    }

    /// A work file resumed from an attempt that had built vec_items loses it
    /// even when this run has no extension to `DROP` it with.
    @Test func rebuildsAndDropsWithOrWithoutTheExtension() async throws {
        try #require(Self.ext != nil, "sqlite-vec's Python package is missing — run ./fixtures/setup.sh")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vecindex-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let logger = Logger(label: "test")
        let w = try await work(dir, rows: 50)

        let built = try w.buildIndex(.init(mode: .vec0, ext: Self.ext), logger: logger)
        #expect(built.meta[.index] == "vec0")
        // check() compares vec_items with items (count, orphans, sampled vectors).
        try w.check(expected: Self.fifty, prefixLength: 0)
        // Built again (a resumed run): still exactly the items.
        _ = try w.buildIndex(.init(mode: .vec0, ext: Self.ext), logger: logger)
        try w.check(expected: Self.fifty, prefixLength: 0)
        w.close()
        #expect(try !schemaNames(w.path).vec.isEmpty)

        // A new connection without the extension, as in a run that cannot find it.
        let again = try WorkFile(path: w.path, dimensions: 4, wal: true)
        let none = try again.buildIndex(.init(mode: .auto, ext: nil), logger: logger)
        #expect(none.meta[.index] == "none")
        again.close()
        let after = try schemaNames(w.path)
        #expect(after.vec.isEmpty)
        #expect(after.quick == ["ok"])
        #expect(after.items == 50)
    }
}
