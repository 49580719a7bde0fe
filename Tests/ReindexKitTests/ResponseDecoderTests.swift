import Foundation
import Testing
@testable import ReindexKit

/// What each protocol answers, decoded into one vector per input, and what is refused.
struct ResponseDecoderTests {
    func base64(_ v: [Float]) -> String { v.withUnsafeBytes { Data($0) }.base64EncodedString() }

    @Test func openAIFloatsBase64AndIndexOrder() throws {
        let body = #"""
            {"object": "list", "model": "m", "usage": {"prompt_tokens": 3, "total_tokens": 3},
             "data": [{"object": "embedding", "index": 1, "embedding": "\#(base64([0.5, -1]))"},
                      {"object": "embedding", "index": 0, "embedding": [0.25, 2e-3]}]}
            """#
        let vectors = try OpenAIEmbeddingClient.decode(Data(body.utf8), count: 2)
        #expect(vectors == [[0.25, 0.002], [0.5, -1]])
    }

    @Test(arguments: [
        (#"{"data": []}"#, "expected 1 embeddings"),
        (#"{"object": "list"}"#, "no \"data\" list"),
        (#"{"data": [{"index": 5, "embedding": [1]}]}"#, "out of range"),
        (#"{"data": [{"embedding": "AAA*"}]}"#, "not valid base64"),
        (#"{"data": [{"embedding": {"x": 1}}]}"#, "neither a list of numbers nor base64"),
        (#"{"data": [{"index": 0}]}"#, "has no \"embedding\""),
        ("<html>", "not JSON"),
    ])
    func openAIRefusals(_ body: String, _ says: String) {
        #expect { try OpenAIEmbeddingClient.decode(Data(body.utf8), count: 1) } throws: { "\($0)".contains(says) }
    }

    @Test func ollama() throws {
        let body = #"{"model": "m", "embeddings": [[1, 2.5], [-3, 4e1]], "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8}"#
        #expect(try OllamaEmbeddingClient.decode(Data(body.utf8)) == [[1, 2.5], [-3, 40]])
        #expect(try OllamaEmbeddingClient.decode(Data(#"{"embeddings": []}"#.utf8)) == [])
        #expect { try OllamaEmbeddingClient.decode(Data(#"{"embedding": [1]}"#.utf8)) } throws: { "\($0)".contains("no \"embeddings\" list") }
        #expect { try OllamaEmbeddingClient.decode(Data(#"{"embeddings": [[1], "x"]}"#.utf8)) } throws: { "\($0)".contains("embedding 1") }
    }

    @Test func tei() throws {
        #expect(try TEIEmbeddingClient.decode(Data("[[0.5, 1], [2, -0.125]]".utf8)) == [[0.5, 1], [2, -0.125]])
        #expect(try TEIEmbeddingClient.decode(Data("[]".utf8)) == [])
        #expect { try TEIEmbeddingClient.decode(Data(#"{"error": "x"}"#.utf8)) } throws: { "\($0)".contains("not a list of embeddings") }
        #expect { try TEIEmbeddingClient.decode(Data("[[1], [null]]".utf8)) } throws: { "\($0)".contains("embedding 1") }
    }

    @Test func errorMessagesOfEachShape() {
        #expect(Endpoint.errorMessage(Data(#"{"error": {"message": "too long", "type": "invalid_request_error"}}"#.utf8)) == "too long")
        #expect(Endpoint.errorMessage(Data(#"{"error": "model not found", "error_type": "Validation"}"#.utf8)) == "model not found")
        #expect(Endpoint.errorMessage(Data(#"{"detail": "bad"}"#.utf8)) == "bad")
        #expect(Endpoint.errorMessage(Data("  Bad Gateway\n".utf8)) == "Bad Gateway")
        #expect(Endpoint.errorMessage(Data()) == "(empty body)")
    }

    @Test func base64FloatsThroughFoundation() {
        var rng = SystemRandomNumberGenerator()
        for count in [0, 1, 2, 3, 5, 384, 1536] {
            let floats = (0..<count).map { _ in Float.random(in: -3...3, using: &rng) }
            #expect(Endpoint.floats(base64: base64(floats)) == floats)
        }
        // Not base64, or not a whole number of float32s.
        for bad in ["AAAA", "AAA", "AAAAAA=", "AA=A", "AAAA AAA", "AAA*", "=AAA", "AAAAA=A="] {
            #expect(Endpoint.floats(base64: bad) == nil, "\(bad)")
        }
    }
}
