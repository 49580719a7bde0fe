import Foundation
import Logging

/// Turns rows into checked, normalized vectors whatever the server does:
/// retries with backoff and jitter on connection errors, timeouts, 429 and
/// 5xx (honouring Retry-After); splits batches the server finds too large and
/// remembers the smaller size; bisects a batch rejected for one bad input so
/// the rest is stored and only that row is recorded as failed; splits a
/// chunk the server says is too long in two at its best boundary (nothing is
/// dropped), and records a short input it rejects as a failed row (never
/// shortened: a vector for a text nobody wrote would be published).
public final class BatchEmbedder: Sendable {
    /// The endpoints each attempt goes to; one for `model.url`.
    public let pool: EndpointPool
    private let model: ModelConfig
    private let counters: RunCounters
    private let stop: StopSignal
    private let logger: Logger
    private let limit: BatchLimit
    /// Splits chunks the server finds too long.
    private let splitter: Chunker

    public init(pool: EndpointPool, model: ModelConfig, counters: RunCounters, stop: StopSignal, logger: Logger, limit: BatchLimit,
                splitter: Chunker = Chunker(size: Chunker.minimumSplit, overlap: 0)) {
        self.splitter = splitter
        self.pool = pool
        self.model = model
        self.counters = counters
        self.stop = stop
        self.logger = logger
        self.limit = limit
    }

    /// One server: a pool of one endpoint.
    public convenience init(client: any EmbeddingClient, model: ModelConfig, counters: RunCounters, stop: StopSignal, logger: Logger, limit: BatchLimit,
                            splitter: Chunker = Chunker(size: Chunker.minimumSplit, overlap: 0)) {
        let pool = EndpointPool(members: [EndpointPool.Member(display: Endpoint(model: model, apiKey: nil).display, weight: 1,
                                                              concurrency: model.concurrency, client: client)],
                                model: model, counters: counters, logger: logger)
        self.init(pool: pool, model: model, counters: counters, stop: stop, logger: logger, limit: limit, splitter: splitter)
    }

    /// The first endpoint's client (limits, window, tokenizer).
    public var client: any EmbeddingClient { pool.preferredClient }

    /// Embeds rows; returns stored-ready items and per-row failures. Throws
    /// only for what no retry can fix (server down, wrong dimension).
    public func embed(_ rows: [PendingChunk]) async throws -> (items: [EmbeddedItem], failures: [FailedItem]) {
        let max = limit.current
        if rows.count > max {
            var items: [EmbeddedItem] = [], failures: [FailedItem] = []
            var start = 0
            while start < rows.count {
                let part = Array(rows[start..<min(rows.count, start + max)])
                let r = try await embed(part)
                items += r.items; failures += r.failures
                start += max
            }
            return (items, failures)
        }
        let inputs = rows.map(\.input)
        switch try await send(inputs) {
        case .vectors(let vectors, let url):
            return try check(rows, vectors, from: url)
        case .tooLarge(let message):
            guard rows.count > 1 else {
                // One input alone is too large (413, or over TEI's max_batch_tokens): split it.
                return try await single(rows[0], message: message, tooLong: true)
            }
            let smaller = Swift.max(1, rows.count / 2)
            if limit.shrink(to: smaller) {
                logger.warning("the server rejected a batch as too large; using smaller batches", metadata: ["batch": "\(rows.count)", "now": "\(smaller)", "error": "\(message)"])
            }
            return try await halves(rows)
        case .badInput(let message):
            guard rows.count > 1 else {
                return try await single(rows[0], message: message, tooLong: Self.isTooLong(message))
            }
            return try await halves(rows)
        }
    }

    private func halves(_ rows: [PendingChunk]) async throws -> (items: [EmbeddedItem], failures: [FailedItem]) {
        let mid = rows.count / 2
        let a = try await embed(Array(rows[..<mid]))
        let b = try await embed(Array(rows[mid...]))
        return (a.items + b.items, a.failures + b.failures)
    }

    /// One input the server rejected. A chunk it calls too long is split in
    /// two at the best boundary inside it (again if needed) and the pieces are
    /// embedded; an input below `Chunker.minimumSplit` scalars, or rejected
    /// for another reason, is recorded as a failed row.
    private func single(_ pending: PendingChunk, message: String, tooLong: Bool) async throws -> (items: [EmbeddedItem], failures: [FailedItem]) {
        let text = pending.text
        let whole = Chunk(start: 0, end: text.unicodeScalars.count)
        guard tooLong, pending.source != "_probe", pending.source != "_query", let (a, b) = splitter.split(whole, of: text) else {
            let why = tooLong ? "\(message) (got a \(whole.end)-character input, too short to split)" : message
            logger.warning("the model rejected a row; recorded in failures", metadata: ["source": "\(pending.source)", "id": "\(pending.sourceID)", "error": "\(why)"])
            return ([], [FailedItem(source: pending.source, sourceID: pending.sourceID, error: why)])
        }
        counters.add("split_chunks")
        logger.warning("the server found a chunk too long; split it in two (the chunk size or the window is wrong for this server)",
                       metadata: ["source": "\(pending.source)", "id": "\(pending.sourceID)", "chunk": "\(pending.chunk)", "chars": "\(whole.end)"])
        let first = try await embed([pending.piece(a, prefix: model.prefix)])
        let second = try await embed([pending.piece(b, prefix: model.prefix)])
        guard first.failures.isEmpty, second.failures.isEmpty else {
            return ([], first.failures + second.failures)
        }
        // The first piece keeps the chunk's number; the others get numbers past
        // any real chunk, in span order, until the file is renumbered.
        var pieces = (first.items + second.items).sorted { ($0.spanStart, $0.spanEnd) < ($1.spanStart, $1.spanEnd) }
        for i in pieces.indices {
            pieces[i].chunk = i == 0 ? pending.chunk : PendingChunk.splitBase + pending.chunk * 1000 + i
        }
        return (pieces, [])
    }

    static func isTooLong(_ message: String) -> Bool {
        let m = message.lowercased()
        // llama.cpp: "input is too large to process", "exceed_context_size_error"; OpenAI: "maximum context
        // length"; Ollama: "the input length exceeds the context length"; TEI: "must have less than 512 tokens".
        return ["too large", "too long", "exceed", "maximum context length", "must have less than", "context length",
                "context size", "context_size", "too many tokens"].contains { m.contains($0) }
    }

    private func check(_ rows: [PendingChunk], _ vectors: [[Float]], from url: String) throws -> (items: [EmbeddedItem], failures: [FailedItem]) {
        guard vectors.count == rows.count else {
            throw ReindexError.modelResponse(detail: "asked \(url) for \(rows.count) embeddings (got \(vectors.count)) — the server or a proxy in front of it is misbehaving; check its log, then rerun to resume")
        }
        var items: [EmbeddedItem] = []
        var failures: [FailedItem] = []
        items.reserveCapacity(rows.count)
        for (pending, vector) in zip(rows, vectors) {
            guard vector.count == model.dimensions else {
                throw ReindexError.configuration(key: "model.dimensions", detail: "the job declares \(model.dimensions), but \(model.name) at \(url) returned \(vector.count) dimensions for \(pending.source) id \(pending.sourceID) (got \(vector.count)) — set model.dimensions to \(vector.count), or point model.name/model.url at a model with \(model.dimensions); rerunning alone cannot fix it")
            }
            var v = vector
            do {
                try v.withUnsafeMutableBufferPointer { try VectorNormalizer.normalize($0) }
            } catch let problem as VectorNormalizer.Problem {
                let what = problem == .zero ? "an all-zero vector" : "a vector with NaN or Inf"
                logger.warning("the model returned \(what); row recorded in failures", metadata: ["source": "\(pending.source)", "id": "\(pending.sourceID)"])
                failures.append(FailedItem(source: pending.source, sourceID: pending.sourceID, error: "the model returned \(what)"))
                continue
            }
            let blob = v.withUnsafeBytes { Data($0) }
            items.append(EmbeddedItem(source: pending.source, sourceID: pending.sourceID, chunk: pending.chunk, spanStart: pending.start,
                                      spanEnd: pending.end, rowHash: pending.rowHash, hash: pending.hash, embedding: blob))
        }
        return (items, failures)
    }

    /// What one logical request came to, after retries: vectors, or the
    /// server's verdict on the inputs.
    enum Answer {
        /// The vectors and the endpoint (display URL) that answered.
        case vectors([[Float]], from: String)
        case tooLarge(String)
        case badInput(String)
    }

    /// One logical request with retries. Each attempt goes to the endpoint
    /// the pool picks; an attempt whose endpoint is taken out (or was out)
    /// is sent to another at once without spending a retry. Gives
    /// up with `.modelUnavailable` after `max-retries` retries, or when the
    /// pool has no endpoint left.
    func send(_ inputs: [String]) async throws -> Answer {
        var attempt = 0
        var lastProblem = ""
        var lastTooLarge = false
        var url = pool.members[0].display
        while true {
            try Task.checkCancellation()
            var retryAfter: String?
            let lease = try await pool.acquire(inputs: inputs.count)
            url = lease.display
            counters.add("requests")
            counters.add("inputs_sent", inputs.count)
            let result: Attempt
            do {
                result = try await self.attempt(inputs, on: lease)
            } catch {
                // The endpoint answered, and what it said stops the run (401, 404, an unreadable answer).
                pool.release(lease, .answered)
                throw error
            }
            switch result {
            case .done(let answer):
                pool.release(lease, .answered)
                return answer
            case .failed(let outcome, let problem, let after, let tooLarge):
                lastProblem = problem
                retryAfter = after
                lastTooLarge = tooLarge
                if pool.release(lease, outcome) {
                    // That endpoint is out of rotation: another one gets the request at once, no retry spent.
                    counters.add("retries")
                    logger.notice("sending a model request to another endpoint", metadata: ["from": "\(url)", "error": "\(problem)"])
                    continue
                }
            }
            guard attempt < model.maxRetries else {
                if lastTooLarge {
                    throw ReindexError.modelUnavailable(url: url, detail: "gave up after \(attempt + 1) attempts: \(lastProblem); committed work is kept, rerun the same command to resume")
                }
                throw ReindexError.modelUnavailable(url: url, detail: "gave up after \(attempt + 1) attempts (got \(lastProblem)) — check that the server is running and reachable; committed work is kept, rerun the same command to resume")
            }
            attempt += 1
            counters.add("retries")
            let delay = Self.backoff(attempt: attempt, retryAfter: retryAfter)
            logger.notice("retrying a model request", metadata: ["attempt": "\(attempt)", "delay_s": "\(String(format: "%.2f", delay))", "error": "\(lastProblem)"])
            try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
        }
    }

    /// What one attempt came to.
    private enum Attempt {
        /// Vectors, or the server's verdict on the inputs.
        case done(Answer)
        /// Worth retrying: no answer, a 5xx, 408, 425 or 429.
        case failed(EndpointHealth.Outcome, problem: String, retryAfter: String?, tooLarge: Bool)
    }

    /// One request to the lease's endpoint. Throws what no retry can fix.
    private func attempt(_ inputs: [String], on lease: EndpointPool.Lease) async throws -> Attempt {
        let reply: EmbeddingReply
        do {
            reply = try await lease.client.embed(inputs)
        } catch let error as TransportError {
            // An oversized answer is a server failure like a dropped connection, retried alike;
            // its message already says what to do.
            let outcome: EndpointHealth.Outcome
            switch error.kind {
            case .timeout: outcome = .timeout(error.message)
            case .tooLarge: outcome = .serverError(error.message)
            case .connect, .dropped, .other: outcome = .connection(error.message)
            }
            return .failed(outcome, problem: error.message, retryAfter: nil, tooLarge: error.kind == .tooLarge)
        }
        switch reply {
        case .vectors(let v):
            return .done(.vectors(v, from: lease.display))
        case .rejected(let status, let message, let after):
            let problem = "HTTP \(status): \(message)"
            switch status {
            case 500 where Self.isTooLong(message):
                // llama.cpp answers 500 when one input outgrows its batch: an input problem, not an outage.
                return .done(.badInput(message))
            case 408, 500...599:
                return .failed(.serverError(problem), problem: problem, retryAfter: after, tooLarge: false)
            case 425, 429:
                return .failed(.throttled(problem), problem: problem, retryAfter: after, tooLarge: false)
            default:
                return .done(try Self.verdict(status: status, message: message, url: lease.display))
            }
        }
    }

    /// What a 4xx answer (other than 408, 425, 429) means for the request.
    private static func verdict(status: Int, message: String, url: String) throws -> Answer {
        switch status {
        case 413:
            return .tooLarge(message)
        case 422 where message.lowercased().contains("batch size") || message.lowercased().contains("batch_size"):
            return .tooLarge(message)
        case 400, 422:
            return .badInput(message)
        case 401, 403:
            throw ReindexError.modelUnavailable(url: url, detail: "authentication failed (got HTTP \(status): \(message)) — check the key in the environment variable named by model.api-key-env; committed work is kept, rerun to resume")
        case 404:
            throw ReindexError.modelUnavailable(url: url, detail: "not found (got HTTP 404: \(message)) — check model.url (or model.endpoints), model.provider and model.name in the job file")
        default:
            throw ReindexError.modelUnavailable(url: url, detail: "unexpected answer (got HTTP \(status): \(message)) — check model.url (or model.endpoints) and model.provider; committed work is kept, rerun to resume")
        }
    }

    /// Exponential backoff with full jitter (0.25 s × 2^n, capped at 30 s);
    /// a server's Retry-After (seconds or HTTP date) wins, capped at 300 s.
    static func backoff(attempt: Int, retryAfter: String?) -> Double {
        if let retryAfter {
            if let seconds = Double(retryAfter.trimmingCharacters(in: .whitespaces)) { return min(300, max(0, seconds)) }
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            if let date = f.date(from: retryAfter) { return min(300, max(0, date.timeIntervalSinceNow)) }
        }
        let cap = min(30, 0.25 * pow(2, Double(attempt - 1)))
        return Double.random(in: (cap / 2)...cap)
    }
}
