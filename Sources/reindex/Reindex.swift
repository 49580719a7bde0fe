import ArgumentParser
import Foundation
import Logging
import ReindexKit

@main
struct Reindex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract: "Rebuild an application's derived vector index from its primary SQLite database.",
        discussion: """
            Reads source rows read-only from the primary database, embeds them through a model server, \
            and atomically publishes a dedicated, sqlite-vec compatible vector file. \
            Exit codes: 0 ok, 3 published with failed rows, 64 usage/job error, 65 model drift or \
            inconsistent file, 66 primary missing, 69 model server unavailable, 70 internal error, 78 job does not match the model (e.g. dimensions), \
            73 stale sidecar files, 74 I/O error, 75 another run holds the lock, 130/143 interrupted.
            """,
        version: ReindexVersion.string,
        subcommands: [RunCommand.self, VerifyCommand.self, SearchCommand.self, DoctorCommand.self, RollbackCommand.self],
        defaultSubcommand: RunCommand.self
    )
}

/// Options every subcommand that reads a job shares.
struct JobOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The job file (YAML).", valueName: "file"))
    var job: String

    @Option(name: .long, help: ArgumentHelp("Override the job's primary database path.", valueName: "path"))
    var primary: String?

    @Option(name: .long, help: ArgumentHelp("Override the job's output vector file path.", valueName: "path"))
    var output: String?

    @Option(name: .customLong("model-url"), help: ArgumentHelp("Override model.url.", valueName: "url"))
    var modelURL: String?

    @Flag(name: .long, help: "Print only errors and the summary.")
    var quiet = false

    func load() throws -> JobConfig {
        var config = try JobConfig.load(path: job)
        try config.apply(primary: primary, output: output, modelURL: modelURL)
        return config
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, markdown
}

/// `verify` and `search` print text or JSON only.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Maps typed errors to `error: …` on stderr and their exit code.
func runReporting<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ReindexError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(error.exitCode)
    } catch let error as ExitCode {
        throw error
    } catch is CancellationError {
        FileHandle.standardError.write(Data("error: cancelled\n".utf8))
        throw ExitCode(ExitCodes.sigint)
    } catch {
        FileHandle.standardError.write(Data("error: internal error: \(error)\n".utf8))
        throw ExitCode(ExitCodes.software)
    }
}

func bootstrapLogging(quiet: Bool) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = quiet ? .error : .info
        return handler
    }
    return Logger(label: "reindex")
}
