import ArgumentParser
import Dispatch
import Foundation
import Logging
import ReindexKit

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Build and publish the vector file (the default command).",
        discussion: """
            Without --full the run is incremental: new and changed rows are embedded, removed ones \
            dropped, unchanged vectors reused. A missing, corrupt or incompatible vector file makes it \
            a full rebuild automatically. An interrupted run resumes when the same command is rerun.
            """
    )

    @OptionGroup var jobOptions: JobOptions
    @OptionGroup var vecOptions: VecOptions

    @Flag(name: .long, help: "Rebuild everything from the primary; never reuse the old vector file.")
    var full = false

    @Flag(name: .customLong("dry-run"), help: "Print what a run would do; change nothing and call no model.")
    var dryRun = false

    @Flag(name: .long, help: "Discard unfinished work instead of resuming it.")
    var restart = false

    @Flag(name: .long, help: "Move stale -wal/-shm/-journal files beside the output aside instead of refusing.")
    var force = false

    @Option(name: .customLong("on-model-change"), help: ArgumentHelp("When the model's vectors drifted: stop (exit 65) or full (rebuild).", valueName: "stop|full"))
    var onModelChange: RunOptions.ModelChange = .stop

    @Option(name: .long, help: "Summary format: text, json or markdown (markdown for --dry-run).")
    var format: OutputFormat = .text

    @Option(name: .customLong("work-dir"), help: ArgumentHelp("Build the new file in this local directory, then copy it beside the output (automatic, with $TMPDIR, when the output is on a network filesystem).", valueName: "dir"))
    var workDir: String?

    @Option(name: .customLong("metrics-file"), help: ArgumentHelp("Write Prometheus text-format metrics here (node_exporter textfile collector).", valueName: "path"))
    var metricsFile: String?

    func validate() throws {
        if format == .markdown && !dryRun {
            throw ValidationError("--format markdown is only for --dry-run")
        }
    }

    func run() async throws {
        let logger = bootstrapLogging(quiet: jobOptions.quiet)
        try await runReporting {
            BLAS.configure()
            let job = try jobOptions.load()
            var options = RunOptions()
            options.full = full
            options.restart = restart
            options.force = force
            options.onModelChange = onModelChange
            options.progress = jobOptions.quiet ? .quiet : .auto
            options.workDirectory = workDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            // A size limit (ulimit -f) must be an error with a path, not a silent death.
            signal(SIGXFSZ, SIG_IGN)
            options.sqliteVecPath = vecOptions.sqliteVec
            let stop = StopSignal()
            let signals = SignalHandler(stop: stop, logger: logger)
            defer { signals.cancel() }
            let reindexer = Reindexer(job: job, options: options, logger: logger, stop: stop)
            if dryRun {
                let plan = try await reindexer.dryRun()
                switch format {
                case .text: print(plan.text())
                case .json: print(plan.json())
                case .markdown: print(plan.markdown())
                }
                return
            }
            let began = Date()
            let summary: RunSummary
            do {
                summary = try await reindexer.run()
            } catch let error as ReindexError {
                if let metricsFile {
                    try? MetricsFile.write(path: metricsFile, job: job.name, summary: nil, exitCode: error.exitCode, duration: Date().timeIntervalSince(began))
                }
                throw error
            }
            print(format == .json ? summary.json() : summary.text())
            if let metricsFile {
                try MetricsFile.write(path: metricsFile, job: job.name, summary: summary, exitCode: summary.exitCode, duration: summary.durationSeconds)
            }
            if summary.exitCode != 0 { throw ExitCode(summary.exitCode) }
        }
    }
}

/// SIGINT/SIGTERM become a graceful stop request; a second signal exits at
/// once (committed work stays valid: every batch commit is atomic).
final class SignalHandler: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    init(stop: StopSignal, logger: Logger) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if stop.request(sig) {
                    logger.notice("\(sig == SIGTERM ? "SIGTERM" : "SIGINT"): finishing in-flight batches, then stopping; send it again to stop at once")
                } else {
                    ManagedServer.stopAll()
                    FileHandle.standardError.write(Data("error: stopped at once by a second signal; committed work is kept, rerun the same command to resume\n".utf8))
                    _exit(sig == SIGTERM ? ExitCodes.sigterm : ExitCodes.sigint)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for s in sources { s.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

extension RunOptions.ModelChange: ExpressibleByArgument {}
