import Foundation

/// Least privilege for derived files (DESIGN.md invariant 9): the vector file,
/// `.prev` and the work files are never more readable than the primary they
/// are derived from.
///
/// The mode is computed from the primary's `stat`: the owner may read and
/// write (reindex rebuilds the file), group and others may only **read**, and
/// only where the primary lets them. The group is the primary's (`fchown`,
/// when the process may: as root, or as a member of that group); when it
/// cannot be given, the group bits are dropped, since they would then open
/// the file to another group. A job's `output-mode: "0640"` sets the mode
/// explicitly instead (the group is still the primary's when possible).
///
/// Files are created with mode 0600 and only then widened to the policy, so
/// none is ever more open than its final mode, even for an instant (a reader
/// that opened it then would keep its descriptor). Where the bytes come from:
/// - the work file: `WorkFile` calls `prepareDerived` before SQLite opens it;
///   SQLite creates its `-wal`, `-shm` and `-journal` with the main file's
///   mode (and owner, as root), so they follow;
/// - the published file is the work file renamed, or copied by `FileOps.copyFile`,
///   which gives the copy its source's mode and group (`copying(from:)`);
/// - `.prev` is a hard link to the old output (same inode, same mode) or such a copy;
/// - staging (`scan`) is an anonymous SQLite temp file: SQLite creates it 0600
///   (`SQLITE_OPEN_DELETEONCLOSE`) and unlinks it at once, so it has no name;
/// - the lock file is 0600 (it holds a pid and a start time).
public struct FilePermissions: Sendable, Equatable {
    /// Permission bits (within 0o666).
    public var mode: mode_t
    /// The group to give the file, when the process may.
    public var group: gid_t?
    /// Set by `output-mode`: applied as is, even when the group cannot be given.
    public var explicit: Bool

    public init(mode: mode_t, group: gid_t?, explicit: Bool) {
        self.mode = mode
        self.group = group
        self.explicit = explicit
    }

    /// The policy for files derived from `primary`, or `explicitMode` when a
    /// job sets one; nil when the primary cannot be stat'ed and no mode is set.
    public static func derived(fromPrimary primary: String, explicitMode: mode_t?) -> FilePermissions? {
        var st = stat()
        let found = stat(primary, &st) == 0
        if let explicitMode { return FilePermissions(mode: explicitMode, group: found ? st.st_gid : nil, explicit: true) }
        guard found else { return nil }
        return FilePermissions(mode: 0o600 | (st.st_mode & 0o044), group: st.st_gid, explicit: false)
    }

    /// A copy's policy: its source's mode and group (never wider than the source).
    static func copying(from fd: Int32) -> FilePermissions? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return FilePermissions(mode: st.st_mode & 0o666, group: st.st_gid, explicit: false)
    }

    /// Gives an open file this policy: the group first (when the process may),
    /// then the mode. Returns the mode set, or throws with the path.
    @discardableResult
    func apply(fd: Int32, path: String) throws -> mode_t {
        var mode = mode
        var st = stat()
        let currentGroup: gid_t? = fstat(fd, &st) == 0 ? st.st_gid : nil
        if let group, currentGroup != group, fchown(fd, uid_t.max, group) != 0, !explicit {
            // Not allowed to give the primary's group: the group bits would open it to another group.
            mode &= ~0o070
        }
        if group == nil, !explicit { mode &= ~0o070 }
        guard fchmod(fd, mode) == 0 else { throw FileOps.fail(path, "cannot set its permissions to \(Self.octal(mode))") }
        return mode
    }

    /// Applies the policy to an existing file (no-op when it does not exist).
    func apply(to path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT { return }
            throw FileOps.fail(path, "cannot open to set its permissions")
        }
        defer { close(fd) }
        try apply(fd: fd, path: path)
    }

    /// Creates `path` (empty) with mode 0600 when it does not exist, then
    /// gives it, and any SQLite sidecar of it, this policy.
    func create(_ path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileOps.fail(path, "cannot create") }
        defer { close(fd) }
        try apply(fd: fd, path: path)
        for sidecar in FileOps.sidecars(of: path) { try apply(to: sidecar) }
    }

    // MARK: The policy of the job being run

    private static let lock = NSLock()
    nonisolated(unsafe) private static var adopted: (primary: String, explicitMode: mode_t?)?

    /// Makes files derived from now on follow `primary` (or `explicitMode`).
    /// `JobConfig.load` and `JobConfig.apply` call it: one job per process.
    public static func adopt(primary: String, explicitMode: mode_t?) {
        lock.withLock { adopted = (primary, explicitMode) }
    }

    /// The policy of the adopted job, computed from the primary as it is now;
    /// nil when no job was adopted (library use, unit tests).
    public static var current: FilePermissions? {
        guard let job = lock.withLock({ adopted }) else { return nil }
        return derived(fromPrimary: job.primary, explicitMode: job.explicitMode)
    }

    /// Creates (or fixes) a derived file with the adopted job's policy; a
    /// no-op without one. `WorkFile` calls it before SQLite opens the file.
    public static func prepareDerived(_ path: String) throws {
        try current?.create(path)
    }

    // MARK: Checks for doctor and verify

    /// Who may read `file` that may not read `primary`: "group" (another
    /// group, or the group where the primary's may not), "others"; empty when
    /// the file is no more readable than the primary (or either is missing).
    public static func widerReaders(_ file: String, than primary: String) -> [String] {
        var f = stat(), p = stat()
        guard stat(file, &f) == 0, stat(primary, &p) == 0 else { return [] }
        var wider: [String] = []
        if f.st_mode & 0o040 != 0, p.st_mode & 0o040 == 0 || f.st_gid != p.st_gid { wider.append("group") }
        if f.st_mode & 0o004 != 0, p.st_mode & 0o004 == 0 { wider.append("others") }
        return wider
    }

    /// One line for doctor and verify, nil when `file` is no more readable than `primary`.
    public static func warning(_ file: String, primary: String) -> String? {
        let wider = widerReaders(file, than: primary)
        guard !wider.isEmpty else { return nil }
        return "\(file) (mode \(octal(modeOf(file)))) is readable by \(wider.joined(separator: " and ")), the primary \(primary) (mode \(octal(modeOf(primary)))) is not — chmod it to \(octal(modeOf(file) & ~(wider.contains("others") ? 0o004 : 0) & ~(wider.contains("group") ? 0o040 : 0))), or set output-mode in the job file if it is meant to be shared"
    }

    static func modeOf(_ path: String) -> mode_t {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o7777 : 0
    }

    static func octal(_ mode: mode_t) -> String { "0" + String(mode, radix: 8) }

    /// Parses `output-mode` ("0640", "640"): nil when it is not an octal mode
    /// reindex may use (owner read and write, nobody else writing, nothing beyond 0o666).
    public static func parseMode(_ text: String) -> mode_t? {
        guard text.range(of: #"^0?[0-7]{3}$"#, options: .regularExpression) != nil, let value = mode_t(text, radix: 8) else { return nil }
        guard value & 0o600 == 0o600, value & ~0o644 == 0 else { return nil }
        return value
    }
}
