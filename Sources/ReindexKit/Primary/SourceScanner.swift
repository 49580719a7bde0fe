import Crypto
import Foundation
import GRDB
import Logging

/// One eligible source row, ready to embed: `input` is the exact model input
/// (prefix + text, truncated to `max-input-chars`) and `hash` its SHA-256.
public struct ScannedRow: Sendable {
    public var sourceID: String
    public var hash: Data
    public var input: String
    public var truncated: Bool
    /// The row's attribute values, in the job's order.
    public var attributes: [DatabaseValue] = []
    /// Set when the row's text was over `max-row-bytes` and not loaded: the
    /// row is staged with an empty input and recorded as failed.
    public var oversizedBytes: Int? = nil
    /// Whether the row's `changed-column` is at or past the live file's
    /// watermark (`ScanFilter.allFlagging`; nil otherwise): a full scan
    /// counts the rows that changed without it moving.
    public var flagged: Bool? = nil
}

/// Per-source scan counts.
public struct ScanCounts: Sendable, Equatable {
    public var scanned = 0
    public var skipped = 0
    public var truncated = 0
    /// Rows over `max-row-bytes`, not loaded (recorded as failed).
    public var oversized = 0
    /// Ids read by the id pass of a `changed-column` scan (0 for a full scan).
    public var ids = 0
    public init(scanned: Int = 0, skipped: Int = 0, truncated: Int = 0, oversized: Int = 0) {
        (self.scanned, self.skipped, self.truncated, self.oversized) = (scanned, skipped, truncated, oversized)
    }

    /// Adds the rows another read of the same source scanned, skipped, cut and left out.
    mutating func add(_ other: ScanCounts) {
        scanned += other.scanned
        skipped += other.skipped
        truncated += other.truncated
        oversized += other.oversized
    }
}

/// Reads the primary database strictly read-only, in keyset-paged short read
/// transactions, so the application's writers are never starved (DESIGN.md
/// invariants 1 and 2). Nothing here can write: the connection is opened with
/// SQLITE_OPEN_READONLY and `query_only`, and every source query is checked
/// with `sqlite3_stmt_readonly` before the first row is read.
public final class SourceScanner: PrimarySource {
    public let path: String
    private let queue: DatabaseQueue
    private let logger: Logger
    /// Longest read transaction seen, in seconds (reported, and tested against invariant 2).
    public let stats = ScanStats()

    public init(path: String, logger: Logger) throws {
        self.path = path
        self.logger = logger
        guard FileManager.default.fileExists(atPath: path) else {
            throw ReindexError.primary(path: path, detail: "no such file — check `primary` in the job file or --primary")
        }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        config.label = "primary"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA query_only = ON")
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            // Fails here, not mid-scan, when the file is not a database.
            _ = try Self.retryingBusy { try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_schema") } }
        } catch let error as DatabaseError {
            throw ReindexError.primary(path: path, detail: "cannot open it read-only (got SQLite code \(error.resultCode.rawValue): \(error.message ?? "\(error)")) — check `primary` points at the application's SQLite database and that this user may read it")
        }
    }

    /// Opens the job's primary and checks every source query before any work.
    public convenience init(job: JobConfig, logger: Logger) throws {
        try self.init(path: job.primary, logger: logger)
        for source in job.sources { try validate(source) }
    }

    /// Refuses, before any work, a query that could write or lacks `id`/`text`.
    public func validate(_ source: JobConfig.Source) throws {
        do {
            try queue.read { db in
                let statement = try db.makeStatement(sql: Self.trimmed(source.query))
                guard statement.isReadonly else {
                    throw ReindexError.sourceQuery(source: source.name, detail: "the query is not read-only (got a statement that writes) — use a SELECT returning the columns id and text")
                }
                let columns = statement.columnNames
                for needed in ["id", "text"] where !columns.contains(needed) {
                    throw ReindexError.sourceQuery(source: source.name, detail: "the query has no column named \"\(needed)\" (got \(columns.joined(separator: ", "))); alias it, e.g. `SELECT id, body AS text FROM …`")
                }
                for attribute in source.attributes where !columns.contains(where: { $0.lowercased() == attribute.name.lowercased() }) {
                    throw ReindexError.sourceQuery(source: source.name, detail: "attributes.\(attribute.name): the query has no column named \"\(attribute.name)\" (got \(columns.joined(separator: ", "))); expected one for each declared attribute — alias it, e.g. `\"roomId\" AS \(attribute.name)`, or `NULL AS \(attribute.name)` where the source has no value")
                }
                if let changed = source.changedColumn, !columns.contains(where: { $0.lowercased() == changed.lowercased() }) {
                    throw ReindexError.sourceQuery(source: source.name, detail: Self.noChangedColumn(changed, columns: columns))
                }
                if let changed = source.changedColumn {
                    let mark = Watermark(column: changed, kind: .integer, value: "0")
                    _ = try db.makeStatement(sql: Self.pageSQL(source.query, after: true, attributes: source.attributes, filter: .allFlagging(mark)))
                    _ = try db.makeStatement(sql: Self.idPageSQL(source.query, after: true, column: changed))
                }
            }
        } catch let error as ReindexError {
            throw error
        } catch let error as DatabaseError {
            throw ReindexError.sourceQuery(source: source.name, detail: "the query does not compile (got SQLite: \(error.message ?? "\(error)")) — fix it in the job file; it must be a SELECT returning id and text")
        }
    }

    /// The error when `changed-column` is not a column of the query.
    static func noChangedColumn(_ changed: String, columns: [String]) -> String {
        "changed-column: the query has no column named \"\(changed)\" (got \(columns.joined(separator: ", "))) — return it from the query, e.g. `SELECT id, body AS text, \"updatedAt\" AS \(changed) FROM …`, or remove the key"
    }

    static func trimmed(_ query: String) -> String {
        var q = query.trimmingCharacters(in: .whitespacesAndNewlines)
        while q.hasSuffix(";") { q.removeLast(); q = q.trimmingCharacters(in: .whitespacesAndNewlines) }
        return q
    }

    /// One keyset page: `id`, `text` (only when it is at most the first
    /// argument's bytes: a larger one never reaches this process), its size,
    /// the attribute columns (cast when the job declares a type) and the
    /// filter's flag; the filter's condition narrows the rows. Arguments:
    /// the byte limit, the flag's, the condition's, the key, the limit.
    static func pageSQL(_ query: String, after: Bool, attributes: [AttributeSpec] = [], filter: ScanFilter = .all) -> String {
        let extra = attributeColumns(attributes) + (filter.sqliteFlag.map { ", \($0.sql)" } ?? "")
        let conditions = [filter.sqliteCondition?.sql, after ? "id > ?" : nil].compactMap { $0 }
        return """
            SELECT id, CASE WHEN length(CAST(text AS BLOB)) <= ? THEN text END, length(CAST(text AS BLOB))\(extra)
            FROM (\n\(trimmed(query))\n) \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")) ORDER BY id LIMIT ?
            """
    }

    /// The attribute columns of a page, each cast when the job declares a type.
    static func attributeColumns(_ attributes: [AttributeSpec]) -> String {
        attributes.map { a in a.type.map { ", CAST(\(a.name) AS \($0.rawValue.uppercased()))" } ?? ", \(a.name)" }.joined()
    }

    /// One keyset page of the id pass: the ids of rows with a text that is
    /// not blank (a text over 64 bytes is not read to tell; the scan's own
    /// test, `isBlank`, stays the authority for the rows it reads), each
    /// with 1 when its `column` is at or past the watermark. Arguments: the
    /// watermark, the key, the limit. Every page reads at most `limit` rows
    /// of the query whatever changed, so its read transaction stays short
    /// with or without an index on the column.
    static func idPageSQL(_ query: String, after: Bool, column: String) -> String {
        let nonBlank = "CASE WHEN text IS NULL THEN 0 WHEN length(CAST(text AS BLOB)) > 64 THEN 1 ELSE trim(CAST(text AS TEXT), ' ' || char(9, 10, 11, 12, 13)) <> '' END"
        return """
            SELECT id, CASE WHEN \(Watermark.identifier(column)) >= ? THEN 1 ELSE 0 END FROM (\n\(trimmed(query))\n)
            WHERE \(after ? "id > ? AND " : "")\(nonBlank) ORDER BY id LIMIT ?
            """
    }

    /// Bytes of row text one page holds at most (a page stops early past it;
    /// a single larger row is still read, up to `max-row-bytes`): with 5 MB
    /// rows a page is 3 rows, not 1,000.
    static let pageBytes = 16 << 20

    /// Scans one source page by page; `consume` receives each page's eligible
    /// rows (outside any read transaction) and may write them elsewhere.
    public func scan(_ source: JobConfig.Source, model: ModelConfig, maxRowBytes: Int, filter: ScanFilter,
                     consume: ([ScannedRow]) async throws -> Void) async throws -> ScanCounts {
        var counts = ScanCounts()
        var last: DatabaseValue? = nil
        var pageSize = 1000
        let firstSQL = Self.pageSQL(source.query, after: false, attributes: source.attributes, filter: filter)
        let nextSQL = Self.pageSQL(source.query, after: true, attributes: source.attributes, filter: filter)
        let filterArguments = StatementArguments((filter.sqliteFlag?.values ?? []) + (filter.sqliteCondition?.values ?? []))
        let width = source.attributes.count
        let flags = filter.sqliteFlag != nil
        var nullIDs = 0
        while true {
            try Task.checkCancellation()
            let limit = pageSize
            let after = last
            let started = ContinuousClock.now
            let page: [(id: DatabaseValue, text: DatabaseValue, bytes: Int, attributes: [DatabaseValue])]
            var more = false
            do {
                (page, more) = try await Self.retryingBusy { try await queue.read { db in
                    let rows = after == nil
                        ? try Row.fetchCursor(db, sql: firstSQL, arguments: [maxRowBytes] + filterArguments + [limit])
                        : try Row.fetchCursor(db, sql: nextSQL, arguments: [maxRowBytes] + filterArguments + [after!, limit])
                    var out: [(id: DatabaseValue, text: DatabaseValue, bytes: Int, attributes: [DatabaseValue])] = []
                    var held = 0
                    while let row = try rows.next() {
                        let bytes: Int = row[2] ?? 0
                        // The flag rides last among the attributes, split off below.
                        out.append((row[0], row[1], bytes, width == 0 && !flags ? [] : (0..<(width + (flags ? 1 : 0))).map { row[3 + $0] as DatabaseValue }))
                        held += min(bytes, maxRowBytes)
                        if held >= Self.pageBytes { return (out, true) }
                    }
                    return (out, out.count == limit)
                } }
            } catch let error as DatabaseError {
                throw ReindexError.sourceQuery(source: source.name, detail: "reading a page failed (got SQLite: \(error.message ?? "\(error)")) — check the primary with `sqlite3 PRIMARY 'PRAGMA quick_check'`; nothing was published, rerun to resume")
            }
            let elapsed = ContinuousClock.now - started
            stats.record(elapsed)
            // Keep each read transaction short whatever the row sizes are.
            if elapsed > .milliseconds(40) { pageSize = max(50, pageSize / 2) } else if elapsed < .milliseconds(10) { pageSize = min(4000, pageSize * 2) }

            var rows: [ScannedRow] = []
            rows.reserveCapacity(page.count)
            for (id, text, bytes, values) in page {
                counts.scanned += 1
                guard let sourceID = Self.idString(id) else { nullIDs += 1; counts.skipped += 1; continue }
                if var row = Self.scannedRow(source: source.name, sourceID: sourceID, text: Self.textString(text), bytes: bytes,
                                             attributes: Array(values.prefix(width)), model: model, maxRowBytes: maxRowBytes, counts: &counts, logger: logger) {
                    if flags { row.flagged = values[width] == 1.databaseValue }
                    rows.append(row)
                }
            }
            if !rows.isEmpty { try await consume(rows) }
            guard more, let tail = page.last?.id else { break }
            last = tail
        }
        if nullIDs > 0 {
            logger.warning("rows with a NULL id were skipped", metadata: ["source": "\(source.name)", "rows": "\(nullIDs)"])
        }
        return counts
    }

    /// The id pass straight into the run's staging file, in SQL: each page
    /// of ids is one statement (`stagePages`). Measured at 1M messages:
    /// SQLite returns the 970,000 ids in 0.25 s, and fetching them into
    /// Swift and staging them one by one took about 2 s more.
    public func stageIDs(_ source: JobConfig.Source, since: Watermark, work: WorkFile) async throws -> Int {
        var total = 0
        try await stagePages(source, work: work, what: "ids", page: "page(raw, flagged)",
                             select: { "INSERT INTO temp.page(raw, flagged) " + Self.idPageSQL(source.query, after: $0, column: since.column) },
                             leading: [since.databaseValue],
                             stage: { db in try StagingArea.stagePage(db, source: source.name) },
                             counted: { read, _ in total += read })
        return total
    }

    /// The hash pass of a run that applies its delta to a clone of the live
    /// file: SQLite hashes every row's model input itself (`reindex_row_hash`,
    /// the scan's own hash of the same text, `plainHash`) and the page goes
    /// to `scan.ids` with its ids and attributes in SQL, so no row is decoded
    /// into Swift values or staged with its text. A row the function leaves
    /// unhashed (cut to `max-input-chars`, over `max-row-bytes`, not text,
    /// or with a real id) is staged without a hash, and the scan reads it in
    /// full with the rows that changed; a blank one is skipped here. Measured
    /// at 1M messages: about 2.5 s for the 980,000 rows (read and hashed in
    /// 1.3–1.5 s, staged in 1.1 s), where the scan in Swift took 6.1 s.
    public func stageHashes(_ source: JobConfig.Source, model: ModelConfig, maxRowBytes: Int, work: WorkFile) async throws -> ScanCounts? {
        let columns = source.attributes.map { ", " + StagingArea.column($0.name) }.joined()
        var counts = ScanCounts()
        var nullIDs = 0
        try await stagePages(source, work: work, what: "hashes", page: "hash_page(raw, has_text, hash\(columns))",
                             select: { "INSERT INTO temp.hash_page(raw, has_text, hash\(columns)) " + Self.hashPageSQL(source.query, after: $0, attributes: source.attributes) },
                             leading: [maxRowBytes.databaseValue],
                             setup: { db in try Self.addRowHashFunction(db, model: model) },
                             stage: { db in try StagingArea.stageHashPage(db, source: source.name, attributes: source.attributes) },
                             counted: { read, skipped in
                                 counts.scanned += read
                                 counts.skipped += skipped.nullIDs + skipped.noText
                                 nullIDs += skipped.nullIDs
                             })
        if nullIDs > 0 {
            logger.warning("rows with a NULL id were skipped", metadata: ["source": "\(source.name)", "rows": "\(nullIDs)"])
        }
        return counts
    }

    /// One keyset page of the hash pass: `id`, whether `text` is not NULL,
    /// its hash (`reindex_row_hash`, only for a text of at most the first
    /// argument's bytes) and the attribute columns as the scan reads them.
    /// Arguments: the byte limit, the key, the limit.
    static func hashPageSQL(_ query: String, after: Bool, attributes: [AttributeSpec]) -> String {
        """
        SELECT id, text IS NOT NULL, CASE WHEN length(CAST(text AS BLOB)) <= ? THEN reindex_row_hash(text) END\(attributeColumns(attributes))
        FROM (\n\(trimmed(query))\n) \(after ? "WHERE id > ? " : "")ORDER BY id LIMIT ?
        """
    }

    /// Registers `reindex_row_hash(text)` on the hash pass's connection: the
    /// row's hash as the scan computes it, 0 for a blank text (skipped, as
    /// the scan skips it), or NULL when the row needs the scan in Swift.
    static func addRowHashFunction(_ db: Database, model: ModelConfig) throws {
        let prefix = Array(model.prefix.utf8)
        let limit = model.maxInputChars
        try SQLiteC.addTextFunction(db, name: "reindex_row_hash") { text, result in
            guard let text else { return result.null() }
            switch rowHash(text, prefix: prefix, maxInputChars: limit) {
            case .hash(let digest): digest.withUnsafeBytes { result.blob($0) }
            case .blank: result.integer(0)
            case .needsScan: result.null()
            }
        }
    }

    /// What the hash pass makes of a text.
    enum PlainHash: Equatable {
        /// `hash(modelInput(text))`, computed without building the input.
        case hash(SHA256.Digest)
        /// Blank: the scan skips the row.
        case blank
        /// Cut to `max-input-chars`: the scan in Swift cuts, counts and reports it.
        case needsScan
    }

    /// The hash pass's view of one text value, read where SQLite keeps it:
    /// ASCII without a NUL (most rows of most corpora) is hashed from those
    /// bytes, which are exactly the UTF-8 of the string the scan makes, one
    /// scalar each; any other text goes through that very string
    /// (`plainHash`), so both paths agree by construction.
    static func rowHash(_ text: SQLiteC.Text, prefix: [UInt8], maxInputChars: Int) -> PlainHash {
        let bytes = text.bytes
        guard isPlainASCII(bytes) else { return plainHash(text.string, prefix: prefix, maxInputChars: maxInputChars) }
        // Unicode's White_Space among ASCII: tab, line feed, vertical tab, form feed, carriage return, space.
        guard bytes.contains(where: { $0 != 0x20 && !(0x09...0x0D).contains($0) }) else { return .blank }
        if bytes.count > maxInputChars { return .needsScan }
        var hasher = SHA256()
        hasher.update(data: prefix)
        hasher.update(bufferPointer: bytes)
        return .hash(hasher.finalize())
    }

    /// Whether every byte is ASCII and none is NUL, 8 bytes at a time.
    static func isPlainASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let high: UInt64 = 0x8080_8080_8080_8080, ones: UInt64 = 0x0101_0101_0101_0101
        var i = 0
        while i + 8 <= bytes.count {
            let w = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            // A byte ≥ 0x80, or a zero byte ((w - 0x01…) & ~w & 0x80… is non-zero exactly then).
            if w & high != 0 || (w &- ones) & ~w & high != 0 { return false }
            i += 8
        }
        while i < bytes.count {
            if bytes[i] == 0 || bytes[i] >= 0x80 { return false }
            i += 1
        }
        return true
    }

    /// The scan's hash of a text it would stage as it is, hashed without
    /// building the model input.
    static func plainHash(_ text: String, prefix: [UInt8], maxInputChars: Int) -> PlainHash {
        guard !isBlank(text) else { return .blank }
        if text.utf8.count > maxInputChars && text.unicodeScalars.count > maxInputChars { return .needsScan }
        var hasher = SHA256()
        hasher.update(data: prefix)
        var text = text
        text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return .hash(hasher.finalize())
    }

    /// The id and hash passes: a second connection opens the primary
    /// read-only (`mode=ro`: the main database of the connection, so the
    /// query's tables resolve to the primary's) and attaches the run's
    /// staging file; each page is one `INSERT … SELECT` into the temporary
    /// `page` (one short read transaction, recorded as the scan's are),
    /// then `stage` moves it into `scan` outside the read; `counted` gets
    /// the rows read and what `stage` returned.
    private func stagePages<T: Sendable>(_ source: JobConfig.Source, work: WorkFile, what: String, page: String,
                                         select: (Bool) -> String, leading: [DatabaseValue], setup: (@Sendable (Database) throws -> Void)? = nil,
                                         stage: @escaping @Sendable (Database) throws -> T, counted: (Int, T) -> Void) async throws {
        guard let scanPath = work.scanPath else {
            throw ReindexError.internal("the id and hash passes need the run's staging file (got a work file without one) — report it")
        }
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.label = "primary-\(what)"
        let firstSQL = select(false), nextSQL = select(true)
        let table = String(page.prefix(while: { $0 != "(" }))
        do {
            let ids = try DatabaseQueue(path: LiveFile.uri(readOnly: path), configuration: config)
            defer { try? ids.close() }
            try await ids.writeWithoutTransaction { db in
                try setup?(db)
                try db.execute(sql: "ATTACH DATABASE ? AS scan", arguments: [scanPath])
                try db.execute(sql: "PRAGMA scan.journal_mode = OFF; PRAGMA scan.synchronous = OFF; PRAGMA temp_store = MEMORY; CREATE TEMP TABLE \(page)")
            }
            var last: DatabaseValue? = nil
            var pageSize = 1000
            while true {
                try Task.checkCancellation()
                let (limit, after) = (pageSize, last)
                let (read, elapsed, tail, staged): (Int, Duration, DatabaseValue?, T) = try await Self.retryingBusy { try await ids.writeWithoutTransaction { db in
                    // The one statement that reads the primary: rows go to a temporary table in key order.
                    let started = ContinuousClock.now
                    try db.execute(sql: after == nil ? firstSQL : nextSQL, arguments: StatementArguments(leading + (after.map { [$0] } ?? []) + [limit.databaseValue]))
                    let elapsed = ContinuousClock.now - started
                    let read = db.changesCount
                    let tail = try DatabaseValue.fetchOne(db, sql: "SELECT raw FROM temp.\(table) ORDER BY rowid DESC LIMIT 1")
                    return (read, elapsed, tail, try stage(db))
                } }
                stats.record(elapsed)
                if elapsed > .milliseconds(40) { pageSize = max(50, pageSize / 2) } else if elapsed < .milliseconds(10) { pageSize = min(16000, pageSize * 2) }
                counted(read, staged)
                guard read == limit, let tail, !tail.isNull else { return }
                last = tail
            }
        } catch let error as DatabaseError {
            throw ReindexError.sourceQuery(source: source.name, detail: "reading a page of \(what) failed (got SQLite: \(error.message ?? "\(error)")) — check the primary with `sqlite3 PRIMARY 'PRAGMA quick_check'`; nothing was published, rerun")
        }
    }

    /// The highest `changed-column` value, in one statement (an index on the
    /// column makes it instant; without one it reads the table once, and the
    /// read transaction it holds is recorded like any other).
    public func watermark(_ source: JobConfig.Source) throws -> Watermark? {
        guard let column = source.changedColumn else { return nil }
        let started = ContinuousClock.now
        defer { stats.record(ContinuousClock.now - started) }
        do {
            let value = try Self.retryingBusy { try queue.read { db in
                try DatabaseValue.fetchOne(db, sql: "SELECT max(\(Watermark.identifier(column))) FROM (\n\(Self.trimmed(source.query))\n)")
            } }
            return value.flatMap { Watermark(column: column, $0) }
        } catch let error as DatabaseError {
            throw ReindexError.sourceQuery(source: source.name, detail: "reading max(\(column)) failed (got SQLite: \(error.message ?? "\(error)")) — check the query and the column; nothing was published, rerun")
        }
    }

    /// One scanned row as both primaries make it: a text over `maxRowBytes`
    /// (not loaded) is an oversized row recorded as failed; a blank text is
    /// skipped (nil); a text over `max-input-chars` is cut, counted and named.
    static func scannedRow(source: String, sourceID: String, text: String?, bytes: Int, attributes: [DatabaseValue],
                           model: ModelConfig, maxRowBytes: Int, counts: inout ScanCounts, logger: Logger) -> ScannedRow? {
        if bytes > maxRowBytes {
            counts.oversized += 1
            logger.warning("a row larger than max-row-bytes was not loaded; recorded in failures",
                           metadata: ["source": "\(source)", "id": "\(sourceID)", "bytes": "\(bytes)", "max_row_bytes": "\(maxRowBytes)"])
            return ScannedRow(sourceID: sourceID, hash: Data(count: 32), input: "", truncated: false, attributes: attributes, oversizedBytes: bytes)
        }
        guard let raw = text, !isBlank(raw) else { counts.skipped += 1; return nil }
        let (input, truncated) = modelInput(raw, model: model)
        if truncated {
            counts.truncated += 1
            logger.warning("a row longer than model.max-input-chars was cut to it; raise the key if the rest matters",
                           metadata: ["source": "\(source)", "id": "\(sourceID)", "max_input_chars": "\(model.maxInputChars)"])
        }
        return ScannedRow(sourceID: sourceID, hash: hash(input), input: input, truncated: truncated, attributes: attributes)
    }

    /// The text of one row (for showing search results): the source query
    /// filtered to `id`, in one short read. Ids are stored as text, so a
    /// numeric id is tried as an integer first, then as text.
    public func text(_ source: JobConfig.Source, id: String) throws -> String? {
        let sql = "SELECT text FROM (\n\(Self.trimmed(source.query))\n) WHERE id = ? LIMIT 1"
        do {
            return try queue.read { db in
                if let n = Int64(id), String(n) == id, let value = try DatabaseValue.fetchOne(db, sql: sql, arguments: [n]) {
                    return Self.textString(value)
                }
                return try DatabaseValue.fetchOne(db, sql: sql, arguments: [id]).flatMap(Self.textString)
            }
        } catch let error as DatabaseError {
            throw ReindexError.sourceQuery(source: source.name, detail: "reading one row failed (got SQLite: \(error.message ?? "\(error)")) — check the primary with `sqlite3 PRIMARY 'PRAGMA quick_check'`")
        }
    }

    /// Runs a read again when SQLite answers SQLITE_BUSY without waiting: a
    /// reader that meets the application's writer in the middle of a
    /// rollback-journal commit can be refused before the busy handler runs
    /// (seen once in 205 test runs while a writer committed every 5 ms).
    /// Bounded: 50 tries over about 5 s, then the error stands.
    static func retryingBusy<T>(_ read: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try read()
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && attempt < 50 {
                attempt += 1
                usleep(useconds_t(min(200_000, 2_000 * attempt)))
            }
        }
    }

    /// `retryingBusy` for the scan's async reads (no thread is blocked while waiting).
    static func retryingBusy<T>(_ read: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await read()
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && attempt < 50 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(min(200, 2 * attempt)))
            }
        }
    }

    /// The primary's journal mode (`doctor`), read without changing it.
    public func journalMode() throws -> String? {
        try queue.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
    }

    /// Source ids are stored as text whatever their SQLite type.
    static func idString(_ value: DatabaseValue) -> String? {
        switch value.storage {
        case .null: return nil
        case .int64(let i): return String(i)
        case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .string(let s): return s
        case .blob(let b): return b.map { String(format: "%02x", $0) }.joined()
        }
    }

    static func textString(_ value: DatabaseValue) -> String? {
        switch value.storage {
        case .null: return nil
        case .string(let s): return s
        case .int64(let i): return String(i)
        case .double(let d): return String(d)
        case .blob(let b): return String(decoding: b, as: UTF8.self)
        }
    }

    static func isBlank(_ s: String) -> Bool {
        for scalar in s.unicodeScalars where !scalar.properties.isWhitespace { return false }
        return true
    }

    /// The exact model input: `prefix` + text cut to `max-input-chars` Unicode scalars.
    public static func modelInput(_ text: String, model: ModelConfig) -> (String, Bool) {
        let limit = model.maxInputChars
        if text.utf8.count <= limit { return (model.prefix + text, false) }
        let scalars = text.unicodeScalars
        guard scalars.count > limit else { return (model.prefix + text, false) }
        let end = scalars.index(scalars.startIndex, offsetBy: limit)
        return (model.prefix + String(scalars[..<end]), true)
    }

    public static func hash(_ input: String) -> Data {
        var copy = input
        return copy.withUTF8 { Data(SHA256.hash(data: UnsafeRawBufferPointer($0))) }
    }
}
