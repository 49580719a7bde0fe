import ArgumentParser
import Foundation
import ReindexKit

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search the live vector file by meaning, keywords or both; print the best rows.",
        discussion: """
            vector: the query embedded with the job's model, exact brute-force cosine ranking (BLAS, \
            streamed in blocks; no sqlite-vec needed). keyword: bm25 over the file's FTS5 index (job key \
            `keywords: fts5`); the query's words are matched as plain words, never as FTS5 syntax. hybrid \
            (the default when the file has keywords): both rankings fused by reciprocal rank; when the \
            model cannot be reached it answers from keywords alone and says so (exit 0). Each row is shown \
            by its best chunk; texts are read from the primary, read-only.
            """
    )

    @OptionGroup var jobOptions: JobOptions

    @Argument(help: "The query text.")
    var query: String

    @Option(name: .long, help: "How many results.")
    var k: Int = 10

    @Option(name: .long, help: "Output format: text or json.")
    var format: ReportFormat = .text

    @Option(name: .long, help: "vector, keyword or hybrid (default: hybrid when the file has a keyword index, else vector).")
    var mode: SearchMode?

    @Option(name: .customLong("rrf-k"), help: "Hybrid: the reciprocal-rank constant k of weight/(k + rank).")
    var rrfK: Double = 60

    @Option(name: .customLong("vector-weight"), help: "Hybrid: the weight of the vector ranking.")
    var vectorWeight: Double = 1

    @Option(name: .customLong("keyword-weight"), help: "Hybrid: the weight of the keyword ranking.")
    var keywordWeight: Double = 1

    @Option(name: .customLong("keyword-coverage"), help: "Hybrid: the share (0 to 1) of the query's IDF weight a chunk's words must carry to count on the keyword side; 0 counts every match.")
    var keywordCoverage: Double = 0.5

    @Option(name: .customLong("where"), help: ArgumentHelp(
        "Scope the search by an attribute: NAME=VALUE for a partition key; NAME OP VALUE with OP one of = != < <= > >= for a filter. Repeatable; all must hold; never matches NULL.",
        valueName: "condition"))
    var conditions: [String] = []

    @Option(name: .customLong("or-null"), help: ArgumentHelp(
        "Also match rows whose NAME is NULL (e.g. knowledge that belongs to every room). Repeatable; needs a --where on NAME.",
        valueName: "name"))
    var orNull: [String] = []

    func validate() throws {
        guard (1...10_000).contains(k) else { throw ValidationError("--k must be from 1 to 10000 (got \(k))") }
        if query.allSatisfy(\.isWhitespace) { throw ValidationError("the query is empty") }
        guard rrfK >= 0, rrfK.isFinite else { throw ValidationError("--rrf-k must be 0 or more (got \(rrfK))") }
        guard (0...1).contains(keywordCoverage) else { throw ValidationError("--keyword-coverage must be from 0 to 1 (got \(keywordCoverage))") }
        for (name, w) in [("--vector-weight", vectorWeight), ("--keyword-weight", keywordWeight)] where !(w >= 0 && w.isFinite) {
            throw ValidationError("\(name) must be 0 or more (got \(w))")
        }
    }

    func run() async throws {
        let logger = bootstrapLogging(quiet: jobOptions.quiet)
        try await runReporting {
            BLAS.configure()
            let job = try jobOptions.load()
            let filters = try conditions.map(AttributeFilter.parse)
            let report = try await Searcher(job: job, logger: logger).search(query, k: k, where: filters, orNull: orNull, mode: mode,
                                                                     fusion: HybridFusion(k: rrfK, vectorWeight: vectorWeight, keywordWeight: keywordWeight,
                                                                                          keywordCoverage: keywordCoverage))
            if let degraded = report.degraded {
                FileHandle.standardError.write(Data("reindex: search: answered from keywords alone, the model could not embed the query: \(degraded)\n".utf8))
            }
            print(format == .json ? report.json() : report.text())
        }
    }
}

extension SearchMode: ExpressibleByArgument {}
