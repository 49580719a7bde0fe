import Foundation

/// A row the model would not embed (after bisecting its batch), as recorded
/// in the `failures` table and retried by the next run.
public struct FailedItem: Sendable, Encodable {
    public var source: String
    public var sourceID: String
    public var error: String

    enum CodingKeys: String, CodingKey {
        case source, error
        case sourceID = "id"
    }
}
