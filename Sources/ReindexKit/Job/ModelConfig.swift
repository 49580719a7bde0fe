import Foundation
import Yams

/// The `model:` block of a job file: which server, which model, and how hard
/// to push it. Defaults suit a local server on the same host.
public struct ModelConfig: Sendable, Equatable {
    public enum Provider: String, Sendable, Equatable, CaseIterable { case openai, ollama, tei }

    public var provider: Provider
    /// The one-endpoint form; with `endpoints`, the first endpoint's URL.
    public var url: String
    /// `model.endpoints`: several servers of the same model. Empty
    /// for the one-endpoint form `url`; `fleet` gives the list either way.
    public var endpoints: [ModelEndpoint] = []
    public var name: String
    public var dimensions: Int
    public var apiKeyEnv: String?
    public var batchSize: Int = 64
    public var concurrency: Int = 4
    /// Upper bound of estimated tokens (characters / 4) in one request.
    public var maxBatchTokens: Int = 16_384
    public var maxRetries: Int = 6
    /// A cap on a whole row against runaway rows, in Unicode scalars; past it
    /// the row is cut (counted as truncated, with a warning naming it).
    public var maxInputChars: Int = 1_000_000
    /// The chunk size in tokens: a retrieval choice (passages of a few hundred
    /// characters retrieve better than whole windows), capped by the model's window.
    public var chunkTokens: Int = 128
    /// Tokens each chunk repeats from the previous one; nil: 15% of `chunkTokens`.
    public var chunkOverlap: Int?
    /// Seconds for a whole request (connect + send + answer).
    public var timeout: Double = 120
    public var connectTimeout: Double = 10
    /// Prepended to every stored input (e5's `passage: `, nomic's `search_document: `).
    public var prefix: String = ""
    /// Prepended to search queries.
    public var queryPrefix: String = ""
    /// Send the OpenAI `dimensions` parameter (Matryoshka models).
    public var dimensionsParam: Bool = false
    /// Ollama/TEI `truncate` flag; nil leaves the server's default.
    public var truncate: Bool?
    /// Ollama `keep_alive`.
    public var keepAlive: String?
    public var server: ManagedServerConfig?
    // bounded answers: `model.max-response-bytes`, nil = `responseLimit`'s estimate.
    public var maxResponseBytes: Int?

    static let keys: Set<String> = [
        "provider", "url", "name", "dimensions", "api-key-env", "batch-size", "concurrency",
        "max-batch-tokens", "max-retries", "max-input-chars", "timeout", "connect-timeout",
        "prefix", "query-prefix", "dimensions-param", "truncate", "keep-alive", "server", "chunk-tokens", "chunk-overlap",
        "max-response-bytes", "endpoints",
    ]

    static func parse(_ node: Node, reader: YAMLReader, base: String) throws -> ModelConfig {
        let map = try reader.mapping(node, key: "model", allowed: keys)
        let p = "model"
        let providerText = try reader.requiredString(map, "provider", prefix: p)
        guard let provider = Provider(rawValue: providerText) else {
            throw reader.fail("model.provider", "expected one of openai, ollama, tei (got \"\(providerText)\")")
        }
        let endpoints = try ModelEndpoint.parseList(map, reader: reader)
        let url: String
        switch (map["url"], endpoints) {
        case (_?, _?):
            throw reader.fail("model.endpoints", "expected either model.url (one server) or model.endpoints (several), not both (got both) — keep one of the two")
        case (nil, let list?):
            url = list[0].url
        case (nil, nil):
            throw reader.fail("model.url", "missing; expected the model server's base URL (or model.endpoints, a list of several servers of the same model)")
        case (_?, nil):
            url = try reader.requiredString(map, "url", prefix: p)
            try ModelEndpoint.checkURL(url, key: "model.url", reader: reader)
        }
        let name = try reader.requiredString(map, "name", prefix: p)
        guard let dimensions = try reader.optionalInt(map, "dimensions", prefix: p, range: 1...65_536) else {
            throw reader.fail("model.dimensions", "missing; expected the model's vector dimension, e.g. 384")
        }
        var model = ModelConfig(provider: provider, url: url, name: name, dimensions: dimensions)
        model.endpoints = endpoints ?? []
        if let env = try reader.optionalString(map, "api-key-env", prefix: p) {
            guard env.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                throw reader.fail("model.api-key-env", "expected the NAME of an environment variable, not the key itself")
            }
            model.apiKeyEnv = env
        }
        model.batchSize = try reader.optionalInt(map, "batch-size", prefix: p, range: 1...4096) ?? model.batchSize
        model.concurrency = try reader.optionalInt(map, "concurrency", prefix: p, range: 1...64) ?? model.concurrency
        model.maxBatchTokens = try reader.optionalInt(map, "max-batch-tokens", prefix: p, range: 1...10_000_000) ?? model.maxBatchTokens
        model.maxRetries = try reader.optionalInt(map, "max-retries", prefix: p, range: 0...100) ?? model.maxRetries
        model.maxInputChars = try reader.optionalInt(map, "max-input-chars", prefix: p, range: 1...10_000_000) ?? model.maxInputChars
        model.chunkTokens = try reader.optionalInt(map, "chunk-tokens", prefix: p, range: 16...100_000) ?? model.chunkTokens
        model.chunkOverlap = try reader.optionalInt(map, "chunk-overlap", prefix: p, range: 0...(model.chunkTokens / 2))
        model.timeout = try reader.optionalDouble(map, "timeout", prefix: p, range: 0.1...86_400) ?? model.timeout
        model.connectTimeout = try reader.optionalDouble(map, "connect-timeout", prefix: p, range: 0.1...3_600) ?? model.connectTimeout
        model.prefix = try reader.optionalString(map, "prefix", prefix: p) ?? ""
        model.queryPrefix = try reader.optionalString(map, "query-prefix", prefix: p) ?? ""
        model.dimensionsParam = try reader.optionalBool(map, "dimensions-param", prefix: p) ?? false
        model.truncate = try reader.optionalBool(map, "truncate", prefix: p)
        model.keepAlive = try reader.optionalString(map, "keep-alive", prefix: p)
        // the largest answer an embedding request may get.
        model.maxResponseBytes = try reader.optionalInt(map, "max-response-bytes", prefix: p, range: 1_024...(1 << 40))
        if let serverNode = map["server"] {
            model.server = try ManagedServerConfig.parse(serverNode, reader: reader, base: base)
        }
        return model
    }

    /// The API key, read from the environment at run time so it never sits in a file or argv.
    public func apiKey(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let env = apiKeyEnv, let key = environment[env], !key.isEmpty else { return nil }
        return key
    }
}

// MARK: - Several endpoints

/// One entry of `model.endpoints`: a base URL, its share of the work
/// (`weight`) and its requests in flight (`concurrency`, default
/// `model.concurrency`). One provider and one model for all.
public struct ModelEndpoint: Sendable, Equatable {
    public var url: String
    public var weight: Double = 1
    public var concurrency: Int?

    public init(url: String, weight: Double = 1, concurrency: Int? = nil) {
        self.url = url
        self.weight = weight
        self.concurrency = concurrency
    }

    static let keys: Set<String> = ["url", "weight", "concurrency"]

    static func checkURL(_ url: String, key: String, reader: YAMLReader) throws {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") || url.hasPrefix("unix:") else {
            throw reader.fail(key, "expected an http://, https:// or unix:/path URL (got \"\(HTTPRequest.redacted(url))\")")
        }
    }

    /// `model.endpoints`, nil when the key is absent. Each entry is a URL or
    /// a mapping `{url, weight, concurrency}`; URLs are unique.
    static func parseList(_ map: Node.Mapping, reader: YAMLReader) throws -> [ModelEndpoint]? {
        guard let node = map["endpoints"] else { return nil }
        guard let list = node.sequence, !list.isEmpty else {
            throw reader.fail("model.endpoints", "expected a non-empty list of base URLs, each a string or a mapping with url, weight, concurrency (got \(reader.describe(node)))")
        }
        var out: [ModelEndpoint] = []
        for (i, item) in list.enumerated() {
            let key = "model.endpoints[\(i)]"
            var endpoint: ModelEndpoint
            switch item {
            case .scalar(let s):
                endpoint = ModelEndpoint(url: try reader.expand(s.string, key: key))
            case .mapping:
                let entry = try reader.mapping(item, key: key, allowed: keys)
                endpoint = ModelEndpoint(url: try reader.requiredString(entry, "url", prefix: key))
                endpoint.weight = try reader.optionalDouble(entry, "weight", prefix: key, range: 0.001...1_000) ?? 1
                endpoint.concurrency = try reader.optionalInt(entry, "concurrency", prefix: key, range: 1...64)
            default:
                throw reader.fail(key, "expected a URL or a mapping with url, weight, concurrency (got \(reader.describe(item)))")
            }
            try checkURL(endpoint.url, key: key, reader: reader)
            if let first = out.firstIndex(where: { Self.same($0.url, endpoint.url) }) {
                throw reader.fail(key, "the same server twice (got \"\(HTTPRequest.redacted(endpoint.url))\", already model.endpoints[\(first)]) — list each server once; use weight to give it a larger share")
            }
            out.append(endpoint)
        }
        return out
    }

    static func same(_ a: String, _ b: String) -> Bool {
        func norm(_ s: String) -> String { var t = s; while t.hasSuffix("/") { t.removeLast() }; return t }
        return norm(a) == norm(b)
    }
}

extension ModelConfig {
    /// The endpoints a run uses: `endpoints`, or the one `url`.
    public var fleet: [ModelEndpoint] { endpoints.isEmpty ? [ModelEndpoint(url: url)] : endpoints }

    /// Requests in flight to one endpoint: its own `concurrency`, else `model.concurrency`.
    public func concurrency(of endpoint: ModelEndpoint) -> Int { endpoint.concurrency ?? concurrency }

    /// Requests in flight across the fleet: the sum of every endpoint's.
    public var totalConcurrency: Int { fleet.reduce(0) { $0 + concurrency(of: $1) } }

    /// This configuration for one endpoint alone (what its client is built from).
    public func serving(_ endpoint: ModelEndpoint) -> ModelConfig {
        var one = self
        one.url = endpoint.url
        one.endpoints = []
        one.concurrency = concurrency(of: endpoint)
        return one
    }

    /// `--model-url`: one endpoint, replacing `url` or `endpoints`.
    public mutating func override(url: String) {
        self.url = url
        endpoints = []
    }
}

// MARK: - Bounded answers (DESIGN.md invariant 10)

extension ModelConfig {
    /// The largest body one embedding request of this job can legitimately
    /// get: every input of the largest batch (at least 16, for the drift
    /// probes) × `dimensions` numbers × 32 bytes (the longest JSON number,
    /// `-1.2345678901234567e-308`, with a comma and pretty-printing room) plus
    /// 1 KiB per input and 1 MiB of slack for the envelope. About 1.9 MB for
    /// 64 × 384. `model.max-response-bytes` replaces the estimate.
    public var responseLimit: Int {
        if let maxResponseBytes { return maxResponseBytes }
        let inputs = Swift.max(batchSize, 16)
        return inputs * (dimensions * 32 + 1_024) + (1 << 20)
    }
}
