import Foundation
import Testing
@testable import ReindexKit

/// The window and token-count answers of llama.cpp, TEI and Ollama, decoded
/// from the shapes the real servers send, and the pure `TokenBudget`.
struct ModelWindowTests {
    static func answer(_ json: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, body: Data(json.utf8), retryAfter: nil)
    }

    // MARK: llama.cpp

    /// Trimmed from llama-server 0c1e570 (`-c 2048 -np 4 -b 2048 -ub 2048`): no n_ubatch anywhere.
    static let realProps = #"""
    {"default_generation_settings":{"params":{"seed":4294967295,"temperature":0.800000011920929,"n_predict":-1,"samplers":["penalties","dry"],"lora":[]},"n_ctx":512},
     "total_slots":4,"model_alias":"all-minilm-l6-v2","model_ftype":"F16","model_path":"/work/main/var/model/all-minilm-l6-v2.gguf",
     "modalities":{"vision":false,"video":false,"audio":false},"endpoint_slots":true,"endpoint_props":false,"endpoint_metrics":false,
     "chat_template":"{%- for message in messages -%}…","bos_token":"[CLS]","eos_token":"[SEP]","build_info":"b1-0c1e570","is_sleeping":false}
    """#

    @Test func llamaPropsGiveTheSlotContext() throws {
        let props = try #require(SmallAnswer.decode(LlamaProps.self, from: Self.answer(Self.realProps)))
        #expect(props.window == ModelWindow(tokens: 512, source: "llama.cpp /props n_ctx"))
    }

    @Test func llamaContextAboveTheDefaultPhysicalBatchIsCapped() throws {
        let props = try #require(SmallAnswer.decode(LlamaProps.self, from: Self.answer(#"{"default_generation_settings":{"n_ctx":8192}}"#)))
        #expect(props.window?.tokens == 512)
        #expect(props.window?.source == "llama.cpp /props n_ctx 8192, capped at llama-server's default -ub 512 (/props does not report -ub)")
    }

    @Test func propsWithoutAContextOrFromAnotherServerTellNothing() {
        #expect(SmallAnswer.decode(LlamaProps.self, from: Self.answer(#"{"total_slots":1}"#))?.window == nil)
        #expect(SmallAnswer.decode(LlamaProps.self, from: Self.answer(#"{"default_generation_settings":{"n_ctx":0}}"#))?.window == nil)
        // A plain OpenAI-compatible API: 404 with an error body.
        #expect(SmallAnswer.decode(LlamaProps.self, from: Self.answer(#"{"error":{"message":"Not found","type":"invalid_request_error"}}"#, status: 404)) == nil)
        #expect(SmallAnswer.decode(LlamaProps.self, from: Self.answer("<html>nope</html>")) == nil)
    }

    @Test func llamaTokenizeCountsIds() throws {
        // The real server's answer for "The quick brown fox jumps over the lazy dog." with add_special.
        let body = #"{"tokens":[101,1996,4248,2829,4419,14523,2058,1996,13971,3899,1012,102]}"#
        #expect(SmallAnswer.decode(LlamaTokenizeResponse.self, from: Self.answer(body))?.tokens.count == 12)
        let request = try JSONEncoder().encode(LlamaTokenizeRequest(content: "a", addSpecial: true))
        #expect(String(decoding: request, as: UTF8.self).contains(#""add_special":true"#))
    }

    // MARK: TEI

    @Test func teiInfoGivesMaxInputLength() throws {
        let body = #"{"model_id":"sentence-transformers/all-MiniLM-L6-v2","model_sha":null,"model_dtype":"float16","model_type":{"embedding":{"pooling":"mean"}},"max_concurrent_requests":512,"max_input_length":256,"max_batch_tokens":16384,"max_batch_requests":null,"max_client_batch_size":32,"auto_truncate":false,"tokenization_workers":4,"version":"1.5.0","sha":null,"docker_label":null}"#
        #expect(SmallAnswer.decode(TEIInputLimit.self, from: Self.answer(body))?.window == ModelWindow(tokens: 256, source: "TEI /info max_input_length"))
        #expect(SmallAnswer.decode(TEIInputLimit.self, from: Self.answer(#"{"model_id":"x"}"#))?.window == nil)
    }

    @Test func teiTokenizeIsOneListPerInput() throws {
        let body = #"[[{"id":101,"text":"[CLS]","special":true,"start":null,"stop":null},{"id":7592,"text":"hello","special":false,"start":0,"stop":5},{"id":102,"text":"[SEP]","special":true,"start":null,"stop":null}]]"#
        let answer = try #require(SmallAnswer.decode(TEITokenizeResponse.self, from: Self.answer(body)))
        #expect(answer.inputs.map(\.count) == [3])
        #expect(SmallAnswer.decode(TEITokenizeResponse.self, from: Self.answer(#"{"tokens":[1,2]}"#)) == nil)
        let request = try JSONEncoder().encode(TEITokenizeRequest(inputs: "a", addSpecialTokens: true))
        #expect(String(decoding: request, as: UTF8.self).contains(#""add_special_tokens":true"#))
    }

    // MARK: Ollama

    static func show(parameters: String?, contextKey: String = "bert.context_length", context: Int? = 512) -> HTTPResponse {
        var info = #""general.architecture":"bert","general.parameter_count":22565376,"bert.embedding_length":384,"bert.attention.causal":false,"tokenizer.ggml.tokens":null,"tokenizer.ggml.scores":[0.5]"#
        if let context { info += #","\#(contextKey)":\#(context)"# }
        let params = parameters.map { #""parameters":"\#($0)","# } ?? ""
        return answer(#"{"license":"Apache 2.0","modelfile":"FROM x",\#(params)"template":"{{ .Prompt }}","details":{"family":"bert"},"model_info":{\#(info)},"capabilities":["embedding"]}"#)
    }

    @Test func ollamaShowGivesTheContextLengthOfItsArchitecture() throws {
        let show = try #require(SmallAnswer.decode(OllamaShowResponse.self, from: Self.show(parameters: nil)))
        #expect(show.architecture == "bert" && show.contextLength == 512 && show.numCtx == nil)
        #expect(show.window == ModelWindow(tokens: 512, source: "Ollama /api/show bert.context_length"))
    }

    @Test func ollamaNumCtxWinsWhenSmaller() throws {
        let show = try #require(SmallAnswer.decode(OllamaShowResponse.self, from: Self.show(parameters: #"temperature 0.7\nnum_ctx 256"#)))
        #expect(show.window == ModelWindow(tokens: 256, source: "Ollama /api/show num_ctx (bert.context_length 512)"))
        let larger = try #require(SmallAnswer.decode(OllamaShowResponse.self, from: Self.show(parameters: "num_ctx 8192")))
        #expect(larger.window?.tokens == 512)
    }

    @Test func ollamaLongContextWithoutNumCtxIsTakenAtTheDefault() throws {
        let show = try #require(SmallAnswer.decode(OllamaShowResponse.self, from: Self.show(parameters: "", context: 8192)))
        #expect(show.window == ModelWindow(tokens: 2048, source: "Ollama /api/show bert.context_length 8192, capped at Ollama's default num_ctx 2048"))
        let none = try #require(SmallAnswer.decode(OllamaShowResponse.self, from: Self.show(parameters: nil, context: nil)))
        #expect(none.window == nil)
        #expect(SmallAnswer.decode(OllamaShowResponse.self, from: Self.answer(#"{"error":"model 'x' not found"}"#, status: 404)) == nil)
    }

    // MARK: Bounds and refusals

    @Test func answersOverTheBoundAreNotParsed() {
        let padding = String(repeating: " ", count: SmallAnswer.maxBytes)
        #expect(SmallAnswer.decode(LlamaProps.self, from: Self.answer(#"{"default_generation_settings":{"n_ctx":512}}"# + padding)) == nil)
        #expect(SmallAnswer.decode(LlamaProps.self, from: Self.answer(#"{"default_generation_settings":{"n_ctx":512}}"#, status: 500)) == nil)
    }

    @Test(arguments: [
        ("input (600 tokens) is too large to process. increase the physical batch size (current batch size: 512)", 512, "llama.cpp error: physical batch size"),
        ("input (513 tokens) is larger than the max context size (512 tokens). skipping", 512, "llama.cpp error: max context size"),
        ("Input validation error: `inputs` must have less than 256 tokens. Given: 300", 256, "TEI error: max input length"),
        ("This model's maximum context length is 8192 tokens, however you requested 9000 tokens", 8192, "OpenAI error: maximum context length"),
    ])
    func refusalsNameTheWindow(message: String, tokens: Int, source: String) {
        #expect(ModelWindow.named(inRejection: message) == ModelWindow(tokens: tokens, source: source))
    }

    @Test func refusalsWithoutANumberNameNothing() {
        #expect(ModelWindow.named(inRejection: "input is too large to process. increase the physical batch size") == nil)
        #expect(ModelWindow.named(inRejection: "the input length exceeds the context length") == nil)
    }

    // MARK: TokenBudget

    @Test func theRatioIsAllScalarsOverAllTokensLessTheMargin() {
        // The samples on all-MiniLM-L6-v2: 704 scalars, 204 tokens → 3.45 → 3.10.
        #expect(TokenBudget.ratio([(704, 204)]) == 3.10)
        #expect(TokenBudget.ratio([(40, 10), (60, 10)]) == 4.5)
        #expect(TokenBudget.ratio([(3, 10)]) == 1)
        #expect(TokenBudget.ratio([]) == nil)
        #expect(TokenBudget.ratio([(5, 0)]) == nil)
    }

    @Test func theSamplesAreTheProbesAndLongerText() {
        #expect(Array(TokenBudget.samples.prefix(Probe.texts.count)) == Probe.texts)
        #expect(TokenBudget.samples.reduce(0) { $0 + $1.unicodeScalars.count } == 704)
    }

    @Test func aChunkWithinTheWindowKeepsItsSize() {
        let b = TokenBudget(chunkTokens: 128, overlapTokens: 16, charactersPerToken: 3.10, ratioSource: .measured(samples: 8),
                            window: ModelWindow(tokens: 512, source: "llama.cpp /props n_ctx"), reservedTokens: 2)
        #expect(b.tokensPerChunk == 128 && !b.isCapped)
        #expect(b.chunkScalars == 396)
        #expect(b.overlapScalars == 49)
        #expect(b.describe() == "chunk 128 tokens ≈ 396 characters, overlap 16 tokens ≈ 49 characters (3.10 characters a token, measured with the server's tokenizer); window 512 tokens from llama.cpp /props n_ctx, 2 of them for special tokens and the prefix")
    }

    @Test func theWindowLessReservedTokensCapsTheChunk() {
        let b = TokenBudget(chunkTokens: 512, overlapTokens: 400, charactersPerToken: 3, ratioSource: .estimated,
                            window: ModelWindow(tokens: 256, source: "TEI /info max_input_length"), reservedTokens: 6)
        #expect(b.tokensPerChunk == 250 && b.isCapped)
        #expect(b.chunkScalars == 750)
        #expect(b.overlapTokensPerChunk == 125, "at most half a chunk")
        #expect(b.describe() == "chunk 250 tokens ≈ 750 characters, overlap 125 tokens ≈ 375 characters (3.00 characters a token, estimated: the server cannot count tokens); window 256 tokens from TEI /info max_input_length, 6 of them for special tokens and the prefix; chunk-tokens 512 capped to fit it")
    }

    @Test func withoutAWindowOnlyChunkTokensCounts() {
        let b = TokenBudget(chunkTokens: 200, overlapTokens: 0, charactersPerToken: 3, ratioSource: .estimated, window: nil, reservedTokens: 2)
        #expect(b.tokensPerChunk == 200 && b.chunkScalars == 600 && b.overlapScalars == 0)
        #expect(b.describe() == "chunk 200 tokens ≈ 600 characters (3.00 characters a token, estimated: the server cannot count tokens); window unknown (the server does not report it)")
    }

    /// Counts like a BERT tokenizer would, roughly: one token a word or punctuation mark, plus [CLS] and [SEP].
    struct CountingClient: EmbeddingClient {
        var reportedWindow: ModelWindow?
        var tokenizes = true
        var description: String { "counting" }
        func embed(_ inputs: [String]) async throws -> EmbeddingReply { .vectors([]) }
        func window() async throws -> ModelWindow? { reportedWindow }
        func countTokens(_ text: String) async throws -> Int? {
            guard tokenizes else { return nil }
            var n = 0, inWord = false
            for c in text.unicodeScalars {
                if CharacterSet.alphanumerics.contains(c) { if !inWord { n += 1 }; inWord = true }
                else { inWord = false; if !CharacterSet.whitespaces.contains(c) { n += 1 } }
            }
            return n + 2
        }
    }

    @Test func measuringCountsSpecialTokensAndThePrefix() async throws {
        let window = ModelWindow(tokens: 64, source: "test")
        let b = try await TokenBudget.measure(client: CountingClient(reportedWindow: window), chunkTokens: 128, overlapTokens: 0, prefix: "passage: ")
        #expect(b.reservedTokens == 4, "[CLS] [SEP] + passage :")
        #expect(b.ratioSource == .measured(samples: TokenBudget.samples.count))
        #expect(b.tokensPerChunk == 60 && b.isCapped)
        #expect(b.charactersPerToken > 3 && b.charactersPerToken < 5)
    }

    @Test func withoutATokenizerTheDefaultsApply() async throws {
        let b = try await TokenBudget.measure(client: CountingClient(tokenizes: false), chunkTokens: 128, overlapTokens: 8, prefix: "query: ")
        #expect(b.charactersPerToken == TokenBudget.defaultCharactersPerToken && b.ratioSource == .estimated)
        #expect(b.reservedTokens == 2 + 3, "2 special tokens + ceil(7 / 3) for the prefix")
        #expect(b.window == nil && b.chunkScalars == 384)
    }

    @Test func aPrefixThatFillsTheWindowIsAConfigurationError() async throws {
        let client = CountingClient(reportedWindow: ModelWindow(tokens: 4, source: "test"))
        await #expect(throws: ReindexError.self) {
            _ = try await TokenBudget.measure(client: client, chunkTokens: 128, overlapTokens: 0, prefix: "a b")
        }
    }
}
