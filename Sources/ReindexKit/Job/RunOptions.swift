import Foundation

/// How a run may deviate from the plain command.
public struct RunOptions: Sendable {
    public enum ModelChange: String, Sendable, CaseIterable { case stop, full }
    public var full = false
    public var restart = false
    public var force = false
    public var onModelChange: ModelChange = .stop
    public var progress: ProgressReporter.Mode = .auto
    /// How long in-flight batches may finish after SIGINT/SIGTERM.
    public var grace: Duration = .seconds(10)
    /// sqlite-vec's loadable extension (`--sqlite-vec`, else `SQLITE_VEC_PATH`, else the Python package).
    public var sqliteVecPath: String?
    /// Local directory for the work file when the output is on a network filesystem (`--work-dir`).
    public var workDirectory: String?
    public init() {}
}
