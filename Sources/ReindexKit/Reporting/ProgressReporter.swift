import Foundation
import Logging

/// Progress of the embed stage on stderr: a redrawn bar on a TTY, one plain
/// log line every few seconds otherwise, nothing with `--quiet`.
public final class ProgressReporter: @unchecked Sendable {
    public enum Mode: Sendable { case auto, quiet }

    private let lock = NSLock()
    private var done = 0
    private var total = 0
    private var started = ContinuousClock.now
    private var task: Task<Void, Never>?
    private let tty: Bool
    private let mode: Mode
    private let logger: Logger
    /// the per-endpoint part of the line (several endpoints), nil otherwise.
    private let detail: (@Sendable () -> String)?

    public init(mode: Mode, logger: Logger, detail: (@Sendable () -> String)? = nil) {
        self.mode = mode
        self.logger = logger
        self.detail = detail
        self.tty = isatty(STDERR_FILENO) == 1
    }

    func start(total: Int) {
        lock.withLock {
            self.total = total
            self.done = 0
            self.started = .now
        }
        guard mode != .quiet, total > 0 else { return }
        let interval: Duration = tty ? .milliseconds(200) : .seconds(5)
        task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self, !Task.isCancelled else { return }
                self.render(final: false)
            }
        }
    }

    func advance(_ n: Int) {
        lock.withLock { done += n }
    }

    func finish() {
        task?.cancel()
        task = nil
        if mode != .quiet && tty && total > 0 { render(final: true) }
    }

    private func render(final: Bool) {
        let (done, total, started) = lock.withLock { (self.done, self.total, self.started) }
        let elapsed = max(0.001, Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds))
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let pct = total > 0 ? Double(done) / Double(total) : 1
        if tty {
            let width = 30
            let filled = Int(pct * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            var line = String(format: "\r%@ %d/%d %3.0f%% %6.0f items/s ETA %@ ", bar, done, total, pct * 100, rate, Self.clock(eta))
            if let detail { line += "| \(detail()) \u{1B}[K" }
            FileHandle.standardError.write(Data((line + (final ? "\n" : "")).utf8))
        } else {
            var metadata: Logger.Metadata = ["done": "\(done)", "total": "\(total)", "items_per_s": "\(Int(rate))", "eta_s": "\(Int(eta))"]
            if let detail { metadata["endpoints"] = "\(detail())" }
            logger.info("progress", metadata: metadata)
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
