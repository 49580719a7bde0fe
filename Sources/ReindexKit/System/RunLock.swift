import Foundation

/// `<output>.lock`: one run per output (DESIGN.md invariant 5). An advisory
/// `flock` held for the whole run; the kernel drops it when the process
/// dies, so a lock left by a crashed run never blocks the next one. The file
/// itself stays (deleting a lock file races with the next taker) and holds
/// the holder's pid and start time for the refusal message.
public final class RunLock {
    public let path: String
    private var fd: Int32

    public init(path: String) throws {
        self.path = path
        // 0600: it holds only a pid and a start time, for this user.
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ReindexError.io(path: path, detail: "cannot create the lock file (got \(String(cString: strerror(errno)))) — check that this user may write the output's directory")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            var holder = "holder unknown"
            if let text = try? String(contentsOfFile: path, encoding: .utf8), !text.isEmpty {
                holder = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            close(fd)
            fd = -1
            if code == EWOULDBLOCK {
                throw ReindexError.locked(path: path, holder: holder)
            }
            throw ReindexError.io(path: path, detail: "cannot lock (got \(String(cString: strerror(code)))) — the filesystem may not support flock; build on a local disk with --work-dir")
        }
        _ = fchmod(fd, 0o600)  // a lock file made by an older version was 0644
        let stamp = ISO8601DateFormatter().string(from: Date())
        let text = "pid \(getpid()), started \(stamp)\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit { release() }

    public func release() {
        guard fd >= 0 else { return }
        _ = flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }
}
