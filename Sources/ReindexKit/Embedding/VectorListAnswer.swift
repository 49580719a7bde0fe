import Foundation

/// The shape Ollama and TEI answer with: a list of number arrays, one per
/// input, in order (Ollama under `embeddings`, TEI at the top level). One
/// decoder, so both report a malformed answer the same way.
enum VectorListAnswer {
    /// `list` picks the list out of the parsed answer; `what` names it in messages.
    static func decode(_ body: Data, provider: String, what: String, list: (FastJSON) -> [FastJSON]?) throws -> [[Float]] {
        let remedy = "check that the server behind model.url speaks provider: \(provider) (or change model.provider); then rerun to resume"
        let json: FastJSON
        do { json = try FastJSON.parse(body) } catch {
            throw ReindexError.modelResponse(detail: "the \(provider) answer is not JSON: \(error) — \(remedy)")
        }
        guard let vectors = list(json) else {
            throw ReindexError.modelResponse(detail: "the \(provider) answer \(what) — \(remedy)")
        }
        return try vectors.enumerated().map { i, v in
            guard let floats = v.floatsValue else {
                throw ReindexError.modelResponse(detail: "embedding \(i) in the \(provider) answer is not a list of numbers — \(remedy)")
            }
            return floats
        }
    }
}
