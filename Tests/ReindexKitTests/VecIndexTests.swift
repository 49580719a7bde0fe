import Foundation
import GRDB
import Logging
import Testing
@testable import ReindexKit

struct VecIndexUnitTests {
    static let ext = try? SQLiteVecExtension.locate(explicit: nil, environment: ProcessInfo.processInfo.environment)

    func store(_ dir: URL, rows: Int) throws -> VectorStore {
        let store = try VectorStore(path: dir.appendingPathComponent("work.db").path, dimensions: 4, wal: true)
        try store.queue.write { db in
            for i in 1...rows {
                var v: [Float] = [Float(i), 1, 2, 3]
                try v.withUnsafeMutableBufferPointer { try VectorNormalizer.normalize($0) }
                try db.execute(sql: "INSERT INTO items(source, source_id, content_hash, embedding, embedded_at) VALUES ('s', ?, x'00', ?, 0)",
                               arguments: [String(i), v.withUnsafeBytes { Data($0) }])
            }
        }
        return store
    }

    func vecTables(_ store: VectorStore) throws -> [String] {
        try store.queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_schema WHERE name LIKE 'vec_items%' ORDER BY name") }
    }

    /// A work file resumed from an attempt that had built vec_items loses it
    /// even when this run has no extension to `DROP` it with.
    @Test(.enabled(if: ext != nil, "needs the sqlite-vec Python package"))
    func rebuildsAndDropsWithOrWithoutTheExtension() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vecindex-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let logger = Logger(label: "test")
        let s = try store(dir, rows: 50)

        let built = try VecIndex.build(store: s, plan: .init(mode: .vec0, ext: Self.ext), logger: logger)
        #expect(built.meta["index"] == "vec0")
        #expect(try s.queue.read { db in try VecIndex.check(db, schema: "main", sample: 20) }.isEmpty)
        // Built again (a resumed run): still exactly the items.
        _ = try VecIndex.build(store: s, plan: .init(mode: .vec0, ext: Self.ext), logger: logger)
        #expect(try s.queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM vec_items") } == 50)
        #expect(try !vecTables(s).isEmpty)
        try s.queue.close()

        // A new connection without the extension, as in a run that cannot find it.
        let again = try VectorStore(path: s.path, dimensions: 4, wal: true)
        let none = try VecIndex.build(store: again, plan: .init(mode: .auto, ext: nil), logger: logger)
        #expect(none.meta["index"] == "none")
        #expect(try vecTables(again).isEmpty)
        #expect(try again.queue.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") } == ["ok"])
        #expect(try again.queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM items") } == 50)
        try again.queue.close()
    }
}
