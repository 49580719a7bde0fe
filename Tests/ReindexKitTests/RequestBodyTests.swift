import Foundation
import Testing
@testable import ReindexKit

/// Each protocol's request type writes the field names its server expects, and leaves out what is not set.
struct RequestBodyTests {
    func object(_ body: some Encodable) throws -> [String: Any] {
        let model = ModelConfig(provider: .openai, url: "http://127.0.0.1:1", name: "m", dimensions: 4)
        let request = try Endpoint(model: model, apiKey: nil).request(path: "/x", body: body)
        #expect(request.method == "POST")
        let body = try #require(request.body)
        return try #require(JSONSerialization.jsonObject(with: body) as? [String: Any])
    }

    @Test func openAI() throws {
        let full = try object(OpenAIEmbeddingRequest(model: "m", input: ["a", "b"], encodingFormat: "base64", dimensions: 256))
        #expect(Set(full.keys) == ["model", "input", "encoding_format", "dimensions"])
        #expect(full["encoding_format"] as? String == "base64")
        #expect(full["dimensions"] as? Int == 256)
        #expect(full["input"] as? [String] == ["a", "b"])
        let plain = try object(OpenAIEmbeddingRequest(model: "m", input: ["a"]))
        #expect(Set(plain.keys) == ["model", "input"])
    }

    @Test func ollama() throws {
        let full = try object(OllamaEmbedRequest(model: "m", input: ["a"], truncate: false, keepAlive: "5m", dimensions: 128))
        #expect(Set(full.keys) == ["model", "input", "truncate", "keep_alive", "dimensions"])
        #expect(full["keep_alive"] as? String == "5m")
        #expect(full["truncate"] as? Bool == false)
        let plain = try object(OllamaEmbedRequest(model: "m", input: ["a"]))
        #expect(Set(plain.keys) == ["model", "input"])
    }

    @Test func tei() throws {
        let full = try object(TEIEmbedRequest(inputs: ["a"], truncate: true))
        #expect(Set(full.keys) == ["inputs", "normalize", "truncate"])
        #expect(full["normalize"] as? Bool == false, "normalization is ours")
        let plain = try object(TEIEmbedRequest(inputs: ["a"]))
        #expect(Set(plain.keys) == ["inputs", "normalize"])
    }

    @Test func inputsSurviveEscaping() throws {
        let inputs = ["plain", "quote \" backslash \\ slash /", "tab\tnewline\ncr\r", "\u{01}\u{1F}", "é😀👩‍👩‍👧 中文", ""]
        let back = try object(OpenAIEmbeddingRequest(model: "m", input: inputs))
        #expect(back["input"] as? [String] == inputs)
    }
}
