import Foundation
import GRDB

/// The `meta` table of a vector file, typed by `MetaKey`. Keys this version
/// does not know (a newer writer's) are kept as read, never dropped.
public struct VectorFileMeta: Sendable, Equatable {
    public private(set) var values: [String: String]

    public init(_ values: [String: String] = [:]) { self.values = values }

    public subscript(key: MetaKey) -> String? {
        get { values[key.rawValue] }
        set { values[key.rawValue] = newValue }
    }

    /// Reads `meta` of the database attached as `schema`.
    static func read(_ db: Database, schema: String) throws -> VectorFileMeta {
        var values: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT key, value FROM \(schema).meta") { values[row[0]] = row[1] }
        return VectorFileMeta(values)
    }

    /// Replaces `main.meta` with these values.
    func write(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM main.meta")
        let insert = try db.makeStatement(sql: "INSERT INTO main.meta(key, value) VALUES (?, ?)")
        for (k, v) in values.sorted(by: { $0.key < $1.key }) {
            try insert.execute(arguments: [k, v])
        }
    }
}

extension VectorFileMeta {
    /// The meta a run publishes: what a consumer needs to read the file
    /// (format, model, dimensions, distance, encoding, index) and what the
    /// next run needs to trust it (fingerprint, probes).
    init(job: JobConfig, runID: String, accounting: WorkFile.Accounting, chunking: ChunkSettings, probes: [Probe], index: [MetaKey: String],
         attributes: [AttributeColumn] = [], throughput: String?) {
        self.init()
        self[.format] = VectorFileFormat.version
        self[.model] = job.model.name
        self[.provider] = job.model.provider.rawValue
        self[.dimensions] = String(job.model.dimensions)
        self[.distance] = VectorFileFormat.distance
        self[.normalized] = VectorFileFormat.normalized
        self[.embeddingEncoding] = VectorFileFormat.embeddingEncoding
        self[.createdAt] = ISO8601DateFormatter().string(from: Date())
        self[.runID] = runID
        self[.itemCount] = String(accounting.items)
        self[.rowCount] = String(accounting.rows)
        self[.chunking] = chunking.json
        self[.job] = job.name
        self[.sourceFingerprint] = Checkpoint.fingerprint(job)
        self[.sources] = Report.encode(["names": job.sources.map(\.name)])
        self[.prefix] = job.model.prefix
        self[.probes] = Probe.encode(probes)
        self[.generator] = VectorFileFormat.generator
        self[.attributes] = AttributeColumn.encode(attributes)
        for (key, value) in index { self[key] = value }
        self[.throughputItemsPerSecond] = throughput
    }
}
