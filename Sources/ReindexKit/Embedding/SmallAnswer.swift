import Foundation

/// A server's one-off small answers about itself (llama.cpp `/props` and
/// `/tokenize`, TEI `/info` and `/tokenize`, Ollama `/api/show`), read once
/// or a few times per run: Foundation's `JSONDecoder` is plenty, and the
/// size is bounded so a misbehaving server cannot make us parse megabytes.
///
/// The bound applies after the transfer: `HTTPTransport` buffers a whole body
/// before it returns (it has no size limit of its own yet), so memory while
/// reading is bounded only by the request timeout.
enum SmallAnswer {
    /// Larger than any real answer: llama.cpp's `/props` is ~4 KB (its chat
    /// template), Ollama's `/api/show` without `verbose` ~10–40 KB (license text),
    /// `/tokenize` of an 8,000-character input ~15 KB.
    static let maxBytes = 4 << 20

    /// The decoded answer; nil when the server answered anything but 2xx, more
    /// than `maxBytes`, or a body of another shape — all mean "this server
    /// cannot tell", never a failed run.
    static func decode<T: Decodable>(_ type: T.Type, from response: HTTPResponse) -> T? {
        guard (200..<300).contains(response.status), response.body.count <= maxBytes else { return nil }
        return try? JSONDecoder().decode(T.self, from: response.body)
    }
}
