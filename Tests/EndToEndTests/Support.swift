import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRDB
import Testing

/// Helpers for end-to-end tests: they run the built `reindex` binary against
/// real SQLite files and the fixture embedding server on 127.0.0.1. Every
/// wait is on a condition (a file, a process exit) with a generous deadline.
/// Tests set up through `Harness` (Harness.swift), which is built on these.
enum E2E {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["REINDEX_BIN"] { return path }
        return root.appendingPathComponent(".build/debug/reindex").path
    }

    static var python: String { ProcessInfo.processInfo.environment["PYTHON"] ?? "python3" }

    /// A fresh directory per test, removed by the caller's `defer`.
    static func tempDir(_ name: String = #function) throws -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reindex-e2e-\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a command to completion (bounded by `timeout`).
    @discardableResult
    static func run(_ executable: String, _ args: [String], env: [String: String] = [:], cwd: URL? = nil, timeout: Double = 300) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        p.arguments = executable.hasPrefix("/") ? args : [executable] + args
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        if let cwd { p.currentDirectoryURL = cwd }
        let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("out-\(UUID().uuidString)")
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
        p.standardOutput = try FileHandle(forWritingTo: outURL)
        p.standardError = try FileHandle(forWritingTo: errURL)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning {
            if Date() > deadline { p.terminate(); p.waitUntilExit(); throw Failure("\(executable) \(args) timed out after \(timeout) s") }
            usleep(20_000)
        }
        return Result(status: p.terminationStatus,
                      stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// Starts a process in the background; its stderr goes to a file read by `readSpawned`.
    static func spawn(_ executable: String, _ args: [String], env: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("spawn-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: errURL)
        p.standardOutput = FileHandle.nullDevice
        spawnedLogs.withLock { $0[ObjectIdentifier(p)] = errURL }
        try p.run()
        return p
    }

    static func readSpawned(_ p: Process) -> String {
        guard let url = spawnedLogs.withLock({ $0[ObjectIdentifier(p)] }) else { return "" }
        return (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    }

    static let spawnedLogs = LockedBox<[ObjectIdentifier: URL]>([:])

    /// A TCP port nobody listens on right now (bound, read, released).
    static func freePort() throws -> Int {
        let r = try run(python, ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()"])
        guard let port = Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw Failure("no free port") }
        return port
    }

    static func reindex(_ args: [String], env: [String: String] = [:], timeout: Double = 300) throws -> Result {
        try run(binary, args, env: env, timeout: timeout)
    }

    struct Failure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    /// Waits until `condition` holds, polling; throws after `timeout`.
    static func wait(_ what: String, timeout: Double = 60, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition() {
            if Date() > deadline { throw Failure("timed out waiting for \(what)") }
            usleep(20_000)
        }
    }

    /// Generates a GroupGPT-style primary with the fixture script.
    static func makePrimary(_ path: URL, messages: Int = 1300, knowledge: Int = 75, wal: Bool = false, extra: [String] = []) throws {
        var args = [root.appendingPathComponent("fixtures/make_primary.py").path, "--out", path.path, "--force",
                    "--messages", String(messages), "--knowledge", String(knowledge)] + extra
        if wal { args.append("--wal") }
        let r = try run(python, args)
        guard r.status == 0 else { throw Failure("make_primary failed: \(r.stderr)") }
    }

    static func mutatePrimary(_ path: URL, _ args: [String]) throws -> [String: [String]] {
        let r = try run(python, [root.appendingPathComponent("fixtures/mutate_primary.py").path, "--db", path.path] + args)
        guard r.status == 0, let data = r.stdout.data(using: .utf8),
              let json = try JSONSerialization.jsonObject(with: data) as? [String: [String]] else {
            throw Failure("mutate_primary failed: \(r.stderr)")
        }
        return json
    }

    /// Writes a job file; `model` entries are merged into the default model block.
    /// The default `chunk-tokens: 16384` (tens of thousands of characters) keeps every
    /// row of the GroupGPT fixture one chunk, so the suites about runs,
    /// resume, safety and providers check one item per row; ChunkingTests
    /// and CompatibilityTests run with the real default and several chunks.
    static func writeJob(_ dir: URL, url: String, primary: String = "primary.db", output: String = "out/vectors.db",
                         sources: [(String, String)]? = nil, model: [String: String] = [:], extraTop: String = "",
                         name: String = "job.yml") throws -> URL {
        let srcs = sources ?? [
            ("message", #"SELECT id, content AS text FROM "Message" WHERE "deletedAt" IS NULL"#),
            ("knowledge", #"SELECT id, title || char(10) || body AS text FROM "KnowledgeEntry""#),
        ]
        var m: [String: String] = ["provider": "openai", "url": url, "name": "fixture-embed-384", "dimensions": "384",
                                   "batch-size": "64", "concurrency": "4", "max-retries": "3", "timeout": "30",
                                   "chunk-tokens": "16384"]
        for (k, v) in model { m[k] = v }
        var yaml = "name: e2e\nprimary: \(primary)\noutput: \(output)\n\(extraTop)sources:\n"
        for (n, q) in srcs { yaml += "  - name: \(n)\n    query: '\(q.replacingOccurrences(of: "'", with: "''"))'\n" }
        yaml += "model:\n"
        for (k, v) in m.sorted(by: { $0.key < $1.key }) { yaml += "  \(k): \(v)\n" }
        let url = dir.appendingPathComponent(name)
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static func json(_ text: String) throws -> [String: Any] {
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw Failure("no JSON object in output: \(text)")
        }
        return obj
    }

    static func sha256(_ url: URL) throws -> String {
        let data = try Data(contentsOf: url)
        return Digest.hex(data)
    }

    static func listing(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    /// All items of a vector file: (source, source_id) → (hash, vector).
    static func items(_ path: URL) throws -> [String: (hash: Data, vector: [Float])] {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: path.path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in
            var out: [String: (Data, [Float])] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT source, source_id, content_hash, embedding FROM items") {
                let blob: Data = row[3]
                let v = blob.withUnsafeBytes { raw in (0..<(blob.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) } }
                out["\(row[0] as String)/\(row[1] as String)"] = (row[2], v)
            }
            return out
        }
    }

    static func scalar<T: DatabaseValueConvertible>(_ path: URL, _ sql: String) throws -> T? {
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: path.path, configuration: config)
        defer { try? q.close() }
        return try q.read { db in try T.fetchOne(db, sql: sql) }
    }
}

/// The fixture embedding server (fixtures/embed_server.py) on an ephemeral port.
final class EmbedServer: @unchecked Sendable {
    let process: Process
    let url: String
    let dir: URL

    /// `unix: true` serves HTTP on a Unix socket instead of TCP (`url` is then `unix:/path`).
    init(extra: [String] = [], unix: Bool = false) throws {
        dir = try E2E.tempDir("server")
        let portFile = dir.appendingPathComponent("url")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let listen = unix ? ["--unix", dir.appendingPathComponent("embed.sock").path] : ["--port", "0"]
        // A window large enough for the suites' one-chunk rows (chunk-tokens 16384), and no llama.cpp
        // /props (a plain OpenAI API: /props would cap the window at 512); tests of windows pass their own.
        let window = extra.contains("--window") ? [] : ["--window", "65536", "--hide", "/props"]
        process.arguments = [E2E.python, E2E.root.appendingPathComponent("fixtures/embed_server.py").path,
                             "--port-file", portFile.path, "--quiet"] + listen + window + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let p = process
        try E2E.wait("the embedding server's port file", timeout: 60) {
            guard p.isRunning else { throw E2E.Failure("embed_server.py exited with \(p.terminationStatus)") }
            return FileManager.default.fileExists(atPath: portFile.path)
        }
        url = try String(contentsOf: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit { stop() }

    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(15)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }
        try? FileManager.default.removeItem(at: dir)
    }

    /// A synchronous HTTP call to the server (test control endpoints and reference vectors).
    func call(_ path: String, method: String = "GET", json: Any? = nil) throws -> Any {
        var request = URLRequest(url: URL(string: url + path)!)
        request.httpMethod = method
        request.timeoutInterval = 60
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            box.data = data
            box.error = error
            box.status = (response as? HTTPURLResponse)?.statusCode ?? 0
            done.signal()
        }.resume()
        guard done.wait(timeout: .now() + 90) == .success else { throw E2E.Failure("\(path): no answer") }
        if let error = box.error { throw error }
        guard let data = box.data, !data.isEmpty else { return [:] as [String: Any] }
        return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }

    private final class Box: @unchecked Sendable { var data: Data?; var error: Error?; var status = 0 }

    func stats(texts: Bool = false) throws -> [String: Any] {
        try call(texts ? "/_stats?texts=1" : "/_stats") as? [String: Any] ?? [:]
    }

    func faults(_ f: [String: Any]) throws { _ = try call("/_faults", method: "POST", json: f) }
    func reset() throws { _ = try call("/_reset", method: "POST", json: [:] as [String: Any]) }

    /// The server's raw (unnormalized) vectors for these inputs, as floats.
    func rawVectors(_ inputs: [String]) throws -> [[Float]] {
        var out: [[Float]] = []
        var start = 0
        while start < inputs.count {
            let chunk = Array(inputs[start..<min(inputs.count, start + 64)])
            let answer = try call("/v1/embeddings", method: "POST", json: ["model": "x", "input": chunk, "encoding_format": "float"]) as? [String: Any]
            let data = answer?["data"] as? [[String: Any]] ?? []
            let sorted = data.sorted { ($0["index"] as? Int ?? 0) < ($1["index"] as? Int ?? 0) }
            out += sorted.map { ($0["embedding"] as? [Double] ?? []).map(Float.init) }
            start += 64
        }
        return out
    }
}


final class LockedBox<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}
