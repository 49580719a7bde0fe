import Foundation

/// Where a run builds its new file and how, decided from statfs(2) before any
/// work: beside the output, or in a local work directory and then copied
/// beside it when the output is on a network filesystem. Runs and `doctor`
/// share it, so what `doctor` explains is what a run does.
public struct BuildLocation: Sendable {
    public let paths: OutputPaths
    public let storage: StorageDecision
    /// The directory for a local build (`--work-dir`, else `$TMPDIR`, else /tmp).
    public let workDirectory: String
    /// Where the file is built and checkpointed.
    public let workPath: String

    /// The file renamed over the output: always beside it.
    public var publishPath: String { paths.work }

    public init(job: JobConfig, workDirectory: String?) {
        let dir = workDirectory ?? Self.defaultWorkDirectory
        paths = OutputPaths(output: job.output)
        storage = FileSystemProbe.decide(output: FileSystemProbe.probe(job.output), work: FileSystemProbe.probe(dir),
                                         primary: FileSystemProbe.probe(job.primary), forcedWorkDir: workDirectory != nil)
        self.workDirectory = dir
        workPath = storage.buildLocally ? paths.localWork(in: dir) : paths.work
    }

    public static var defaultWorkDirectory: String {
        ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }
}
