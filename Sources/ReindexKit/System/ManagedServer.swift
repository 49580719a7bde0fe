import Foundation
import Logging

/// A local model server the job starts (`model.server`), waits for, and
/// always stops — on success, failure and interruption — so cron needs no
/// server running between runs.
///
/// Spawned with posix_spawn rather than Foundation's Process: a child
/// started from a Swift concurrency thread would inherit that thread's
/// blocked-signal mask and never see our SIGTERM. The server gets an empty
/// mask, default signal handlers and its own process group (a terminal's
/// Ctrl-C reaches only reindex, which then stops the server in order).
public final class ManagedServer: @unchecked Sendable {
    public let pid: pid_t
    private let logger: Logger
    private let lock = NSLock()
    private var exitStatus: Int32?
    private var stopped = false

    nonisolated(unsafe) private static var live: [ManagedServer] = []
    private static let liveLock = NSLock()

    private init(pid: pid_t, logger: Logger) {
        self.pid = pid
        self.logger = logger
    }

    /// Starts the configured server and waits until `ready-url` answers 200.
    public static func start(_ config: ManagedServerConfig?, logger: Logger) async throws -> ManagedServer? {
        guard let config else { return nil }
        let pid = try spawn(config)
        let server = ManagedServer(pid: pid, logger: logger)
        liveLock.withLock { live.append(server) }
        logger.info("started the model server", metadata: ["pid": "\(pid)", "command": "\(config.command[0])"])
        do {
            try await server.waitReady(config)
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    private static func spawn(_ config: ManagedServerConfig) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGPIPE, SIGHUP] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let log = config.log {
            try FileOps.makeDirectory(forFile: log)
            posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var command = config.command
        if command[0].contains("/") && !command[0].hasPrefix("/") {
            command[0] = URL(fileURLWithPath: config.workingDirectory).appendingPathComponent(command[0]).standardizedFileURL.path
        }
        // `sh` changes into the job's directory and execs the server, so the pid stays the server's.
        let wrapped = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", config.workingDirectory] + command
        let argv: [UnsafeMutablePointer<CChar>?] = wrapped.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, environ)
        guard rc == 0 else {
            throw ReindexError.modelUnavailable(url: config.readyURL, detail: "cannot start model.server.command \(command[0]): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// Non-blocking check; reaps the child once it has exited. ECHILD alone is
    /// not trusted (another part of the process may have reaped it): the
    /// server's process group must be gone too.
    private func hasExited() -> Bool {
        lock.withLock {
            if exitStatus == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { exitStatus = status }
            }
            return exitStatus != nil || !groupAlive()
        }
    }

    /// Whether any process of the server's group (the server and its children) still exists.
    private func groupAlive() -> Bool {
        kill(-pid, 0) == 0 || errno == EPERM
    }

    private func waitReady(_ config: ManagedServerConfig) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(config.readyTimeout * 1000))
        let logHint = config.log.map { "; see \($0)" } ?? ""
        while true {
            if hasExited() {
                throw ReindexError.modelUnavailable(url: config.readyURL, detail: "the model server exited (status \(exitStatus ?? -1)) before it was ready\(logHint)")
            }
            let status = (try? await HTTPTransport.shared.perform(HTTPRequest(url: config.readyURL, timeout: 5, connectTimeout: 2)))?.status ?? 0
            if status == 200 {
                logger.info("the model server is ready", metadata: ["url": "\(config.readyURL)"])
                return
            }
            guard ContinuousClock.now < deadline else {
                throw ReindexError.modelUnavailable(url: config.readyURL, detail: "the model server was not ready after \(Int(config.readyTimeout)) s (model.server.ready-timeout)\(logHint)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// SIGTERM to the server's process group, up to 10 s, then SIGKILL; returns
    /// once no process of the group is left. Idempotent.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            if stopped { return false }
            stopped = true
            return true
        }
        guard first else { return }
        Self.liveLock.withLock { Self.live.removeAll { $0 === self } }
        func gone() -> Bool { _ = hasExited(); return !groupAlive() }
        guard !gone() else { return }
        kill(-pid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while !gone() && Date() < deadline { usleep(20_000) }
        if !gone() {
            logger.warning("the model server ignored SIGTERM for 10 s; killing it", metadata: ["pid": "\(pid)"])
            kill(-pid, SIGKILL)
            let hard = Date().addingTimeInterval(10)
            while !gone() && Date() < hard { usleep(20_000) }
        }
        logger.info("stopped the model server", metadata: ["pid": "\(pid)"])
    }

    /// Stops every managed server (the second-signal path).
    public static func stopAll() {
        for s in liveLock.withLock({ live }) { s.stop() }
    }
}
