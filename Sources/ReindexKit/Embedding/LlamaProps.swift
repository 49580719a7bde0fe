/// The part of llama.cpp's `GET /props` answer that bounds an embedding
/// input: `default_generation_settings.n_ctx`, one slot's context (`-c`
/// divided by `-np`, capped at the model's training context). Checked on
/// llama-server build 0c1e570 (llama-cpp-python 0.3.36):
/// `{"default_generation_settings": {"params": {…}, "n_ctx": 512}, "total_slots": 4, "model_alias": …}`.
///
/// An embedding input must also fit in one physical batch (`-ub`, default
/// 512; "input (N tokens) is too large to process. increase the physical
/// batch size"), and `/props` does not report it: neither `n_ubatch` nor
/// `n_batch` is in the answer. So a context above 512 is capped at the
/// default `-ub`, and the source says so.
struct LlamaProps: Decodable, Sendable {
    struct GenerationSettings: Decodable, Sendable {
        /// `n_ctx`: the tokens one slot holds.
        var nCtx: Int?

        enum CodingKeys: String, CodingKey { case nCtx = "n_ctx" }
    }

    var defaultGenerationSettings: GenerationSettings?

    enum CodingKeys: String, CodingKey { case defaultGenerationSettings = "default_generation_settings" }

    /// llama-server's default physical batch (`-ub`, `--ubatch-size`).
    static let defaultPhysicalBatch = 512

    /// The window these properties give, or nil when they have no context size.
    var window: ModelWindow? {
        guard let nCtx = defaultGenerationSettings?.nCtx, nCtx > 0 else { return nil }
        if nCtx <= Self.defaultPhysicalBatch {
            return ModelWindow(tokens: nCtx, source: "llama.cpp /props n_ctx")
        }
        return ModelWindow(tokens: Self.defaultPhysicalBatch,
                           source: "llama.cpp /props n_ctx \(nCtx), capped at llama-server's default -ub \(Self.defaultPhysicalBatch) (/props does not report -ub)")
    }
}
