/// The version `reindex --version` prints. Bumped on each release; the
/// vector-file format has its own version (`meta.format`, `reindex-vectors/1`),
/// which changes only when the file's contract does.
public enum ReindexVersion {
    public static let string = "0.2.0"
}
