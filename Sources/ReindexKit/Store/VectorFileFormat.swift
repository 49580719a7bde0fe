import Foundation

/// The vector file's contract, `reindex-vectors/2`, defined once: every
/// table a published file has, the private tables a work file adds, and the
/// constants consumers rely on. docs/format.md shows the same schema; a test
/// keeps the two equal, so the document cannot drift from the code.
public enum VectorFileFormat {
    /// `meta.format`. A run reuses vectors from a file of this version or of
    /// `previousVersion`; any other version is rebuilt in full.
    public static let version = "reindex-vectors/2"

    /// `/1` stored one item per row (its whole input, cut to `max-input-chars`);
    /// a run on a `/1` file publishes `/2` and re-embeds only the rows that now
    /// have several chunks (docs/format.md, "Versioning").
    public static let previousVersion = "reindex-vectors/1"

    /// Versions a run can build on.
    static let readableVersions = [version, previousVersion]

    /// The tables of a published file, in the order of `schema`.
    public static let publishedTables = ["meta", "items", "failures", "runs"]

    /// The published tables and indexes (docs/format.md, "Tables").
    public static let schema = tables + "\n" + indexes

    /// The published tables.
    static let tables = """
        CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS items(
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            span_start INTEGER NOT NULL,
            span_end INTEGER NOT NULL,
            row_hash BLOB NOT NULL,
            content_hash BLOB NOT NULL,
            embedding BLOB NOT NULL,
            embedded_at INTEGER NOT NULL,
            UNIQUE(source, source_id, chunk));
        CREATE TABLE IF NOT EXISTS failures(
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            error TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            last_attempt_at INTEGER NOT NULL,
            PRIMARY KEY(source, source_id));
        CREATE TABLE IF NOT EXISTS runs(
            run_id TEXT PRIMARY KEY,
            mode TEXT NOT NULL,
            full_reason TEXT,
            started_at INTEGER NOT NULL,
            finished_at INTEGER NOT NULL,
            scanned INTEGER NOT NULL,
            skipped INTEGER NOT NULL,
            embedded INTEGER NOT NULL,
            reused INTEGER NOT NULL,
            removed INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            requests INTEGER NOT NULL,
            duration_s REAL NOT NULL,
            items_per_s REAL);
        """

    /// The published indexes beyond the tables' keys. A build creates them
    /// once its items are written (`WorkFile.ensureRowsIndex`: kept up to date
    /// through the WAL while 1M items were written, `items_rows` cost a build
    /// 0.74 GB more writes); a clone has them, or gets them when it is opened.
    static let indexes = """
        CREATE INDEX IF NOT EXISTS items_rows ON items(source, source_id, chunk, row_hash);
        """

    /// `items_rows`: the unique key and each item's row hash, in key order,
    /// apart from the vectors. An incremental run compares the primary's
    /// hashes with it in one merge (`StagingArea.collectChangedHashes`:
    /// 0.65 s at 1M messages, where probing `items`, whose pages are mostly
    /// vectors, took 1.6–2.0 s); about 2% of the file. It extends the key's
    /// own index so that no lookup by key plans worse: ordered by chunk
    /// before source id, the planner preferred it, covering but matching
    /// only `source`, for a join on `(source, source_id)`, and one delete of
    /// a clone's changed rows took 67 s instead of 0.1 s. Added within `/2`:
    /// a file without it is read as before, and the run that clones it adds it.
    public static let rowsIndex = "items_rows"

    /// The published tables of a job whose sources declare attributes: one
    /// column per attribute in `items`, after `embedded_at`, declared without
    /// a type so every value keeps the type the query gave it.
    static func schema(attributes: [AttributeSpec]) -> String {
        tables(attributes: attributes) + "\n" + indexes
    }

    /// The published tables of a job (`schema(attributes:)` without the indexes).
    static func tables(attributes: [AttributeSpec]) -> String {
        guard !attributes.isEmpty else { return tables }
        let marker = "    embedded_at INTEGER NOT NULL,\n"
        let columns = attributes.map { "    \($0.name),\n" }.joined()
        return tables.replacingOccurrences(of: marker, with: marker + columns)
    }

    /// Private tables that make a work file a resumable checkpoint: the run's
    /// identity, the ids copied from the live file and, in a work file cloned
    /// from the live file, every item id this run deleted, inserted or updated
    /// (`work_delta`, filled by triggers; `indexed` = 1 once the derived
    /// indexes applied it). Dropped before publishing; a published file that
    /// has them is reported by `verify`.
    static let workTables = ["work_state", "work_copied", "work_delta"]

    static let workSchema = """
        CREATE TABLE IF NOT EXISTS work_state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS work_copied(id INTEGER PRIMARY KEY);
        CREATE TABLE IF NOT EXISTS work_delta(id INTEGER PRIMARY KEY, op TEXT NOT NULL, indexed INTEGER NOT NULL DEFAULT 0);
        """

    /// `meta.distance`: vectors are compared by cosine similarity.
    public static let distance = "cosine"
    /// `meta.normalized`: every vector has unit L2 norm.
    public static let normalized = "l2"
    /// `meta.embedding_encoding`: the blob layout sqlite-vec reads.
    public static let embeddingEncoding = "float32-le"
    /// `meta.generator`.
    public static let generator = "reindex"

    /// 8 KiB pages: a 384-dimension row (~1.6 KB) packs 4–5 to a page instead
    /// of 2 to a 4 KiB page (a fifth of the file was slack), so every stage
    /// that writes or reads the file moves ~20% fewer bytes. Never worse than
    /// 4 KiB for any dimension. Only applies to a new file.
    static let pageSize = 8192

    /// `INCREMENTAL`: the file keeps pointer-map pages, so SQLite finds any
    /// page of an overflow chain without reading the pages before it. A
    /// `vec0` chunk is one ~1.5 MB blob (1,024 vectors of 384 dimensions,
    /// 190 pages), and sqlite-vec reads and writes single vectors in it with
    /// blob I/O: without the map every insert, delete and lookup walks the
    /// chain up to its slot. 800 lookups by rowid in a cold clone of the 1M
    /// file read 654 MB without it and 22 MB with it (2.3 s against 0.23 s).
    /// Nothing is ever vacuumed: deleted pages stay free for the next rows,
    /// as without the setting. Only applies to a new file (a clone keeps its
    /// base's setting; docs/format.md, "Storage").
    static let autoVacuum = "INCREMENTAL"

    /// A vector's size in the `embedding` blob.
    static func embeddingBytes(dimensions: Int) -> Int { dimensions * 4 }
}
