import ArgumentParser
import Foundation
import ReindexKit

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the live vector file against its contract and the primary database.",
        discussion: """
            Read-only: the primary is scanned as a run would, the vector file is opened with mode=ro, \
            and nothing is created or changed. Checks quick_check, meta, every eligible row present with \
            its current content hash (rows in `failures` are reported as failed, not missing), no extra \
            rows, dimensions, finite unit vectors, and vec_items against items. \
            Exit codes: 0 consistent, 65 inconsistent (the report names what is wrong), 64 usage.
            """
    )

    @OptionGroup var jobOptions: JobOptions
    @OptionGroup var vecOptions: VecOptions

    @Option(name: .long, help: "Report format: text or json.")
    var format: ReportFormat = .text


    func run() async throws {
        let logger = bootstrapLogging(quiet: jobOptions.quiet)
        try await runReporting {
            BLAS.configure()
            let job = try jobOptions.load()
            let report = try await Verifier(job: job, sqliteVecPath: vecOptions.sqliteVec, logger: logger).run()
            print(format == .json ? report.json() : report.text())
            if let error = report.error { throw error }
        }
    }
}
