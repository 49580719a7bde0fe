import Foundation
import GRDB
import Logging
import Testing
@testable import ReindexKit

/// The work file's set-based SQL on small files: the diff shared by plan and
/// verify, reconcile and reuse after an interruption, checkpoint identity.
struct WorkFileTests {
    let dir: URL
    let model = ModelConfig(provider: .openai, url: "http://127.0.0.1:1", name: "m", dimensions: 2)

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("workfile-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func row(_ id: String, _ text: String) -> ScannedRow {
        ScannedRow(sourceID: id, hash: SourceScanner.hash(text), input: text, truncated: false)
    }

    /// A one-chunk row's item (its chunk is the whole text: the same hash).
    func item(_ source: String, _ id: String, _ text: String, _ x: Float = 1, chunk: Int = 0, rowText: String? = nil) -> EmbeddedItem {
        let v: [Float] = [x / (x * x + 1).squareRoot(), 1 / (x * x + 1).squareRoot()]
        return EmbeddedItem(source: source, sourceID: id, chunk: chunk, spanStart: 0, spanEnd: text.unicodeScalars.count,
                            rowHash: SourceScanner.hash(rowText ?? text), hash: SourceScanner.hash(text), embedding: v.withUnsafeBytes { Data($0) })
    }

    /// A published-looking live file with these items and failures.
    func live(_ items: [EmbeddedItem], failures: [FailedItem] = []) async throws -> String {
        let path = dir.appendingPathComponent("live-\(UUID().uuidString.prefix(6)).db").path
        let w = try WorkFile(path: path, dimensions: 2, wal: false)
        try await w.write(items: items, failures: failures)
        var meta = VectorFileMeta()
        meta[.format] = VectorFileFormat.version
        meta[.model] = "m"
        meta[.dimensions] = "2"
        meta[.chunking] = ChunkSettings(model: model).json
        try w.finalize(meta: meta, run: RunRecord(runID: "r", mode: "full", startedAt: 0, finishedAt: 0, scanned: 0, skipped: 0,
                                                   embedded: 0, reused: 0, removed: 0, failed: 0, requests: 0, durationSeconds: 0))
        return path
    }

    @Test func theDiffSortsRowsIntoUnchangedNewFailedChangedRemoved() async throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let livePath = try await live([item("m", "1", "one"), item("m", "2", "two"), item("m", "3", "three"), item("k", "9", "nine")],
                                      failures: [FailedItem(source: "m", sourceID: "5", error: "bad")])
        let work = try WorkFile(path: dir.appendingPathComponent("w.db").path, dimensions: 2, wal: true)
        defer { work.close() }
        try await work.stage(source: "m", rows: [row("1", "one"), row("2", "TWO"), row("4", "four"), row("5", "five")])
        #expect(work.attachLive(path: livePath, model: model).meta?[.format] == VectorFileFormat.version)
        let diffs = try work.diff(sources: ["m"], liveAttached: true, sample: 10)
        #expect(diffs.map(\.name) == ["m", "k"], "job sources first, then sources only the file has")
        let m = diffs[0]
        #expect(m.staged == 4 && m.unchanged == 1)
        #expect(m.new.ids == ["4"] && m.failed.ids == ["5"] && m.changed.ids == ["2"] && m.removed.ids == ["3"])
        #expect(m.charsToEmbed == "TWO".count + "four".count + "five".count)
        #expect(diffs[1].removed.count == 1 && diffs[1].staged == 0)
        // The plan's vocabulary: failed rows are added again.
        let plan = SourcePlan(diff: m, scan: nil, sample: 10)
        #expect(plan.added == 2 && plan.samples["added"] == ["4", "5"] && plan.changed == 1 && plan.removed == 1)
        // verify's vocabulary: missing excludes the recorded failure.
        let check = VerifyReport.SourceCheck(m)
        #expect(check.missing.ids == ["4"] && check.failed.ids == ["5"] && check.stale.ids == ["2"] && check.extra.ids == ["3"])
    }

    @Test func anIncompatibleLiveFileIsNeverAttached() async throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let livePath = try await live([item("m", "1", "one")])
        let work = try WorkFile(path: dir.appendingPathComponent("w.db").path, dimensions: 2, wal: true)
        defer { work.close() }
        var other = model
        other.name = "another"
        #expect(work.attachLive(path: livePath, model: other).reason == "built with model m, the job uses another")
        #expect(work.attachLive(path: dir.appendingPathComponent("none.db").path, model: model).reason == "missing")
        let nothing = try work.diff(sources: ["m"], liveAttached: false, sample: 5)
        #expect(nothing.map(\.name) == ["m"] && nothing[0].staged == 0 && nothing[0].toEmbed == 0)
    }

    @Test func reconcileDropsStaleWorkAndReuseCopiesUnchangedRowsAndChunks() async throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let livePath = try await live([item("m", "1", "one", 2), item("m", "2", "two", 3), item("m", "3", "three", 4)])
        let workPath = dir.appendingPathComponent("w.db").path
        do {
            // An interrupted attempt embedded row 4 and an old version of row 2.
            let work = try WorkFile(path: workPath, dimensions: 2, wal: true)
            try await work.write(items: [item("m", "4", "four"), item("m", "2", "old two")], failures: [])
            work.close()
        }
        let work = try WorkFile(path: workPath, dimensions: 2, wal: true)
        defer { work.close() }
        try await work.stage(source: "m", rows: [row("1", "one"), row("2", "TWO"), row("4", "four")])
        let status = work.attachLive(path: livePath, model: model)
        let chunking = try #require(ChunkSettings.decode(status.meta?[.chunking]))
        #expect(try work.reconcile(dropCopied: false) == ["m": 1], "row 4 is carried over, the stale row 2 dropped")
        #expect(try work.reuseWholeRows(liveFormat: VectorFileFormat.version, chunking: chunking, prefixLength: 0) == ["m": 1],
                "only row 1 is unchanged in the live file")
        // Short rows are staged as one chunk each in SQL; only longer ones go through the chunker.
        try work.stageSingleChunkRows(liveFormat: VectorFileFormat.version, chunking: chunking, prefixLength: 0)
        #expect(try work.rowsToChunk(after: 0, limit: 10, liveFormat: VectorFileFormat.version, chunking: chunking, prefixLength: 0).isEmpty)
        _ = try work.reuseChunks()
        let pending = try await work.pendingChunks(after: 0, limit: 10, prefixLength: 0)
        #expect(pending.map(\.chunk.sourceID) == ["2"], "row 4 was embedded before the interruption")
        // A full run drops what an incremental attempt copied.
        #expect(try work.reconcile(dropCopied: true) == ["m": 1])
        #expect(try work.reusedBySource().isEmpty)
    }

    @Test func anEditReembedsOnlyTheChunksItChanged() async throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let chunker = Chunker(size: 80, overlap: 0)
        let paragraphs = (1...6).map { "Paragraph \($0) says something different from the others, at some length." }
        let before = paragraphs.joined(separator: "\n\n")
        let after = paragraphs.enumerated().map { $0.offset == 4 ? $0.element.replacingOccurrences(of: "different", with: "DIFFERENT") : $0.element }
            .joined(separator: "\n\n")
        let oldChunks = ReuseStage.chunks(of: row("d", before), source: "m", chunker: chunker, prefix: "", prefixLength: 0)
        #expect(oldChunks.count >= 4)
        let liveItems = oldChunks.enumerated().map { i, c in
            var it = item("m", "d", c.input, Float(i + 2), chunk: c.chunk, rowText: before)
            it.spanStart = c.start
            it.spanEnd = c.end
            return it
        }
        let livePath = try await live(liveItems)
        let work = try WorkFile(path: dir.appendingPathComponent("w.db").path, dimensions: 2, wal: true)
        defer { work.close() }
        try await work.stage(source: "m", rows: [row("d", after)])
        var m = model
        m.chunkTokens = 16
        let status = work.attachLive(path: livePath, model: model)
        let chunking = try #require(ChunkSettings.decode(status.meta?[.chunking]))
        _ = try work.reuseWholeRows(liveFormat: VectorFileFormat.version, chunking: chunking, prefixLength: 0)
        for (_, source, r) in try work.rowsToChunk(after: 0, limit: 10, liveFormat: VectorFileFormat.version, chunking: chunking, prefixLength: 0) {
            try work.stage(chunks: ReuseStage.chunks(of: r, source: source, chunker: chunker, prefix: "", prefixLength: 0))
        }
        let reused = try work.reuseChunks()
        let pending = try await work.pendingChunks(after: 0, limit: 50, prefixLength: 0)
        #expect(pending.count >= 1 && pending.count <= 2, "only the edited paragraph's chunk(s): \(pending.map(\.chunk.chunk))")
        #expect(reused["m"] == oldChunks.count - pending.count)
    }

    @Test func aWorkFileIsOnlyResumedByTheSameJob() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = """
            name: j
            primary: p.db
            output: out.db
            sources: [{name: m, query: "SELECT id, body AS text FROM t"}]
            model: {provider: openai, url: "http://127.0.0.1:1", name: m, dimensions: 2}
            """
        let job = try JobConfig.parse(yaml: yaml, file: dir.appendingPathComponent("j.yml").path)
        let workPath = dir.appendingPathComponent("w.work").path
        let logger = Logger(label: "test")
        let first = try Checkpoint.open(workPath: workPath, job: job, mode: .full, restart: false, wal: true, logger: logger)
        #expect(!first.resumed)
        first.work.close()
        let again = try Checkpoint.open(workPath: workPath, job: job, mode: .full, restart: false, wal: true, logger: logger)
        #expect(again.resumed && again.runID == first.runID && again.previousMode == .full)
        again.work.close()
        var edited = job
        edited.model.prefix = "passage: "
        #expect(Checkpoint.fingerprint(edited) != Checkpoint.fingerprint(job))
        let other = try Checkpoint.open(workPath: workPath, job: edited, mode: .full, restart: false, wal: true, logger: logger)
        #expect(!other.resumed && other.runID != first.runID, "another job's work is never resumed")
        other.work.close()
        let restarted = try Checkpoint.open(workPath: workPath, job: edited, mode: .full, restart: true, wal: true, logger: logger)
        #expect(!restarted.resumed && restarted.runID != other.runID)
        restarted.work.close()
    }
}
