import Foundation
import Logging
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// A local model server the job starts (`model.server`), waits for, and
/// always stops — on success, failure and interruption — so cron needs no
/// server running between runs.
///
/// swift-subprocess spawns it with an empty signal mask and default signal
/// dispositions (a child of a Swift concurrency thread would otherwise
/// inherit blocked signals and never see our SIGTERM), in its own process
/// group (a terminal's Ctrl-C reaches only reindex, which then stops the
/// server in order), in the job file's directory, with stdin from /dev/null
/// and stdout and stderr appended to `model.server.log` (else discarded).
public enum ManagedServer {
    /// How long the server's group has between SIGTERM and SIGKILL.
    static let grace: Duration = .seconds(10)

    /// Starts the configured server, waits until `ready-url` answers 200, runs
    /// `body`, then stops the server however `body` ends (returns, throws or
    /// is cancelled): SIGTERM to its group, up to 10 s, then SIGKILL. Returns
    /// once the server is gone. Without a configuration it just runs `body`.
    public static func run<T>(_ config: ManagedServerConfig?, logger: Logger,
                              isolation: isolated (any Actor)? = #isolation,
                              body: () async throws -> T) async throws -> T {
        guard let config else { return try await body() }
        let server = Supervisor(config: config, logger: logger)
        // The group does not return before its child has torn the server down.
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { await server.supervise() }
            defer { group.cancelAll() }
            try await server.waitReady()
            return try await body()
        }
    }

    /// Stops every live server at once: SIGTERM to each group, up to 2 s,
    /// then SIGKILL. For the second-signal path only, which runs on a
    /// Dispatch queue (never the cooperative pool) and calls `_exit` next.
    public static func stopAll() {
        let groups = live.all
        for group in groups { kill(-group, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(2)
        while groups.contains(where: groupAlive), ContinuousClock.now < deadline { usleep(20_000) }
        for group in groups where groupAlive(group) { kill(-group, SIGKILL) }
    }

    /// Process groups of servers that are running (the group id is the server's pid).
    static let live = LiveGroups()

    /// Whether any process of the group (the server or a child of it) still exists.
    static func groupAlive(_ group: pid_t) -> Bool {
        kill(-group, 0) == 0 || errno == EPERM
    }
}

/// The set behind `ManagedServer.stopAll`, written from tasks, read from a signal handler's queue.
final class LiveGroups: @unchecked Sendable {
    private let lock = NSLock()
    private var groups: Set<pid_t> = []

    func insert(_ group: pid_t) { lock.withLock { _ = groups.insert(group) } }
    func remove(_ group: pid_t) { lock.withLock { _ = groups.remove(group) } }
    var all: [pid_t] { lock.withLock { Array(groups) } }
}

/// One server's life: spawned and watched by `supervise()` (a child task
/// whose cancellation is the stop request), waited for by `waitReady()`.
private final class Supervisor: @unchecked Sendable {
    enum State {
        case starting
        case running(pid_t)
        case exited(TerminationStatus)
        case failed(ReindexError)
    }

    let config: ManagedServerConfig
    let logger: Logger
    private let lock = NSLock()
    private var _state = State.starting
    private var ready = false
    /// Where this run's output starts in the log, so an error quotes only this run's lines.
    private var logStart: Int64 = 0

    init(config: ManagedServerConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    var state: State {
        get { lock.withLock { _state } }
        set { lock.withLock { _state = newValue } }
    }

    /// Runs the server until it exits or this task is cancelled; never throws:
    /// what went wrong is left in `state` for `waitReady()`.
    func supervise() async {
        let output: FileDescriptor
        do {
            output = try openOutput()
        } catch {
            let log = config.log ?? "/dev/null"
            state = .failed(.modelUnavailable(url: config.readyURL, detail: "cannot open model.server.log \(log) (got \(error)) — check that its directory is writable"))
            return
        }
        var options = PlatformOptions()
        options.processGroupID = 0
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: ManagedServer.grace)]
        var group: pid_t?
        do {
            let result = try await Subprocess.run(
                executable, arguments: Arguments(Array(config.command.dropFirst())),
                workingDirectory: FilePath(config.workingDirectory), platformOptions: options,
                input: .none, output: .fileDescriptor(output, closeAfterSpawningProcess: true), error: .combinedWithOutput
            ) { execution in
                let pid = execution.processIdentifier.value
                group = pid
                ManagedServer.live.insert(pid)
                state = .running(pid)
                logger.info("started the model server", metadata: ["pid": "\(pid)", "command": "\(config.command[0])"])
                // Subprocess reports the exit only after this closure returns: peek
                // (without reaping) until it has happened or a stop cancels the sleep.
                while !Self.hasExited(pid) {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            state = .exited(result.terminationStatus)
            if lock.withLock({ ready }) {
                logger.warning("the model server exited while the job was running", metadata: ["status": "\(Self.describe(result.terminationStatus))"])
            }
        } catch let error as SubprocessError where group == nil {
            state = .failed(startFailure(error))
        } catch is CancellationError {
            // The stop request: Subprocess has run the teardown sequence.
            logger.info("stopped the model server", metadata: ["pid": "\(group.map(String.init) ?? "-")"])
        } catch {
            logger.warning("lost track of the model server; killing its group", metadata: ["error": "\(error)"])
            state = .failed(.modelUnavailable(url: config.readyURL, detail: "cannot watch the model server (got \(error)) — rerun; if it persists, start the server outside the job and drop model.server"))
        }
        if let group {
            ManagedServer.live.remove(group)
            // The server is gone; children that outlived it are not left behind (ESRCH when none did).
            kill(-group, SIGKILL)
        }
    }

    /// Polls `ready-url` until it answers 200; throws when the server exits
    /// first, cannot start, or `ready-timeout` passes.
    func waitReady() async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(config.readyTimeout * 1000))
        var last = "no answer"
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .exited(let status):
                throw ReindexError.modelUnavailable(url: config.readyURL, detail: exitedEarly(status))
            case .starting, .running:
                break
            }
            if let response = try? await HTTPTransport.shared.perform(HTTPRequest(url: config.readyURL, timeout: 5, connectTimeout: 2)) {
                if response.status == 200 {
                    lock.withLock { ready = true }
                    logger.info("the model server is ready", metadata: ["url": "\(config.readyURL)"])
                    return
                }
                last = "HTTP \(response.status)"
            }
            guard ContinuousClock.now < deadline else {
                let see = config.log.map { "check its log \($0)" } ?? "set model.server.log to see its output"
                throw ReindexError.modelUnavailable(url: config.readyURL, detail: "the model server was not ready after \(Self.seconds(config.readyTimeout)) s (got \(last) from model.server.ready-url) — raise model.server.ready-timeout if the model loads slowly, or \(see)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A bare name is looked up on PATH; a path with a slash is relative to the job file's directory.
    private var executable: Executable {
        let first = config.command[0]
        guard first.contains("/") else { return .name(first) }
        if first.hasPrefix("/") { return .path(FilePath(first)) }
        return .path(FilePath(URL(fileURLWithPath: config.workingDirectory).appendingPathComponent(first).standardizedFileURL.path))
    }

    private func openOutput() throws -> FileDescriptor {
        guard let log = config.log else { return try FileDescriptor.open("/dev/null", .writeOnly, options: .closeOnExec) }
        try FileOps.makeDirectory(forFile: log)
        let fd = try FileDescriptor.open(FilePath(log), .writeOnly, options: [.create, .append, .closeOnExec],
                                         permissions: [.ownerReadWrite, .groupRead, .otherRead])
        let start = try fd.seek(offset: 0, from: .end)
        lock.withLock { logStart = start }
        return fd
    }

    private func startFailure(_ error: SubprocessError) -> ReindexError {
        let name = config.command[0]
        let detail: String
        if error.code == .executableNotFound {
            detail = "cannot start model.server.command \"\(name)\" (got command not found, a shell's exit 127) — install it, or give its path (a relative path is from the job file's directory \(config.workingDirectory))"
        } else if error.code == .failedToChangeWorkingDirectory {
            detail = "cannot start model.server.command \"\(name)\" in \(config.workingDirectory) (got \(error)) — check that the job file's directory is readable"
        } else {
            detail = "cannot start model.server.command \"\(name)\" (got \(error)) — check model.server.command"
        }
        return .modelUnavailable(url: config.readyURL, detail: detail)
    }

    private func exitedEarly(_ status: TerminationStatus) -> String {
        let what = "the model server exited before it was ready (got \(Self.describe(status)))"
        guard let log = config.log else {
            return what + " — set model.server.log to capture its output, and check model.server.command"
        }
        let lines = Self.tail(of: log, from: lock.withLock { logStart })
        guard !lines.isEmpty else {
            return what + " — its log \(log) has nothing from this run; check model.server.command, then rerun"
        }
        // The remedy first, on the message's first line; the log's lines after it.
        return what + " — fix what its log reports or model.server.command, then rerun; last lines of \(log):\n"
            + lines.map { "    " + $0 }.joined(separator: "\n")
    }

    static func describe(_ status: TerminationStatus) -> String {
        switch status {
        case .exited(127): return "exit code 127: command not found"
        case .exited(126): return "exit code 126: found but not executable"
        case .exited(let code): return "exit code \(code)"
        case .signaled(let signal): return "killed by signal \(signal): \(strsignal(signal).map { String(cString: $0) } ?? "unknown")"
        }
    }

    /// The last (at most 10) non-empty lines the server wrote from `offset`
    /// on, read from at most the log's last 4 KiB, each cut to 300 characters.
    static func tail(of path: String, from offset: Int64) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        guard let end = try? handle.seekToEnd() else { return [] }
        let start = max(UInt64(max(offset, 0)), end > 4096 ? end - 4096 : 0)
        guard (try? handle.seek(toOffset: start)) != nil, let data = try? handle.readToEnd() else { return [] }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return lines.suffix(10).map { $0.count > 300 ? String($0.prefix(300)) + "…" : $0 }
    }

    /// Whether the child has exited, without reaping it (Subprocess reaps it).
    static func hasExited(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 else { return errno == ECHILD }
        return info.si_signo == SIGCHLD
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
