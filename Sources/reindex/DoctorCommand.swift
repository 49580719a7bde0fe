import ArgumentParser
import Foundation
import ReindexKit

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Explain what a run would find and decide: filesystems, work directory, sidecars, lock, unfinished work."
    )

    @OptionGroup var jobOptions: JobOptions

    @Option(name: .customLong("work-dir"), help: ArgumentHelp("Local directory for the work file.", valueName: "dir"))
    var workDir: String?

    func run() async throws {
        _ = bootstrapLogging(quiet: true)
        try await runReporting {
            print(Doctor.report(job: try jobOptions.load(), workDirectory: workDir))
        }
    }
}
