import Foundation
import Logging

/// The embed stage: a producer pages pending rows out of the staging table,
/// cuts batches by count and by estimated tokens, and keeps at most
/// `concurrency` batches in flight in a task group (one finishes, one
/// starts). Each batch is embedded, then committed by the single writer in
/// one transaction — a checkpoint. Memory holds one page of rows plus the
/// in-flight batches, whatever the corpus size.
struct EmbeddingPipeline {
    let store: VectorStore
    let embedder: BatchEmbedder
    let model: ModelConfig
    let limit: BatchLimit
    let tokenLimit: Int
    let stop: StopSignal
    let progress: ProgressReporter
    let grace: Duration
    let logger: Logger

    struct Outcome {
        var embedded = 0
        var failures: [FailedItem] = []
        var stoppedEarly = false
    }

    private enum Child: Sendable {
        case done(embedded: Int, failures: [FailedItem])
        case graceExpired
    }

    func run() async throws -> Outcome {
        var outcome = Outcome()
        let concurrency = model.concurrency
        try await withThrowingTaskGroup(of: Child.self) { group in
            var inFlight = 0
            var buffer: [PendingRow] = []
            var position = 0
            var cursor: Int64 = 0
            var exhausted = false

            func nextBatch() async throws -> [PendingRow]? {
                if position >= buffer.count {
                    guard !exhausted else { return nil }
                    let page = try await store.pendingRows(after: cursor, limit: 2048)
                    if page.count < 2048 { exhausted = true }
                    guard let last = page.last else { return nil }
                    cursor = last.rowid
                    buffer = page.map { PendingRow(source: $0.source, row: $0.row) }
                    position = 0
                }
                let maxCount = limit.current
                var batch: [PendingRow] = []
                var tokens = 0
                while position < buffer.count, batch.count < maxCount {
                    let t = buffer[position].row.input.utf8.count / 4 + 1
                    if !batch.isEmpty && tokens + t > tokenLimit { break }
                    tokens += t
                    batch.append(buffer[position])
                    position += 1
                }
                return batch
            }

            func collect(_ child: Child) {
                if case .done(let n, let failures) = child {
                    outcome.embedded += n
                    outcome.failures += failures
                    progress.advance(n + failures.count)
                }
            }

            while !stop.isRequested, let batch = try await nextBatch() {
                if inFlight >= concurrency {
                    if let child = try await group.next() { collect(child) }
                    inFlight -= 1
                    if stop.isRequested { break }
                }
                let embedder = self.embedder, store = self.store
                group.addTask {
                    let result = try await embedder.embed(batch)
                    try await store.write(items: result.items, failures: result.failures)
                    CrashPoint.batchCommitted()
                    return .done(embedded: result.items.count, failures: result.failures)
                }
                inFlight += 1
            }

            if stop.isRequested {
                outcome.stoppedEarly = true
                if inFlight > 0 {
                    logger.notice("stopping: waiting for in-flight batches", metadata: ["batches": "\(inFlight)", "grace_s": "\(grace.components.seconds)"])
                    let grace = self.grace
                    group.addTask {
                        try await Task.sleep(for: grace)
                        return .graceExpired
                    }
                    while inFlight > 0 {
                        do {
                            guard let child = try await group.next() else { break }
                            if case .graceExpired = child { group.cancelAll(); continue }
                            collect(child)
                            inFlight -= 1
                        } catch {
                            // A batch cut short by the stop: not committed, resumed next run.
                            inFlight -= 1
                        }
                    }
                }
                group.cancelAll()
                while (try? await group.next()) != nil {}
                return
            }
            while let child = try await group.next() { collect(child) }
        }
        return outcome
    }
}
