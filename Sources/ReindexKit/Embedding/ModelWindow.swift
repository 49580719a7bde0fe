/// The model's input window as the server reports it: the most tokens one
/// input may have, special tokens and the prefix included. Read once per run
/// (`EmbeddingClient.window()`); `TokenBudget` caps the chunk size with it.
public struct ModelWindow: Sendable, Equatable {
    /// The most tokens one input may have.
    public var tokens: Int
    /// Where it came from, for the summary: e.g. "llama.cpp /props n_ctx",
    /// "TEI /info max_input_length", "Ollama /api/show bert.context_length".
    public var source: String

    public init(tokens: Int, source: String) {
        self.tokens = tokens
        self.source = source
    }

    /// The window a server's refusal of one over-long input names, when it
    /// names one. llama.cpp's `/props` cannot tell the physical batch (`-ub`),
    /// which also bounds an embedding input, so its first refusal is where the
    /// run can learn it:
    /// - llama.cpp 500: `input (600 tokens) is too large to process. increase the physical batch size (current batch size: 512)`
    /// - llama.cpp 400: `input (600 tokens) is larger than the max context size (512 tokens). skipping`
    /// - TEI 413: ``Input validation error: `inputs` must have less than 512 tokens. Given: 600``
    /// - OpenAI 400: `This model's maximum context length is 8192 tokens, however you requested …`
    public static func named(inRejection message: String) -> ModelWindow? {
        let forms: [(marker: String, source: String)] = [
            ("(current batch size: ", "llama.cpp error: physical batch size"),
            ("larger than the max context size (", "llama.cpp error: max context size"),
            ("must have less than ", "TEI error: max input length"),
            ("maximum context length is ", "OpenAI error: maximum context length"),
        ]
        for form in forms {
            if let tokens = number(after: form.marker, in: message), tokens > 0 {
                return ModelWindow(tokens: tokens, source: form.source)
            }
        }
        return nil
    }

    /// The decimal number right after `marker` in `text`.
    private static func number(after marker: String, in text: String) -> Int? {
        guard let range = text.range(of: marker) else { return nil }
        let digits = text[range.upperBound...].prefix { $0.isASCII && $0.isNumber }
        return digits.count <= 9 ? Int(digits) : nil
    }
}
