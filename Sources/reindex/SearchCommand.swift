import ArgumentParser
import Foundation
import ReindexKit

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Embed a query with the job's model and print the nearest items.",
        discussion: """
            Exact brute-force cosine ranking over the live vector file (BLAS, streamed in blocks); \
            no sqlite-vec needed. Texts are read from the primary, read-only.
            """
    )

    @OptionGroup var jobOptions: JobOptions

    @Argument(help: "The query text.")
    var query: String

    @Option(name: .long, help: "How many results.")
    var k: Int = 10

    @Option(name: .long, help: "Output format: text or json.")
    var format: ReportFormat = .text

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
    }

    func run() async throws {
        let logger = bootstrapLogging(quiet: jobOptions.quiet)
        try await runReporting {
            BLAS.configure()
            let job = try jobOptions.load()
            let filters = try conditions.map(AttributeFilter.parse)
            let report = try await Searcher(job: job, logger: logger).search(query, k: k, where: filters, orNull: orNull)
            print(format == .json ? report.json() : report.text())
        }
    }
}
