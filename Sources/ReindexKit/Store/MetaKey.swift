import Foundation

/// The keys of the `meta` table (docs/format.md, "Meta keys"). Consumers read
/// them by name, so a key is never renamed within a format version.
public enum MetaKey: String, CaseIterable, Sendable {
    /// `reindex-vectors/2`.
    case format
    case model
    case provider
    case dimensions
    /// `cosine`.
    case distance
    /// `l2`: every vector has unit norm.
    case normalized
    /// `float32-le`.
    case embeddingEncoding = "embedding_encoding"
    /// ISO 8601 time of the publishing run.
    case createdAt = "created_at"
    case runID = "run_id"
    /// `count(*)` of `items` (chunks).
    case itemCount = "item_count"
    /// Source rows in `items` (each has one or more chunks).
    case rowCount = "row_count"
    /// JSON: how rows were cut into chunks (size and overlap in tokens and
    /// characters, the window and where it came from). An incremental run
    /// chunks exactly as the file it builds on did.
    case chunking
    /// The job's name.
    case job
    /// SHA-256 of what makes vectors comparable (sources, model, prefix, …); a
    /// work file is only resumed by a job with the same fingerprint.
    case sourceFingerprint = "source_fingerprint"
    /// JSON `{"names": [...]}`: the job's sources.
    case sources
    /// `model.prefix`, prepended to every input.
    case prefix
    /// JSON: the probe texts and their vectors, for drift checks.
    case probes
    /// `reindex`.
    case generator
    /// `vec0` or `none`: whether `vec_items` exists.
    case index
    /// The sqlite-vec version that built `vec_items`.
    case sqliteVecVersion = "sqlite_vec_version"
    /// JSON `{"attributes": [{"name", "role", "type", "vec_null"}, …]}`: the
    /// attribute columns of `items` and `vec_items`.
    case attributes
    /// `vec_items`' `chunk_size`, chosen from the data; only when it exists.
    case vecChunkSize = "vec_chunk_size"
    /// JSON `{"index": "fts5", "tokenizer", "tokenize"}`: the `keywords` FTS5
    /// table exists and how it splits words; absent when the file has none.
    case keywords
    /// Items embedded per second by the last run that embedded at least 100 (dry-run estimates).
    case throughputItemsPerSecond = "throughput_items_per_s"
    /// ISO 8601 time of the last publish that checked every vector of the
    /// file (a full build, or the periodic full check of the clone path).
    case fullCheckAt = "full_check_at"
    /// Publishing runs since then that checked only what they changed.
    case runsSinceFullCheck = "runs_since_full_check"
    /// Rows deleted from `vec_items` since it was built: slots sqlite-vec 0.1
    /// does not reclaim; `vec_items` is rebuilt past `compact-above`.
    case vecDeadRows = "vec_dead_rows"
    /// JSON `{"<source>": {"column", "kind", "value"}}`: per source with a
    /// `changed-column`, the highest value read before the run's scan; the
    /// next incremental run reads the rows at or past it.
    case watermarks
}
