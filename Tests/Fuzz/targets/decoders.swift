import Foundation

/// The three providers' response decoders and the error-message reader on
/// any bytes: each returns vectors or throws `ReindexError`, never crashes.
/// The first byte picks how many inputs the OpenAI decoder expects (0–15).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoders(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let expected = Int(start.load(as: UInt8.self) & 0x0F)
    let body = Data(bytes: start + 1, count: count - 1)
    _ = try? OpenAIEmbeddingClient.decode(body, count: expected)
    _ = try? OllamaEmbeddingClient.decode(body)
    _ = try? TEIEmbeddingClient.decode(body)
    _ = try? JSONDecoder().decode(TEIInfo.self, from: body)
    _ = Endpoint.errorMessage(body)
    return 0
}
