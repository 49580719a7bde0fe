import Foundation
import GRDB
import Logging

/// `reindex search`: embeds a query with the job's model (and
/// `model.query-prefix`) and ranks every stored vector by brute-force cosine
/// similarity with BLAS, streaming the file in blocks so memory stays
/// bounded. It needs no sqlite-vec: the ranking is exact, and it doubles as a
/// check of what the application's KNN queries should return.
public final class Searcher: Sendable {
    public let job: JobConfig
    let logger: Logger
    let environment: [String: String]

    public init(job: JobConfig, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.job = job
        self.logger = logger
        self.environment = environment
    }

    public func search(_ text: String, k: Int) async throws -> SearchReport {
        try Reindexer.checkPaths(job)
        let path = job.output
        guard FileOps.exists(path) else {
            throw ReindexError.io(path: path, detail: "no vector file — run `reindex --job \(job.file)` to build it")
        }
        if let problem = Verifier.header(path) {
            throw ReindexError.inconsistent(detail: "\(path): \(problem)")
        }
        let scanner = try SourceScanner(path: job.primary, logger: logger)
        let queue = try DatabaseQueue()
        defer { try? queue.close() }
        do {
            try Planner.attachReadOnly(queue, path: path)
        } catch {
            throw ReindexError.inconsistent(detail: "\(path): cannot open it read-only: \(Planner.describe(error))")
        }
        defer { Planner.detachLive(queue) }
        let meta = try Self.meta(queue, path: path)
        guard meta["format"] == VectorStore.format else {
            throw ReindexError.inconsistent(detail: "\(path) is not a \(VectorStore.format) file (format \(meta["format"] ?? "missing"))")
        }
        guard meta["model"] == job.model.name, meta["dimensions"] == String(job.model.dimensions) else {
            throw ReindexError.inconsistent(detail: "\(path) was built with model \(meta["model"] ?? "?") (\(meta["dimensions"] ?? "?") dimensions), the job uses \(job.model.name) (\(job.model.dimensions)) — rebuild it with `reindex --job \(job.file) --full`")
        }

        let query = try await embed(text)
        let d = job.model.dimensions
        let ranked = try await queue.read { db -> [(id: Int64, score: Float)] in
            let rows = try Row.fetchCursor(db, sql: "SELECT id, embedding FROM live.items ORDER BY id")
            return try VectorNormalizer.topK(query: query, k: k) { matrix, ids in
                let capacity = matrix.count / d
                var n = 0
                while n < capacity, let row = try rows.next() {
                    let stored = try row.withUnsafeData(atIndex: 1) { data -> Bool in
                        guard let data, data.count == d * 4 else { return false }
                        data.withUnsafeBytes { src in
                            UnsafeMutableRawPointer(matrix.baseAddress! + n * d).copyMemory(from: src.baseAddress!, byteCount: d * 4)
                        }
                        return true
                    }
                    guard stored else {
                        throw ReindexError.inconsistent(detail: "item \(row[0] as Int64) does not have \(d) float32 dimensions — run `reindex verify`")
                    }
                    ids.append(row[0])
                    n += 1
                }
                return n
            }
        }

        var hits: [SearchHit] = []
        for (id, score) in ranked {
            guard let row = try queue.read({ db in try Row.fetchOne(db, sql: "SELECT source, source_id FROM live.items WHERE id = ?", arguments: [id]) }) else { continue }
            let source: String = row[0], sourceID: String = row[1]
            var line: String?
            if let config = job.sources.first(where: { $0.name == source }), let full = try scanner.text(config, id: sourceID) {
                line = Self.firstLine(full)
            }
            hits.append(SearchHit(source: source, id: sourceID, score: score, text: line))
        }
        return SearchReport(query: text, results: hits)
    }

    static func meta(_ queue: DatabaseQueue, path: String) throws -> [String: String] {
        do {
            return try queue.read { db in
                var out: [String: String] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT key, value FROM live.meta") { out[row[0]] = row[1] }
                return out
            }
        } catch {
            throw ReindexError.inconsistent(detail: "\(path): cannot read its meta table: \(Planner.describe(error)) — run `reindex verify`")
        }
    }

    /// The query's unit vector, from the job's model (started when the job manages it).
    func embed(_ text: String) async throws -> [Float] {
        let reindexer = Reindexer(job: job, options: RunOptions(), logger: logger, environment: environment)
        let embedder = BatchEmbedder(client: reindexer.makeClient(), model: job.model, counters: RunCounters(),
                                     stop: StopSignal(), logger: logger, limit: BatchLimit(1))
        let input = job.model.queryPrefix + text
        let row = ScannedRow(sourceID: "query", hash: Data(), input: input, truncated: false)
        let result = try await ManagedServer.run(job.model.server, logger: logger) { try await embedder.embed([PendingRow(source: "_query", row: row)]) }
        guard let item = result.items.first else {
            throw ReindexError.modelResponse(detail: "the model rejected the query: \(result.failures.first?.error ?? "no vector")")
        }
        return item.embedding.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// The first non-blank line, cut to 200 characters.
    static func firstLine(_ text: String) -> String {
        let line = text.split(whereSeparator: \.isNewline).first { !$0.allSatisfy(\.isWhitespace) }.map(String.init) ?? ""
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        return trimmed.count > 200 ? String(trimmed.prefix(200)) + "…" : trimmed
    }
}
