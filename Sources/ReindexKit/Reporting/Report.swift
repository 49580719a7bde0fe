import Foundation

/// JSON as every report and meta value prints it: sorted keys (stable for
/// diffs and tests), slashes unescaped (paths, base64).
enum Report {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
