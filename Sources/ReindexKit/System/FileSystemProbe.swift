import CStatfs
import Foundation

/// What kind of filesystem a path lives on, from `statfs(2)`.
public struct FileSystemKind: Sendable, Equatable, CustomStringConvertible {
    public var magic: UInt64
    public var name: String
    /// Shared memory (WAL's -shm) and POSIX locks are not coherent across hosts here.
    public var isNetwork: Bool
    /// Local, but layered (overlayfs): fine for a single writer, kept off WAL to be safe.
    public var isLayered: Bool

    public var description: String { String(format: "%@ (0x%llX)", name, magic) }
}

/// Where and how to build the new vector file, decided from the filesystems
/// of the output, the work directory and the primary. Pure, so it is unit
/// tested with simulated statfs results; `reindex doctor` prints it.
public struct StorageDecision: Sendable, Equatable {
    /// Build the new file in the local work directory and copy it beside the output.
    public var buildLocally: Bool
    /// WAL for the work file during the build (never on network or layered filesystems).
    public var workWAL: Bool
    public var notes: [String]
}

public enum FileSystemProbe {
    static let known: [UInt64: (String, network: Bool, layered: Bool)] = [
        0x6969: ("nfs", true, false),
        0x517B: ("smb", true, false),
        0xFF53_4D42: ("cifs", true, false),
        0xFE53_4D42: ("smb2", true, false),
        0x6573_5546: ("fuse", true, false),
        0x0102_1997: ("9p", true, false),
        0x00C3_6400: ("ceph", true, false),
        0x0BD0_0BD0: ("lustre", true, false),
        0x5346_414F: ("afs", true, false),
        0x794C_7630: ("overlayfs", false, true),
        0xEF53: ("ext4", false, false),
        0x5846_5342: ("xfs", false, false),
        0x9123_683E: ("btrfs", false, false),
        0x0102_1994: ("tmpfs", false, false),
        0x2FC1_2FC1: ("zfs", false, false),
        0xF2F5_2010: ("f2fs", false, false),
    ]

    public static func kind(magic: UInt64) -> FileSystemKind {
        if let k = known[magic] { return FileSystemKind(magic: magic, name: k.0, isNetwork: k.network, isLayered: k.layered) }
        return FileSystemKind(magic: magic, name: "unknown", isNetwork: false, isLayered: false)
    }

    /// statfs of the path, or of its nearest existing parent (the output may not exist yet).
    public static func probe(_ path: String) -> FileSystemKind? {
        var p = path
        while true {
            var st = statfs()
            if statfs(p, &st) == 0 { return kind(magic: UInt64(UInt(bitPattern: Int(st.f_type)))) }
            let parent = (p as NSString).deletingLastPathComponent
            if parent == p || parent.isEmpty { return nil }
            p = parent
        }
    }

    /// The decision. `forcedWorkDir` is `--work-dir`: the user asked for a local build.
    public static func decide(output: FileSystemKind?, work: FileSystemKind?, primary: FileSystemKind?, forcedWorkDir: Bool) -> StorageDecision {
        var notes: [String] = []
        var local = forcedWorkDir
        if let output, output.isNetwork {
            local = true
            notes.append("the output is on \(output.name), a network filesystem: the new file is built in the local work directory, then copied beside the output and renamed; WAL is never used there")
        } else if let output, output.isLayered {
            notes.append("the output is on \(output.name): the file is built beside it without WAL")
        }
        if forcedWorkDir { notes.append("--work-dir: the new file is built there and copied beside the output") }
        let buildFS = local ? work : output
        var wal = !(buildFS?.isNetwork ?? true) && !(buildFS?.isLayered ?? true)
        if buildFS == nil { wal = false }
        if local, let work, work.isNetwork {
            notes.append("the work directory is on \(work.name), a network filesystem too: building without WAL; point --work-dir (or TMPDIR) at a local disk")
            wal = false
        }
        if let primary, primary.isNetwork {
            notes.append("the primary is on \(primary.name): it is only read, read-only and in short transactions, but SQLite's locks are unreliable there — the application itself is at risk on this volume")
        }
        return StorageDecision(buildLocally: local, workWAL: wal, notes: notes)
    }
}
