import Foundation
import Logging

/// The model as a run or a search talks to it: a client per endpoint for
/// the job's provider in an `EndpointPool`, the batch embedder with its
/// retry and splitting policy, and the counters and batch limit they share.
/// Commands build one of these instead of a whole run.
public struct ModelSession: Sendable {
    public let pool: EndpointPool
    public let embedder: BatchEmbedder
    public let counters: RunCounters
    public let limit: BatchLimit

    /// The client for one-off questions (server limits, window, tokenizer):
    /// the first endpoint listed that is in rotation.
    public var client: any EmbeddingClient { pool.preferredClient }

    /// `batchSize` starts the batch limit (the job's `batch-size` by default).
    public init(model: ModelConfig, environment: [String: String], stop: StopSignal, logger: Logger, batchSize: Int? = nil) {
        let key = model.apiKey(environment: environment)
        counters = RunCounters()
        pool = EndpointPool(model: model, counters: counters, logger: logger) { one in
            switch one.provider {
            case .openai: return OpenAIEmbeddingClient(model: one, apiKey: key)
            case .ollama: return OllamaEmbeddingClient(model: one, apiKey: key)
            case .tei: return TEIEmbeddingClient(model: one, apiKey: key)
            }
        }
        limit = BatchLimit(batchSize ?? model.batchSize)
        embedder = BatchEmbedder(pool: pool, model: model, counters: counters, stop: stop, logger: logger, limit: limit)
    }
}
