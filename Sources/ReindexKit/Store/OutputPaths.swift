import Crypto
import Foundation

/// Every file a job keeps beside its output, named once. All of them start
/// with the output's path, so one directory listing shows a job's state.
public struct OutputPaths: Sendable, Equatable {
    /// The published vector file.
    public let output: String

    public init(output: String) { self.output = output }

    /// The new file, renamed over the output when it is complete and checked.
    public var work: String { output + ".work" }
    /// The file the last publish replaced; `reindex rollback` restores it.
    public var prev: String { output + ".prev" }
    /// The run lock (an advisory `flock`; the file stays).
    public var lock: String { output + ".lock" }
    /// Exists from just before the rename until the directory is fsynced; holds the run id.
    public var publishing: String { output + ".work-publishing" }
    /// The hard link (or copy) that becomes `.prev` once complete.
    var prevInProgress: String { output + ".work-prev" }
    /// The old output while `rollback` swaps it with `.prev`.
    var rollbackSwap: String { output + ".work-rollback" }
    /// Where `--force` moves stale sidecars.
    func staleDirectory(stamp: String) -> String { output + ".stale-" + stamp }

    /// Names that must never be the primary (`output` itself and every file derived from it).
    var derived: [String] { [output, work, prev, lock] }

    /// SQLite's sidecars of a database path, which SQLite would apply to any file renamed there.
    public static let sidecarSuffixes = ["-wal", "-shm", "-journal"]

    /// The sidecars of `path` that exist now.
    public static func sidecars(of path: String) -> [String] {
        sidecarSuffixes.map { path + $0 }.filter { FileOps.exists($0) }
    }

    /// The work file plus SQLite's sidecars of it, its staging file and a clone in the making.
    static func workFiles(_ workPath: String) -> [String] {
        [workPath] + sidecarSuffixes.map { workPath + $0 } + [scanFile(workPath), cloneFile(workPath)] + sidecarSuffixes.map { cloneFile(workPath) + $0 }
    }

    /// The run's staged scan (`scan.rows`, `scan.chunks`), beside its work file:
    /// rebuilt by every run, removed when the run ends.
    static func scanFile(_ workPath: String) -> String { workPath + "-scan" }

    /// The live file's clone until its `work_state` is written; then renamed
    /// to the work file (a crash before leaves nothing a rerun would resume).
    static func cloneFile(_ workPath: String) -> String { workPath + "-clone" }

    /// The work file in a local work directory (output on a network
    /// filesystem): named after the output's path, so each output has its
    /// own and a rerun finds it again.
    func localWork(in directory: String) -> String {
        let tag = SHA256.hash(data: Data(output.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
        return (directory as NSString).appendingPathComponent("reindex-\((output as NSString).lastPathComponent)-\(tag).work")
    }
}

extension OutputPaths {
    /// Refuses an output that is the primary: the same path, the same inode,
    /// or a link to it (DESIGN.md invariant 4) — for the output and every
    /// file derived from it.
    public func refuseSameFile(asPrimary primary: String) throws {
        let out = URL(fileURLWithPath: output).resolvingSymlinksInPath().path
        let source = URL(fileURLWithPath: primary).resolvingSymlinksInPath().path
        var same = out == source
        if let p = FileOps.identity(primary) {
            for path in derived where FileOps.identity(path).map({ $0 == p }) ?? false { same = true }
        }
        if same {
            throw ReindexError.usage("output \(output) is the primary database \(primary) (same file or a link to it) — the vector file must be a separate, dedicated file; set `output` to another path")
        }
    }
}
