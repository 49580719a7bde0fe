import Foundation
import GRDB
import Logging

/// `reindex search`: embeds a query with the job's model (and
/// `model.query-prefix`) and ranks every stored chunk by brute-force cosine
/// similarity with BLAS, streaming the file in blocks so memory stays
/// bounded; results are rows, each shown by its best chunk's passage. It needs no sqlite-vec: the ranking is exact, and it doubles as a
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

    /// `scope`: `--where` conditions (all must hold) and `--or-null` names;
    /// `mode`: nil = hybrid when the file has a keyword index, else vector.
    public func search(_ text: String, k: Int, where filters: [AttributeFilter] = [], orNull: [String] = [],
                       mode requested: SearchMode? = nil, fusion: HybridFusion = HybridFusion()) async throws -> SearchReport {
        let (file, columns, hasKeywords) = try openLiveFile()
        let mode = requested ?? (hasKeywords ? .hybrid : .vector)
        if mode != .vector && !hasKeywords {
            throw ReindexError.usage("search --mode \(mode.rawValue): \(job.output) has no keyword index (got no meta.keywords) — add `keywords: fts5` to the job and run `reindex --job \(job.file)` (no re-embedding), or search with --mode vector")
        }
        // Checked before the model is asked anything.
        let scope: LiveFileReader.Scope? = filters.isEmpty && orNull.isEmpty ? nil : try AttributeFilter.sql(filters, orNull: orNull, columns: columns)
        let scanner = try PrimaryLocation.open(job.primary, logger: logger)

        var report = SearchReport(query: text, mode: mode, results: [])
        let depth = mode == .hybrid ? HybridFusion.depth(for: k) : k
        var vector: [HybridFusion.Ranked] = []
        if mode != .keyword {
            do {
                vector = try await vectorSide(text, file: file, depth: depth, retries: mode == .hybrid ? 1 : nil, scope: scope, columns: columns)
            } catch let error as ReindexError where mode == .hybrid && error.exitCode == ExitCodes.unavailable {
                // The fallback of DESIGN.md's incident: keywords still answer when the model cannot.
                report.degraded = "keyword only: \(error.description)"
            }
        }
        var keyword: [HybridFusion.Ranked] = []
        if mode != .vector, let terms = KeywordQuery(text) {
            // Fused with a vector side, keywords count only where they cover the query; alone (keyword
            // mode, or hybrid without the model) every match ranks, best first.
            let coverage = mode == .hybrid && report.degraded == nil ? fusion.keywordCoverage : 0
            keyword = try file.keywordRank(terms, coverage: coverage, candidates: 2 * depth, limit: depth, scope: scope, attributes: columns)
                .map { HybridFusion.Ranked(key: $0.0, score: $0.1, values: $0.2) }
        }
        let fused: [HybridFusion.Fused]
        switch mode {
        case .vector: fused = vector.map { .init(key: $0.key, score: $0.score, values: $0.values, vector: nil, keyword: nil) }
        case .keyword: fused = keyword.map { .init(key: $0.key, score: $0.score, values: $0.values, vector: nil, keyword: nil) }
        case .hybrid: fused = fusion.fuse(vector: vector, keyword: keyword, limit: k)
        }
        for row in fused.prefix(k) {
            let key = row.key
            var passage: String?
            if let config = job.sources.first(where: { $0.name == key.source }), let full = try scanner.text(config, id: key.sourceID) {
                passage = Self.passage(full, start: key.start, end: key.end)
            }
            let attributes = Dictionary(uniqueKeysWithValues: zip(columns.map(\.name), row.values.map(SearchHit.Value.init)))
            report.results.append(SearchHit(source: key.source, id: key.sourceID, score: row.score, chunk: key.chunk, passage: passage,
                                            attributes: attributes, vector: row.vector, keyword: row.keyword))
        }
        return report
    }

    /// The live file, read-only, once it is a current-format file of the
    /// job's model; its attribute columns and whether it has keywords.
    private func openLiveFile() throws -> (LiveFileReader, [AttributeColumn], Bool) {
        try OutputPaths(output: job.output).refuseSameFile(asPrimary: job.primary)
        let path = job.output
        guard FileOps.exists(path) else {
            throw ReindexError.io(path: path, detail: "no vector file — run `reindex --job \(job.file)` to build it")
        }
        if let problem = LiveFile.headerProblem(path) {
            throw ReindexError.inconsistent(detail: "\(path): \(problem)")
        }
        let file = try LiveFileReader(path: path)
        let meta = try file.meta()
        if meta[.format] == VectorFileFormat.previousVersion {
            throw ReindexError.inconsistent(detail: "\(path) is a \(VectorFileFormat.previousVersion) file (got format \(VectorFileFormat.previousVersion)) — run `reindex --job \(job.file)` once: it upgrades the file to \(VectorFileFormat.version), re-embedding only rows that now have several chunks")
        }
        guard meta[.format] == VectorFileFormat.version else {
            throw ReindexError.inconsistent(detail: "\(path) is not a \(VectorFileFormat.version) file (got format \(meta[.format] ?? "missing")) — rebuild it with `reindex --job \(job.file) --full`")
        }
        guard meta[.model] == job.model.name, meta[.dimensions] == String(job.model.dimensions) else {
            throw ReindexError.inconsistent(detail: "\(path) was built with model \(meta[.model] ?? "?") (\(meta[.dimensions] ?? "?") dimensions), the job uses \(job.model.name) (\(job.model.dimensions)) — rebuild it with `reindex --job \(job.file) --full`")
        }
        guard let columns = AttributeColumn.decode(meta[.attributes]) else {
            throw ReindexError.inconsistent(detail: "\(path): meta attributes is not readable (got \(meta[.attributes] ?? "nothing")) — run `reindex verify`")
        }
        return (file, columns, try meta[.keywords] != nil && file.hasKeywords())
    }

    /// The vector side: the `depth` best rows by cosine similarity, equal
    /// similarities in `(source, id)` order as the consumer SQL of
    /// docs/format.md ranks them. `retries` caps the model's retries (a
    /// hybrid search has a fallback: it retries once, not for a minute).
    private func vectorSide(_ text: String, file: LiveFileReader, depth: Int, retries: Int?, scope: LiveFileReader.Scope?,
                            columns: [AttributeColumn]) async throws -> [HybridFusion.Ranked] {
        let query = try await embed(text, maxRetries: min(job.model.maxRetries, retries ?? job.model.maxRetries))
        return try bestChunks(file, query: query, k: depth, scope: scope, attributes: columns)
            .map { HybridFusion.Ranked(key: $0.0, score: Double($0.1), values: $0.2) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : ($0.key.source, $0.key.sourceID) < ($1.key.source, $1.key.sourceID) }
    }

    /// The `k` best rows, each by its best chunk: the exact top chunks,
    /// widened until they hold `k` rows (or every chunk was ranked).
    func bestChunks(_ file: LiveFileReader, query: [Float], k: Int, scope: LiveFileReader.Scope? = nil,
                    attributes: [AttributeColumn] = []) throws -> [(LiveFileReader.Key, Float, [DatabaseValue])] {
        let total = try file.itemCount(scope: scope)
        guard total > 0 else { return [] }
        var wanted = k * 4
        while true {
            var best: [String: (LiveFileReader.Key, Float, [DatabaseValue])] = [:]
            var order: [String] = []
            for (id, score) in try file.rank(query: query, k: min(wanted, total), dimensions: job.model.dimensions, scope: scope) {
                guard let (key, values) = try file.key(of: id, attributes: attributes) else { continue }
                let row = key.source + "\u{0}" + key.sourceID
                if best[row] == nil {
                    best[row] = (key, score, values)
                    order.append(row)
                }
            }
            if order.count >= k || wanted >= total {
                return order.prefix(k).map { best[$0]! }
            }
            wanted *= 4
        }
    }

    /// The chunk's text, whitespace folded, cut to 300 characters.
    static func passage(_ text: String, start: Int, end: Int) -> String {
        let scalars = Array(text.unicodeScalars)
        let lo = min(max(0, start), scalars.count), hi = min(max(lo, end), scalars.count)
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[lo..<hi])
        let folded = String(view).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return folded.count > 300 ? String(folded.prefix(300)) + "…" : folded
    }

    /// The query's unit vector, from the job's model (started when the job manages it).
    func embed(_ text: String, maxRetries: Int) async throws -> [Float] {
        var config = job.model
        config.maxRetries = maxRetries
        let model = ModelSession(model: config, environment: environment, stop: StopSignal(), logger: logger, batchSize: 1)
        let input = job.model.queryPrefix + text
        let result = try await ManagedServer.run(job.model.server, logger: logger) {
            try await model.embedder.embed([PendingChunk(source: "_query", sourceID: "query", input: input)])
        }
        guard let item = result.items.first else {
            throw ReindexError.modelResponse(detail: "the model rejected the query (got: \(result.failures.first?.error ?? "no vector")) — shorten the query or check the model server's log")
        }
        return item.embedding.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
