import Foundation
import Yams

/// `model.server`: a local model server the job starts, waits for and stops.
public struct ManagedServerConfig: Sendable, Equatable {
    public var command: [String]
    public var readyURL: String
    public var readyTimeout: Double = 120
    public var log: String?
    /// The job file's directory: the command runs there.
    public var workingDirectory: String

    static func parse(_ node: Node, reader: YAMLReader, base: String) throws -> ManagedServerConfig {
        let p = "model.server"
        let map = try reader.mapping(node, key: p, allowed: ["command", "ready-url", "ready-timeout", "log"])
        guard let command = try reader.optionalStringList(map, "command", prefix: p), !command.isEmpty else {
            throw reader.fail("model.server.command", "missing; expected a non-empty list, e.g. [\"llama-server\", \"--port\", \"8088\"]")
        }
        let ready = try reader.requiredString(map, "ready-url", prefix: p)
        var config = ManagedServerConfig(command: command, readyURL: ready, workingDirectory: base)
        config.readyTimeout = try reader.optionalDouble(map, "ready-timeout", prefix: p, range: 0.1...3_600) ?? config.readyTimeout
        if let log = try reader.optionalString(map, "log", prefix: p) {
            config.log = JobConfig.absolute(log, relativeTo: base)
        }
        return config
    }
}
