import Foundation

/// The few POSIX file operations publishing depends on, each failing with the
/// path and the system's reason (DESIGN.md invariant 3).
public enum FileOps {
    static func fail(_ path: String, _ what: String, _ code: Int32 = errno) -> ReindexError {
        let reason = String(cString: strerror(code))
        let remedy: String
        switch code {
        case ENOSPC, EDQUOT: remedy = "free disk space, then rerun the same command to resume"
        case EACCES, EPERM, EROFS: remedy = "let this user write there (or pick another output), then rerun the same command to resume"
        default: remedy = "check the filesystem (dmesg, df), then rerun the same command to resume"
        }
        return .io(path: path, detail: "\(what) (got \(reason)) — \(remedy)")
    }

    public static func fsyncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail(path, "cannot open for fsync") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw fail(path, "fsync failed") }
    }

    public static func fsyncDirectory(of path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw fail(dir, "cannot open directory for fsync") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw fail(dir, "directory fsync failed") }
    }

    public static func rename(_ from: String, _ to: String) throws {
        guard Foundation.rename(from, to) == 0 else { throw fail(to, "cannot rename \(from) to it") }
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public static func remove(_ path: String) {
        _ = unlink(path)
    }

    /// Device and inode, following links (nil when absent).
    public static func identity(_ path: String) -> (dev: UInt64, ino: UInt64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Keeps `path` as `prev` atomically: a hard link when the filesystem has
    /// them (no copy, instant), else a copy; then renamed into place.
    public static func keepPrevious(_ path: String, as prev: String, via tmp: String) throws {
        unlink(tmp)
        if link(path, tmp) != 0 {
            // A hard link keeps the mode (one inode); the copy gets the output's mode and group.
            try copyFile(from: path, to: tmp)
        }
        try rename(tmp, prev)
        // rename() between two links of one inode does nothing (POSIX): a rerun after a
        // crash right after keeping .prev finds .prev already linked to the output.
        if exists(tmp) { unlink(tmp) }
    }

    /// Copies a file the cheapest way the filesystem offers (`FileClone`:
    /// reflink, `copy_file_range`, read/write); a full disk is reported with
    /// its errno and path; the copy is fsynced, created 0600 and then given
    /// the source's mode and group: never more readable than the source,
    /// even for an instant.
    public static func copyFile(from: String, to: String) throws {
        _ = try FileClone.copy(from, to: to, crashPoint: nil)
    }

    /// SQLite sidecars of `path` that SQLite would apply to a file renamed there.
    public static func sidecars(of path: String) -> [String] {
        ["-wal", "-shm", "-journal"].map { path + $0 }.filter { exists($0) }
    }

    public static func makeDirectory(forFile path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        guard !dir.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw ReindexError.io(path: dir, detail: "cannot create the output directory (got \(error.localizedDescription)) — create it or fix its permissions")
        }
    }
}
