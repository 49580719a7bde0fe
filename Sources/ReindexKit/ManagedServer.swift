import Foundation
import Logging

/// A local model server the job starts (`model.server`), waits for, and
/// always stops — on success, failure and interruption — so cron needs no
/// server running between runs. SIGTERM first, SIGKILL after a grace period.
public final class ManagedServer: @unchecked Sendable {
    private let process: Process
    private let logger: Logger
    private let lock = NSLock()
    private var stopped = false

    /// Every server started by this process, so a signal handler can stop them.
    nonisolated(unsafe) private static var live: [ManagedServer] = []
    private static let liveLock = NSLock()

    init(process: Process, logger: Logger) {
        self.process = process
        self.logger = logger
    }

    /// Starts the configured server and waits until `ready-url` answers 200.
    public static func start(_ config: ManagedServerConfig?, logger: Logger) throws -> ManagedServer? {
        guard let config else { return nil }
        let process = Process()
        var command = config.command
        let executable = command.removeFirst()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable, relativeTo: URL(fileURLWithPath: config.workingDirectory + "/"))
            process.arguments = command
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + command
        }
        process.currentDirectoryURL = URL(fileURLWithPath: config.workingDirectory)
        if let log = config.log {
            try FileOps.makeDirectory(forFile: log)
            FileManager.default.createFile(atPath: log, contents: nil)
            let handle = FileHandle(forWritingAtPath: log)
            handle?.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ReindexError.modelUnavailable(url: config.readyURL, detail: "cannot start model.server.command \(executable): \(error.localizedDescription)")
        }
        let server = ManagedServer(process: process, logger: logger)
        liveLock.withLock { live.append(server) }
        logger.info("started the model server", metadata: ["pid": "\(process.processIdentifier)", "command": "\(executable)"])
        do {
            try server.waitReady(config)
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    private func waitReady(_ config: ManagedServerConfig) throws {
        let deadline = Date().addingTimeInterval(config.readyTimeout)
        let semaphore = DispatchSemaphore(value: 0)
        while true {
            guard process.isRunning else {
                throw ReindexError.modelUnavailable(url: config.readyURL, detail: "the model server exited with status \(process.terminationStatus) before it was ready\(config.log.map { "; see \($0)" } ?? "")")
            }
            let box = ResultBox()
            Task.detached {
                let r = try? await HTTPTransport.shared.perform(HTTPRequest(url: config.readyURL, timeout: 5, connectTimeout: 2))
                box.status = r?.status ?? 0
                semaphore.signal()
            }
            semaphore.wait()
            if box.status == 200 {
                logger.info("the model server is ready", metadata: ["url": "\(config.readyURL)"])
                return
            }
            guard Date() < deadline else {
                throw ReindexError.modelUnavailable(url: config.readyURL, detail: "the model server was not ready after \(Int(config.readyTimeout)) s (model.server.ready-timeout)\(config.log.map { "; see \($0)" } ?? "")")
            }
            usleep(200_000)
        }
    }

    private final class ResultBox: @unchecked Sendable { var status = 0 }

    /// SIGTERM, wait up to 10 s, then SIGKILL. Idempotent.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            if stopped { return false }
            stopped = true
            return true
        }
        guard first else { return }
        Self.liveLock.withLock { Self.live.removeAll { $0 === self } }
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            logger.warning("the model server ignored SIGTERM; killing it", metadata: ["pid": "\(pid)"])
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        logger.info("stopped the model server", metadata: ["pid": "\(pid)"])
    }

    /// Stops every managed server (from a signal path).
    public static func stopAll() {
        let servers = liveLock.withLock { live }
        for s in servers { s.stop() }
    }
}
