import Foundation
import Testing
@testable import ReindexKit

/// Each client's `window()` and `countTokens` against fixtures/embed_server.py
/// (llama.cpp, TEI and Ollama shapes), and the OpenAI client against the real
/// llama-server with all-MiniLM-L6-v2 (fixtures/model; fails without it unless
/// REINDEX_SKIP_REAL_MODEL=1, like the end-to-end real-model test).
@Suite(.serialized) struct ModelWindowEndpointTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var python: String { ProcessInfo.processInfo.environment["PYTHON"] ?? "python3" }

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Polls `condition` every 20 ms until it holds; fails after `timeout` seconds.
    static func wait(_ what: String, timeout: Double, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try await !condition() {
            if Date() > deadline { throw Failure(description: "timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// fixtures/embed_server.py on an ephemeral port, found through its --port-file.
    final class FixtureServer {
        let process = Process()
        let dir: URL
        let url: String

        init() async throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("reindex-window-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let portFile = dir.appendingPathComponent("url")
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [ModelWindowEndpointTests.python, ModelWindowEndpointTests.root.appendingPathComponent("fixtures/embed_server.py").path,
                                 "--port", "0", "--port-file", portFile.path, "--quiet"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let p = process
            try await ModelWindowEndpointTests.wait("the fixture server's port file", timeout: 60) {
                guard p.isRunning else { throw Failure(description: "embed_server.py exited with \(p.terminationStatus)") }
                return FileManager.default.fileExists(atPath: portFile.path)
            }
            url = try String(contentsOf: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func stop() {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
            try? FileManager.default.removeItem(at: dir)
        }

        deinit { stop() }

        func faults(_ json: String) async throws {
            let response = try await HTTPTransport.shared.perform(HTTPRequest(url: url + "/_faults", method: "POST",
                                                                              headers: ["Content-Type: application/json"], body: Data(json.utf8)))
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
        }

        func requests(to path: String) async throws -> Int {
            let response = try await HTTPTransport.shared.perform(HTTPRequest(url: url + "/_stats"))
            let stats = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            let byPath = stats?["by_path"] as? [String: [String: Int]]
            return byPath?[path]?["requests"] ?? 0
        }

        func model(_ provider: ModelConfig.Provider, url: String? = nil) -> ModelConfig {
            ModelConfig(provider: provider, url: url ?? self.url, name: "fixture", dimensions: 384)
        }
    }

    @Test func openAIClientReadsLlamaPropsAndTokenize() async throws {
        let server = try await FixtureServer()
        defer { server.stop() }
        let client = OpenAIEmbeddingClient(model: server.model(.openai), apiKey: nil)
        #expect(try await client.window() == ModelWindow(tokens: 512, source: "llama.cpp /props n_ctx"))
        #expect(try await client.countTokens("Hello, world!") == 6, "4 pseudo-tokens + [CLS] [SEP]")
        try await server.faults(#"{"window": 256}"#)
        #expect(try await client.window()?.tokens == 256)
        // A base URL ending in /v1 still finds /props and /tokenize at the root.
        let v1 = OpenAIEmbeddingClient(model: server.model(.openai, url: server.url + "/v1/"), apiKey: nil)
        #expect(try await v1.window()?.tokens == 256)
        #expect(try await v1.countTokens("a b") == 4)
    }

    @Test func aPlainOpenAIServerTellsNothingAndIsAskedOnce() async throws {
        let server = try await FixtureServer()
        defer { server.stop() }
        try await server.faults(#"{"hide": ["/props", "/tokenize"]}"#)
        let client = OpenAIEmbeddingClient(model: server.model(.openai), apiKey: nil)
        #expect(try await client.window() == nil)
        #expect(try await client.countTokens("one") == nil)
        #expect(try await client.countTokens("two") == nil)
        #expect(try await server.requests(to: "/tokenize") == 1, "a missing /tokenize is not asked again")
        let budget = try await TokenBudget.measure(client: client, chunkTokens: 128, overlapTokens: 0, prefix: "")
        #expect(budget.ratioSource == .estimated && budget.window == nil && budget.chunkScalars == 384)
        #expect(try await server.requests(to: "/tokenize") == 1)
    }

    @Test func teiClientReadsInfoAndTokenize() async throws {
        let server = try await FixtureServer()
        defer { server.stop() }
        let client = TEIEmbeddingClient(model: server.model(.tei), apiKey: nil)
        #expect(try await client.window() == ModelWindow(tokens: 512, source: "TEI /info max_input_length"))
        #expect(try await client.countTokens("Hello, world!") == 6)
        try await server.faults(#"{"window": 256}"#)
        let budget = try await TokenBudget.measure(client: client, chunkTokens: 1000, overlapTokens: 0, prefix: "passage: ")
        #expect(budget.reservedTokens == 4, "[CLS] [SEP] + the pseudo-tokens of \"passage: \"")
        #expect(budget.tokensPerChunk == 252 && budget.isCapped)
        #expect(budget.ratioSource == .measured(samples: TokenBudget.samples.count))
    }

    @Test func ollamaClientReadsShowAndCannotTokenize() async throws {
        let server = try await FixtureServer()
        defer { server.stop() }
        let client = OllamaEmbeddingClient(model: server.model(.ollama), apiKey: nil)
        #expect(try await client.window() == ModelWindow(tokens: 512, source: "Ollama /api/show bert.context_length"))
        #expect(try await client.countTokens("Hello") == nil)
        try await server.faults(#"{"ollama_num_ctx": 128}"#)
        #expect(try await client.window() == ModelWindow(tokens: 128, source: "Ollama /api/show num_ctx (bert.context_length 512)"))
    }

    @Test func noAnswerAtAllIsATransportError() async throws {
        let server = try await FixtureServer()
        let url = server.url
        server.stop()
        let client = TEIEmbeddingClient(model: ModelConfig(provider: .tei, url: url, name: "fixture", dimensions: 384), apiKey: nil)
        await #expect(throws: TransportError.self) { _ = try await client.window() }
    }

    // MARK: The real llama-server

    static var skipRealModel: Bool { ProcessInfo.processInfo.environment["REINDEX_SKIP_REAL_MODEL"] == "1" }

    @Test(.disabled(if: ModelWindowEndpointTests.skipRealModel)) func theRealLlamaServerReportsItsWindowAndTokenizes() async throws {
        let home = ProcessInfo.processInfo.environment["REINDEX_MODEL_HOME"].map { URL(fileURLWithPath: $0) } ?? Self.root.appendingPathComponent("var")
        for f in ["llama/bin/llama-server", "model/all-minilm-l6-v2.gguf"] where !FileManager.default.fileExists(atPath: home.appendingPathComponent(f).path) {
            throw Failure(description: "\(home.appendingPathComponent(f).path) is missing: run `make setup-model`, set REINDEX_MODEL_HOME, or set REINDEX_SKIP_REAL_MODEL=1")
        }
        let port = try Self.freePort()
        let server = Process()
        server.executableURL = Self.root.appendingPathComponent("fixtures/model/run_server.sh")
        server.arguments = [String(port)]
        var env = ProcessInfo.processInfo.environment
        env["REINDEX_MODEL_HOME"] = home.path
        server.environment = env
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // SIGKILL: a child of a Swift concurrency thread may inherit a mask that blocks SIGTERM (as RealModelTests notes).
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let url = "http://127.0.0.1:\(port)"
        try await Self.wait("llama-server's /health", timeout: 120) {
            guard server.isRunning else { throw Failure(description: "run_server.sh exited with \(server.terminationStatus)") }
            return (try? await HTTPTransport.shared.perform(HTTPRequest(url: url + "/health", timeout: 5, connectTimeout: 1)).status) == 200
        }
        let client = OpenAIEmbeddingClient(model: ModelConfig(provider: .openai, url: url, name: "all-minilm-l6-v2", dimensions: 384), apiKey: nil)
        // run_server.sh: -c 2048 -np 4 → one slot holds 512, the model's positions.
        #expect(try await client.window() == ModelWindow(tokens: 512, source: "llama.cpp /props n_ctx"))
        // [CLS] the quick brown fox jumps over the lazy dog . [SEP]
        #expect(try await client.countTokens("The quick brown fox jumps over the lazy dog.") == 12)
        let budget = try await TokenBudget.measure(client: client, chunkTokens: 128, overlapTokens: 16, prefix: "")
        #expect(budget.reservedTokens == 2)
        #expect(budget.charactersPerToken == 3.10, "704 scalars / 204 tokens × 0.9")
        #expect(budget.describe() == "chunk 128 tokens ≈ 396 characters, overlap 16 tokens ≈ 49 characters (3.10 characters a token, measured with the server's tokenizer); window 512 tokens from llama.cpp /props n_ctx, 2 of them for special tokens and the prefix")
    }

    /// A TCP port nobody listens on right now (bound, read, released).
    static func freePort() throws -> Int {
        let p = Process()
        let pipe = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1]); s.close()"]
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard let port = Int(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw Failure(description: "no free port")
        }
        return port
    }
}
