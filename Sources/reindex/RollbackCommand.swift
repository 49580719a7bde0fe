import ArgumentParser
import Foundation
import ReindexKit

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Restore <output>.prev atomically (the replaced file becomes the new .prev)."
    )

    @OptionGroup var jobOptions: JobOptions

    func run() async throws {
        let logger = bootstrapLogging(quiet: jobOptions.quiet)
        try await runReporting {
            print(try Rollback.run(job: try jobOptions.load(), logger: logger))
        }
    }
}
