import Foundation
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
        try OutputPaths(output: job.output).refuseSameFile(asPrimary: job.primary)
        let path = job.output
        guard FileOps.exists(path) else {
            throw ReindexError.io(path: path, detail: "no vector file — run `reindex --job \(job.file)` to build it")
        }
        if let problem = LiveFile.headerProblem(path) {
            throw ReindexError.inconsistent(detail: "\(path): \(problem)")
        }
        let scanner = try SourceScanner(path: job.primary, logger: logger)
        let file = try LiveFileReader(path: path)
        let meta = try file.meta()
        guard meta[.format] == VectorFileFormat.version else {
            throw ReindexError.inconsistent(detail: "\(path) is not a \(VectorFileFormat.version) file (got format \(meta[.format] ?? "missing")) — rebuild it with `reindex --job \(job.file) --full`")
        }
        guard meta[.model] == job.model.name, meta[.dimensions] == String(job.model.dimensions) else {
            throw ReindexError.inconsistent(detail: "\(path) was built with model \(meta[.model] ?? "?") (\(meta[.dimensions] ?? "?") dimensions), the job uses \(job.model.name) (\(job.model.dimensions)) — rebuild it with `reindex --job \(job.file) --full`")
        }

        let query = try await embed(text)
        let ranked = try file.rank(query: query, k: k, dimensions: job.model.dimensions)
        var hits: [SearchHit] = []
        for (id, score) in ranked {
            guard let key = try file.key(of: id) else { continue }
            var line: String?
            if let config = job.sources.first(where: { $0.name == key.source }), let full = try scanner.text(config, id: key.sourceID) {
                line = Self.firstLine(full)
            }
            hits.append(SearchHit(source: key.source, id: key.sourceID, score: score, text: line))
        }
        return SearchReport(query: text, results: hits)
    }

    /// The query's unit vector, from the job's model (started when the job manages it).
    func embed(_ text: String) async throws -> [Float] {
        let model = ModelSession(model: job.model, environment: environment, stop: StopSignal(), logger: logger, batchSize: 1)
        let input = job.model.queryPrefix + text
        let row = ScannedRow(sourceID: "query", hash: Data(), input: input, truncated: false)
        let result = try await ManagedServer.run(job.model.server, logger: logger) {
            try await model.embedder.embed([PendingRow(source: "_query", row: row)])
        }
        guard let item = result.items.first else {
            throw ReindexError.modelResponse(detail: "the model rejected the query (got: \(result.failures.first?.error ?? "no vector")) — shorten the query or check the model server's log")
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
