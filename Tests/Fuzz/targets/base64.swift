import Foundation

/// The base64 path: `Endpoint.floats(base64:)` on any text, alone and inside
/// an OpenAI answer (`encoding_format: base64`); a decoded vector has
/// exactly a quarter of the decoded bytes' count in floats.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBase64(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    let text = String(decoding: data, as: UTF8.self)
    if let floats = Endpoint.floats(base64: text) {
        let bytes = Data(base64Encoded: text)!
        precondition(floats.count * 4 == bytes.count, "float count \(floats.count) for \(bytes.count) bytes")
    }
    let escaped = text.unicodeScalars.map { $0 == "\"" || $0 == "\\" || $0.value < 0x20 ? "" : String($0) }.joined()
    let answer = Data(#"{"data":[{"index":0,"embedding":"\#(escaped)"}]}"#.utf8)
    _ = try? OpenAIEmbeddingClient.decode(answer, count: 1)
    return 0
}
