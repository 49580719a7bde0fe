import Foundation

/// Fixed probe texts whose vectors are stored in `meta.probes`. Re-embedding
/// them first tells whether the model behind the configured name still
/// produces the same vectors; mixing two models' vectors in one file would
/// silently break retrieval.
public struct Probe: Sendable, Equatable {
    public var text: String
    public var vector: [Float]

    /// At most 8 (the resume test's budget counts them).
    public static let texts = [
        "The quick brown fox jumps over the lazy dog.",
        "How do I reset my password?",
        "Quarterly revenue grew by twelve percent compared to last year.",
        "Let's move the team meeting to Thursday afternoon.",
    ]

    public static let threshold: Float = 0.99

    static func embed(_ texts: [String], model: ModelConfig, embedder: BatchEmbedder) async throws -> [Probe] {
        let rows = texts.enumerated().map { i, t in
            PendingChunk(source: "_probe", sourceID: String(i), input: model.prefix + t)
        }
        let result = try await embedder.embed(rows)
        return result.items.map { item in
            let i = Int(item.sourceID)!
            return Probe(text: texts[i], vector: item.embedding.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
        }
    }

    /// A description of the drift, or nil when every shared probe agrees.
    public static func drift(stored: [Probe], fresh: [Probe]) -> String? {
        for old in stored {
            guard let new = fresh.first(where: { $0.text == old.text }), new.vector.count == old.vector.count else { continue }
            let cos = zip(old.vector, new.vector).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            if cos < threshold {
                return String(format: "probe \"%@\" has cosine similarity %.4f to its stored vector (threshold %.2f)", old.text, cos, threshold)
            }
        }
        return nil
    }

    public static func encode(_ probes: [Probe]) -> String {
        Report.encode(["probes": probes.map { p in
            ["text": p.text, "vector": p.vector.withUnsafeBytes { Data($0) }.base64EncodedString()]
        }])
    }

    public static func decode(_ text: String) -> [Probe] {
        guard let json = try? FastJSON.parse(Data(text.utf8)), let list = json["probes"]?.arrayValue else { return [] }
        return list.compactMap { entry in
            guard let t = entry["text"]?.stringValue, let b = entry["vector"]?.stringValue, let v = Endpoint.floats(base64: b) else { return nil }
            return Probe(text: t, vector: v)
        }
    }
}
