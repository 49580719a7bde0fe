import Foundation

/// Every failure `reindex` reports, each mapped to one exit code. The text is
/// written where the error is thrown, in the form `what failed: detail (got
/// X) — what to do`: a case adds only the "where" it carries (a path, a
/// source, a URL), never a remedy for the whole kind, because the same kind
/// has different remedies at different sites. Messages never include secrets
/// or row contents (only ids), so they are safe for logs and cron mail.
public enum ReindexError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Bad command line or job file.
    case usage(String)
    /// A job file key is missing, unknown or has the wrong type.
    case jobFile(file: String, key: String, detail: String)
    /// A source query is not usable (not read-only, missing column, SQL error).
    case sourceQuery(source: String, detail: String)
    /// The primary database cannot be opened or read.
    case primary(path: String, detail: String)
    /// The model server could not be reached or kept failing.
    case modelUnavailable(url: String, detail: String)
    /// The model answered something unusable (bad JSON, wrong count).
    case modelResponse(detail: String)
    /// The job's configuration does not match what the model server does
    /// (e.g. another dimension than `model.dimensions`): rerunning cannot fix it.
    case configuration(key: String, detail: String)
    /// The model behind the configured name produces different vectors.
    case modelDrift(detail: String)
    /// `verify` found the live file inconsistent with its contract or the primary.
    case inconsistent(detail: String)
    /// The freshly built file failed its own checks; nothing was published.
    case verification(detail: String)
    /// Sidecar files beside the output that SQLite would apply to a new file.
    case staleSidecars(paths: [String], remedy: String)
    /// A filesystem operation failed (disk full, permissions, I/O).
    case io(path: String, detail: String)
    /// Another run holds the output's lock.
    case locked(path: String, holder: String)
    /// The run was stopped by a signal; committed work is kept for resume.
    case interrupted(signal: Int32, resumeHint: String)
    /// A bug or an unexpected state.
    case `internal`(String)

    public var exitCode: Int32 {
        switch self {
        case .usage, .jobFile, .sourceQuery: return ExitCodes.usage
        case .primary: return ExitCodes.noInput
        case .modelUnavailable, .modelResponse: return ExitCodes.unavailable
        case .configuration: return ExitCodes.config
        case .modelDrift, .inconsistent: return ExitCodes.dataError
        case .verification, .internal: return ExitCodes.software
        case .staleSidecars: return ExitCodes.cantCreate
        case .io: return ExitCodes.ioError
        case .locked: return ExitCodes.tempFail
        case .interrupted(let signal, _): return signal == SIGTERM ? ExitCodes.sigterm : ExitCodes.sigint
        }
    }

    public var description: String {
        switch self {
        case .usage(let message):
            return message
        case .jobFile(let file, let key, let detail):
            return "job file \(file): \(key): \(detail)"
        case .sourceQuery(let source, let detail):
            return "source \"\(source)\": \(detail)"
        case .primary(let path, let detail):
            return "primary database \(path): \(detail)"
        case .modelUnavailable(let url, let detail):
            return "model server \(url): \(detail)"
        case .modelResponse(let detail):
            return "model response: \(detail)"
        case .configuration(let key, let detail):
            return "configuration \(key): \(detail)"
        case .modelDrift(let detail):
            return "model changed: \(detail)"
        case .inconsistent(let detail):
            return "vector file inconsistent: \(detail)"
        case .verification(let detail):
            return "new vector file failed verification, nothing was published: \(detail)"
        case .staleSidecars(let paths, let remedy):
            return "stale SQLite sidecar files beside the output (got \(paths.joined(separator: ", "))): SQLite would apply them to the new file — \(remedy)"
        case .io(let path, let detail):
            return "\(path): \(detail)"
        case .locked(let path, let holder):
            return "another run holds \(path) (got \(holder)); this run did nothing — under cron this is normal: the other run is still going; otherwise wait for it or stop it"
        case .interrupted(let signal, let hint):
            return "interrupted by \(signal == SIGTERM ? "SIGTERM" : "SIGINT"); \(hint)"
        case .internal(let message):
            return "internal error: \(message)"
        }
    }
}
