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

    func validate() throws {
        guard (1...10_000).contains(k) else { throw ValidationError("--k must be from 1 to 10000 (got \(k))") }
        if query.allSatisfy(\.isWhitespace) { throw ValidationError("the query is empty") }
    }

    func run() async throws {
        let logger = bootstrapLogging(quiet: jobOptions.quiet)
        try await runReporting {
            BLAS.configure()
            let job = try jobOptions.load()
            let report = try await Searcher(job: job, logger: logger).search(query, k: k)
            print(format == .json ? report.json() : report.text())
        }
    }
}
