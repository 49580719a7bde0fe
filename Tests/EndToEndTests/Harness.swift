import Foundation
import Testing

/// One end-to-end test's world, set up in one call and torn down in one: a
/// temp directory, the fixture embedding server, a primary database, a job
/// file and, when asked, a first published run. Built on the low-level
/// helpers in Support.swift (`E2E`, `EmbedServer`).
///
///     let h = try Harness(primary: .init(messages: 300), publish: .init())
///     defer { h.cleanup() }
///     let r = try h.runJob(["--format", "json"])
///     #expect(try E2E.sha256(h.output) == before)
///
/// `cleanup()` stops the server and removes the directory; call it from a
/// `defer` (it also runs from `deinit`, but an object may go away after its
/// last use, before paths taken from it are used, so do not rely on that).
/// If the set-up itself fails, everything made so far is cleaned up first.
final class Harness: @unchecked Sendable {
    /// The fixture server, fixtures/embed_server.py.
    struct Server {
        /// Extra command-line arguments (`--dimensions`, `--seed`, …).
        var extra: [String] = []
        /// HTTP on a Unix socket; `url` is then `unix:/path`.
        var unix = false
        /// Faults set right after the start (POST /_faults), so before any publish.
        var faults: [String: Any]? = nil
    }

    /// The primary database, from fixtures/make_primary.py (deterministic).
    struct Primary {
        var messages = 1300
        var knowledge = 75
        /// Leave the primary in journal_mode=WAL.
        var wal = false
        /// Rows added with `--include` (written to include.json beside the primary).
        var include: [String: Any]? = nil
        /// More make_primary.py arguments (`--seed`, `--rooms`).
        var extra: [String] = []
    }

    /// The job file, as `E2E.writeJob` writes it.
    struct Job {
        /// Output path, relative to the job's directory.
        var output = "out/vectors.db"
        var sources: [(String, String)]? = nil
        /// Merged into the default model block (batch size, concurrency, name, …).
        var model: [String: String] = [:]
        /// Top-level YAML lines (`index: vec0\n`).
        var extraTop = ""
        /// model.url; default: the fixture server, or a closed port without one.
        var url: String? = nil
        var name = "job.yml"
    }

    /// A first run before the test proper.
    struct Publish {
        /// Arguments after `--job <file>`.
        var args: [String] = []
        /// Exit codes that count as published (3: published with failed rows).
        var accept: Set<Int32> = [0]
        /// Zero the server's counters afterwards, so the test counts only its own requests.
        var resetStats = true
    }

    /// A URL nothing listens on (the discard port): for jobs that must not reach a model.
    static let closedURL = "http://127.0.0.1:9"

    let dir: URL
    private let embedServer: EmbedServer?
    /// The primary database (it exists unless the harness was made with `primary: nil`).
    let primary: URL
    /// The job file (written unless the harness was made with `job: nil`).
    let job: URL
    /// The job's output vector file.
    let output: URL
    private let cleaned = LockedBox(false)

    init(_ name: String = #function, server: Server? = Server(), primary: Primary? = Primary(), job: Job? = Job(),
         publish: Publish? = nil) throws {
        dir = try E2E.tempDir(name)
        self.primary = dir.appendingPathComponent("primary.db")
        self.job = dir.appendingPathComponent(job?.name ?? "job.yml")
        output = dir.appendingPathComponent(job?.output ?? "out/vectors.db")
        do {
            embedServer = try server.map { try EmbedServer(extra: $0.extra, unix: $0.unix) }
        } catch {
            try? FileManager.default.removeItem(at: dir)
            throw error
        }
        do {
            if let faults = server?.faults { try self.server.faults(faults) }
            if let primary {
                var extra = primary.extra
                if let include = primary.include {
                    let file = dir.appendingPathComponent("include.json")
                    try JSONSerialization.data(withJSONObject: include).write(to: file)
                    extra += ["--include", file.path]
                }
                try E2E.makePrimary(self.primary, messages: primary.messages, knowledge: primary.knowledge, wal: primary.wal, extra: extra)
            }
            if let job {
                _ = try writeJob(job.name, output: job.output, sources: job.sources, model: job.model, extraTop: job.extraTop, url: job.url)
            }
            if let publish {
                let r = try runJob(publish.args)
                guard publish.accept.contains(r.status) else {
                    throw E2E.Failure("first publish (\(publish.args)) exited \(r.status): \(r.stderr)")
                }
                if publish.resetStats, embedServer != nil { try self.server.reset() }
            }
        } catch {
            cleanup()
            throw error
        }
    }

    deinit { cleanup() }

    /// Stops the server and removes the directory; safe to call twice.
    func cleanup() {
        guard cleaned.withLock({ done in defer { done = true }; return !done }) else { return }
        embedServer?.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    /// The fixture server; a harness made with `server: nil` has none (asking is a test bug).
    var server: EmbedServer {
        guard let embedServer else { preconditionFailure("this Harness was made with server: nil") }
        return embedServer
    }

    /// model.url for jobs: the fixture server, or a closed port without one.
    var url: String { embedServer?.url ?? Self.closedURL }

    // MARK: Paths

    /// The directory of the output: the file, its lock, `.prev`, work files.
    var outDir: URL { output.deletingLastPathComponent() }
    /// The previous file kept for `reindex rollback`.
    var prev: URL { URL(fileURLWithPath: output.path + ".prev") }
    /// The lock beside the output (stays after a run; holds the holder's pid while one runs).
    var lock: URL { URL(fileURLWithPath: output.path + ".lock") }
    /// The work file of an unfinished run (resumed by the next one).
    var work: URL { URL(fileURLWithPath: output.path + ".work") }
    /// `<output><suffix>`: `-wal`, `-shm`, `-journal`.
    func sidecar(_ suffix: String) -> URL { URL(fileURLWithPath: output.path + suffix) }

    /// Sorted names in `url` (default: the test's directory).
    func listing(_ url: URL? = nil) throws -> [String] { try E2E.listing(url ?? dir) }
    /// Sorted names in the output's directory.
    func outListing() throws -> [String] { try E2E.listing(outDir) }

    // MARK: Running

    /// The binary with exactly these arguments (E2E.binary: .build/debug/reindex or REINDEX_BIN).
    @discardableResult
    func run(_ args: [String], env: [String: String] = [:], timeout: Double = 300) throws -> E2E.Result {
        try E2E.reindex(args, env: env, timeout: timeout)
    }

    /// `reindex --job <job> args…` (the default `run` subcommand).
    @discardableResult
    func runJob(_ args: [String] = [], job: URL? = nil, env: [String: String] = [:], timeout: Double = 300) throws -> E2E.Result {
        try run(["--job", (job ?? self.job).path] + args, env: env, timeout: timeout)
    }

    /// `reindex <command> --job <job> args…` (verify, search, doctor, rollback).
    @discardableResult
    func command(_ command: String, _ args: [String] = [], job: URL? = nil, env: [String: String] = [:], timeout: Double = 300) throws -> E2E.Result {
        try run([command, "--job", (job ?? self.job).path] + args, env: env, timeout: timeout)
    }

    /// `reindex --job <job> args…` in the background; its stderr through `E2E.readSpawned`.
    func spawnJob(_ args: [String] = [], job: URL? = nil, env: [String: String] = [:]) throws -> Process {
        try E2E.spawn(E2E.binary, ["--job", (job ?? self.job).path] + args, env: env)
    }

    // MARK: Files

    /// Writes another job file in the directory (defaults as `E2E.writeJob`; model.url is `url`).
    @discardableResult
    func writeJob(_ name: String = "job.yml", output: String = "out/vectors.db", sources: [(String, String)]? = nil,
                  model: [String: String] = [:], extraTop: String = "", url: String? = nil) throws -> URL {
        try E2E.writeJob(dir, url: url ?? self.url, primary: "primary.db", output: output, sources: sources, model: model,
                         extraTop: extraTop, name: name)
    }

    /// Writes a job file with exactly this YAML.
    @discardableResult
    func writeJob(yaml: String, name: String = "job.yml") throws -> URL {
        let url = dir.appendingPathComponent(name)
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// fixtures/mutate_primary.py on the primary; returns the ids it touched.
    @discardableResult
    func mutate(_ args: [String]) throws -> [String: [String]] {
        try E2E.mutatePrimary(primary, args)
    }
}
