import Foundation
import Logging

/// The model as a run or a search talks to it: the client for the job's
/// provider, the batch embedder with its retry and splitting policy, and the
/// counters and batch limit they share. Commands build one of these instead
/// of a whole run.
public struct ModelSession: Sendable {
    public let client: any EmbeddingClient
    public let embedder: BatchEmbedder
    public let counters: RunCounters
    public let limit: BatchLimit

    /// `batchSize` starts the batch limit (the job's `batch-size` by default).
    public init(model: ModelConfig, environment: [String: String], stop: StopSignal, logger: Logger, batchSize: Int? = nil) {
        let key = model.apiKey(environment: environment)
        switch model.provider {
        case .openai: client = OpenAIEmbeddingClient(model: model, apiKey: key)
        case .ollama: client = OllamaEmbeddingClient(model: model, apiKey: key)
        case .tei: client = TEIEmbeddingClient(model: model, apiKey: key)
        }
        counters = RunCounters()
        limit = BatchLimit(batchSize ?? model.batchSize)
        embedder = BatchEmbedder(client: client, model: model, counters: counters, stop: stop, logger: logger, limit: limit)
    }
}
