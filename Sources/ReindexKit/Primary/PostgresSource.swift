import CPostgres
import Foundation
import GRDB
import Logging

/// A PostgreSQL primary (`primary: postgresql://…`, issue 16), read through
/// libpq strictly read-only and in short transactions, exactly as
/// `SourceScanner` reads an SQLite file (DESIGN.md invariants 1, 2 and 8):
///
/// - the session is opened with `default_transaction_read_only=on`, and
///   every page is its own `BEGIN READ ONLY … COMMIT`: no transaction spans
///   pages, and a `statement_timeout`, `lock_timeout` and
///   `idle_in_transaction_session_timeout` bound what one page can hold;
/// - the source queries are keyset-paged the same way
///   (`SELECT id, text, … FROM (<query>) q WHERE id > $1 ORDER BY id LIMIT $2`,
///   parameters bound), ids and text converted as SQLite's are (ids as text);
/// - the password comes from libpq's own sources (the URI, `PGPASSWORD`,
///   `.pgpass`, a service file) and is never shown: every message names the
///   primary by `PrimaryLocation.display`.
///
/// This is the one Swift file that imports libpq; its pointers stay in
/// `Connection`. libpq blocks, so every call runs on the connection's own
/// serial queue, never on Swift's cooperative pool.
public final class PostgresSource: PrimarySource {
    /// The URI as messages show it (no password).
    public let display: String
    public let stats = ScanStats()
    private let connection: Connection
    private let logger: Logger

    /// Session settings passed at connect time (libpq `options`), so they hold
    /// before the first statement: read-only, and bounded waits.
    static let sessionOptions = "-c default_transaction_read_only=on -c statement_timeout=30000 -c lock_timeout=5000 -c idle_in_transaction_session_timeout=10000"

    public init(uri: String, logger: Logger) throws {
        display = PrimaryLocation.display(uri)
        self.logger = logger
        connection = try Connection(uri: uri, display: display)
        // Also for poolers that drop startup options.
        try connection.exec("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", what: "setting the session read-only")
    }

    /// Connects and checks every source query before any work.
    public convenience init(job: JobConfig, logger: Logger) throws {
        try self.init(uri: job.primary, logger: logger)
        for source in job.sources { try validate(source) }
    }

    /// Refuses, before any work, a query that does not compile or lacks
    /// `id`/`text` or an attribute column. The server checks it inside a
    /// read-only transaction; a query that writes cannot run in one.
    public func validate(_ source: JobConfig.Source) throws {
        let columns: [String]
        do {
            columns = try connection.readOnly { c in
                try c.columns("SELECT * FROM (\n\(SourceScanner.trimmed(source.query))\n) q LIMIT 0")
            }
        } catch Connection.Failure.statement(let message) {
            throw ReindexError.sourceQuery(source: source.name, detail: "the query does not compile on PostgreSQL \(display) (got: \(message)) — fix it in the job file; it must be a SELECT returning id and text")
        }
        for needed in ["id", "text"] where !columns.contains(needed) {
            throw ReindexError.sourceQuery(source: source.name, detail: "the query has no column named \"\(needed)\" (got \(columns.joined(separator: ", "))); alias it, e.g. `SELECT id, body AS text FROM …`")
        }
        for attribute in source.attributes where !columns.contains(where: { $0.lowercased() == attribute.name.lowercased() }) {
            throw ReindexError.sourceQuery(source: source.name, detail: "attributes.\(attribute.name): the query has no column named \"\(attribute.name)\" (got \(columns.joined(separator: ", "))); expected one for each declared attribute — alias it, e.g. `\"roomId\" AS \(attribute.name)`, or `NULL AS \(attribute.name)` where the source has no value")
        }
        if let changed = source.changedColumn, !columns.contains(changed) {
            throw ReindexError.sourceQuery(source: source.name, detail: SourceScanner.noChangedColumn(changed, columns: columns))
        }
    }

    /// One keyset page, as `SourceScanner.pageSQL` but with PostgreSQL's
    /// parameters and types (`real` is `double precision` here).
    /// The text comes only when it is at most `maxRowBytes` (a larger one never
    /// leaves the server); the filter's flag follows the attributes, and the
    /// text's size is the last column. Parameters: the key and the limit
    /// (`$1`, `$2`, or `$1` alone on the first page), then the filter's.
    static func pageSQL(_ query: String, after: Bool, attributes: [AttributeSpec] = [], maxRowBytes: Int = 64 << 20, filter: ScanFilter = .all) -> String {
        let extra = attributes.map { a -> String in
            guard let type = a.type else { return ", \(a.name)" }
            switch type {
            case .integer: return ", CAST(\(a.name) AS bigint)"
            case .real: return ", CAST(\(a.name) AS double precision)"
            case .text: return ", CAST(\(a.name) AS text)"
            }
        }.joined()
        let next = after ? 3 : 2
        let flag = filter.postgresFlag(next).map { ", \($0.sql)" } ?? ""
        let condition = filter.postgresCondition(first: next + (filter.postgresFlag(next) == nil ? 0 : 1))?.sql
        let conditions = [after ? "id > $1" : nil, condition].compactMap { $0 }
        return """
            SELECT id, CASE WHEN octet_length(text::text) <= \(maxRowBytes) THEN text END\(extra)\(flag), octet_length(text::text)
            FROM (\n\(SourceScanner.trimmed(query))\n) q \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")) ORDER BY id LIMIT $\(after ? 2 : 1)
            """
    }

    public func scan(_ source: JobConfig.Source, model: ModelConfig, maxRowBytes: Int, filter: ScanFilter,
                     consume: ([ScannedRow]) async throws -> Void) async throws -> ScanCounts {
        var counts = ScanCounts()
        var last: String? = nil
        var pageSize = 1000
        let firstSQL = Self.pageSQL(source.query, after: false, attributes: source.attributes, maxRowBytes: maxRowBytes, filter: filter)
        let nextSQL = Self.pageSQL(source.query, after: true, attributes: source.attributes, maxRowBytes: maxRowBytes, filter: filter)
        let filterValues = (filter.postgresFlag(0)?.values ?? []) + (filter.postgresCondition(first: 0)?.values ?? [])
        let (width, flags) = (source.attributes.count, filter.postgresFlag(0) != nil)
        var nullIDs = 0
        while true {
            try Task.checkCancellation()
            let limit = pageSize
            let after = last
            let started = ContinuousClock.now
            let page: [Connection.Row]
            do {
                page = try await connection.onQueue { c in
                    try c.readOnly { c in
                        after == nil ? try c.rows(firstSQL, [String(limit)] + filterValues, sizedPage: true)
                            : try c.rows(nextSQL, [after!, String(limit)] + filterValues, sizedPage: true)
                    }
                }
            } catch Connection.Failure.statement(let message) {
                throw ReindexError.sourceQuery(source: source.name, detail: "reading a page from PostgreSQL \(display) failed (got: \(message)) — check the server and the query; nothing was published, rerun to resume")
            }
            let elapsed = ContinuousClock.now - started
            stats.record(elapsed)
            if elapsed > .milliseconds(40) { pageSize = max(50, pageSize / 2) } else if elapsed < .milliseconds(10) { pageSize = min(4000, pageSize * 2) }
            // libpq holds a whole page: the next one is sized to the byte budget by this one's rows.
            let held = page.reduce(0) { $0 + min($1.bytes ?? 0, maxRowBytes) }
            if held > SourceScanner.pageBytes { pageSize = max(1, page.count * SourceScanner.pageBytes / held) }

            var rows: [ScannedRow] = []
            rows.reserveCapacity(page.count)
            for row in page {
                counts.scanned += 1
                guard let sourceID = row.id else { nullIDs += 1; counts.skipped += 1; continue }
                if var scanned = SourceScanner.scannedRow(source: source.name, sourceID: sourceID, text: row.text, bytes: row.bytes ?? 0,
                                                          attributes: Array(row.attributes.prefix(width)), model: model, maxRowBytes: maxRowBytes,
                                                          counts: &counts, logger: logger) {
                    // The flag rides after the attributes (an int4: "1" or "0").
                    if flags { scanned.flagged = row.attributes[width] == 1.databaseValue }
                    rows.append(scanned)
                }
            }
            if !rows.isEmpty { try await consume(rows) }
            guard page.count == limit, let tail = page.last?.rawID else { break }
            last = tail
        }
        if nullIDs > 0 {
            logger.warning("rows with a NULL id were skipped", metadata: ["source": "\(source.name)", "rows": "\(nullIDs)"])
        }
        return counts
    }

    /// PostgreSQL does not run the scan's hash (`SourceScanner.plainHash`)
    /// on the server: every row is read.
    public func stageHashes(_ source: JobConfig.Source, model: ModelConfig, maxRowBytes: Int, work: WorkFile) async throws -> ScanCounts? { nil }

    /// The id pass, as `SourceScanner.stageIDs`: rows whose text has a
    /// non-space character, ids exactly as the server wrote them, each
    /// flagged by the server when its column is at or past `since`, fetched
    /// page by page and staged.
    public func stageIDs(_ source: JobConfig.Source, since: Watermark, work: WorkFile) async throws -> Int {
        let body = "FROM (\n\(SourceScanner.trimmed(source.query))\n) q WHERE text IS NOT NULL AND text::text ~ '[^[:space:]]'"
        let flag = { (n: Int) in "CASE WHEN \(Watermark.identifier(since.column)) >= $\(n) THEN 1 ELSE 0 END" }
        let firstSQL = "SELECT id, NULL, \(flag(2)) \(body) ORDER BY id LIMIT $1"
        let nextSQL = "SELECT id, NULL, \(flag(3)) \(body) AND id > $1 ORDER BY id LIMIT $2"
        var last: String? = nil
        var pageSize = 1000
        var total = 0
        while true {
            try Task.checkCancellation()
            let (limit, after, started) = (pageSize, last, ContinuousClock.now)
            let page: [Connection.Row]
            do {
                page = try await connection.onQueue { c in
                    try c.readOnly { c in
                        after == nil ? try c.rows(firstSQL, [String(limit), since.value]) : try c.rows(nextSQL, [after!, String(limit), since.value])
                    }
                }
            } catch Connection.Failure.statement(let message) {
                throw ReindexError.sourceQuery(source: source.name, detail: "reading a page of ids from PostgreSQL \(display) failed (got: \(message)) — check the server and the query; nothing was published, rerun")
            }
            let elapsed = ContinuousClock.now - started
            stats.record(elapsed)
            if elapsed > .milliseconds(40) { pageSize = max(50, pageSize / 2) } else if elapsed < .milliseconds(10) { pageSize = min(16000, pageSize * 2) }
            let ids = page.compactMap { row in row.rawID.map { FlaggedID(raw: $0.databaseValue, flagged: row.attributes.first == 1.databaseValue) } }
            total += ids.count
            if !ids.isEmpty { try await work.stage(source: source.name, ids: ids) }
            guard page.count == limit, let tail = page.last?.rawID else { return total }
            last = tail
        }
    }

    /// The highest `changed-column` value, as `SourceScanner.watermark`; one
    /// statement in its own read-only transaction (MVCC: writers go on).
    public func watermark(_ source: JobConfig.Source) throws -> Watermark? {
        guard let column = source.changedColumn else { return nil }
        let sql = "SELECT NULL, max(\(Watermark.identifier(column)))::text FROM (\n\(SourceScanner.trimmed(source.query))\n) q"
        let started = ContinuousClock.now
        defer { stats.record(ContinuousClock.now - started) }
        do {
            let value = try connection.onQueueSync { c in try c.readOnly { c in try c.rows(sql, []).first?.text } }
            return value.map { Watermark(column: column, kind: .text, value: $0) }
        } catch Connection.Failure.statement(let message) {
            throw ReindexError.sourceQuery(source: source.name, detail: "reading max(\(column)) from PostgreSQL \(display) failed (got: \(message)) — check the query and the column; nothing was published, rerun")
        }
    }

    public func text(_ source: JobConfig.Source, id: String) throws -> String? {
        // The parameter takes the id column's type, so an index on it is used.
        let sql = "SELECT id, text FROM (\n\(SourceScanner.trimmed(source.query))\n) q WHERE id = $1 LIMIT 1"
        do {
            return try connection.onQueueSync { c in try c.readOnly { c in try c.rows(sql, [id]).first?.text } }
        } catch Connection.Failure.statement(let message) {
            throw ReindexError.sourceQuery(source: source.name, detail: "reading one row from PostgreSQL \(display) failed (got: \(message)) — check the server and the query")
        }
    }
}

extension PostgresSource {
    /// One libpq connection; its pointer never leaves this type.
    final class Connection: @unchecked Sendable {
        enum Failure: Error { case statement(String) }

        /// One row of a page: the id as text (nil for NULL), the id exactly as
        /// the server wrote it (the next page's key), the text, the attributes.
        struct Row: Sendable {
            var id: String?
            var rawID: String?
            var text: String?
            var attributes: [DatabaseValue]
            /// The text's size in bytes (scan pages only).
            var bytes: Int? = nil
        }

        private let conn: OpaquePointer
        private let queue = DispatchQueue(label: "reindex.postgres")

        init(uri: String, display: String) throws {
            let keywords = ["dbname", "options", "application_name", "connect_timeout"]
            let values = [uri, PostgresSource.sessionOptions, "reindex", "10"]
            let conn: OpaquePointer? = withCStrings(keywords) { k in
                withCStrings(values) { v in PQconnectdbParams(k, v, 1) }
            }
            guard let conn else {
                throw ReindexError.primary(path: display, detail: "cannot connect to PostgreSQL (got: out of memory in libpq)")
            }
            guard PQstatus(conn) == CONNECTION_OK else {
                let message = Self.clean(PQerrorMessage(conn), uri: uri)
                PQfinish(conn)
                throw ReindexError.primary(path: display, detail: "cannot connect to PostgreSQL (got: \(message)) — check the URI in `primary`; the password comes from PGPASSWORD, ~/.pgpass or a service file")
            }
            self.conn = conn
        }

        deinit { PQfinish(conn) }

        /// Runs `body` on the connection's queue, off Swift's cooperative pool.
        func onQueue<T: Sendable>(_ body: @escaping @Sendable (Connection) throws -> T) async throws -> T {
            try await withCheckedThrowingContinuation { continuation in
                queue.async { continuation.resume(with: Result { try body(self) }) }
            }
        }

        /// Runs `body` on the connection's queue and waits (search's single reads).
        func onQueueSync<T>(_ body: (Connection) throws -> T) throws -> T {
            try queue.sync { try body(self) }
        }

        /// `body` inside one `BEGIN READ ONLY … COMMIT` (rolled back on error).
        func readOnly<T>(_ body: (Connection) throws -> T) throws -> T {
            try exec("BEGIN READ ONLY", what: "BEGIN READ ONLY")
            do {
                let value = try body(self)
                try exec("COMMIT", what: "COMMIT")
                return value
            } catch {
                try? exec("ROLLBACK", what: "ROLLBACK")
                throw error
            }
        }

        func exec(_ sql: String, what: String) throws {
            let result = PQexec(conn, sql)
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_COMMAND_OK else { throw Failure.statement(message(result)) }
        }

        /// Column names of a query (run with LIMIT 0 by the caller).
        func columns(_ sql: String) throws -> [String] {
            let result = PQexec(conn, sql)
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_TUPLES_OK else { throw Failure.statement(message(result)) }
            return (0..<PQnfields(result)).map { String(cString: PQfname(result, $0)) }
        }

        /// Rows of `sql` with text parameters: column 0 the id, 1 the text, the rest attributes.
        func rows(_ sql: String, _ parameters: [String], sizedPage: Bool = false) throws -> [Row] {
            let result: OpaquePointer? = withCStrings(parameters) { p in
                PQexecParams(conn, sql, Int32(parameters.count), nil, p, nil, nil, 0)
            }
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_TUPLES_OK else { throw Failure.statement(message(result)) }
            let n = PQntuples(result), width = PQnfields(result)
            let types = (0..<width).map { PQftype(result, $0) }
            func value(_ r: Int32, _ c: Int32) -> String? {
                PQgetisnull(result, r, c) == 1 ? nil : String(cString: PQgetvalue(result, r, c))
            }
            var out: [Row] = []
            out.reserveCapacity(Int(n))
            for r in 0..<n {
                let raw = value(r, 0)
                // id, text, the attributes, and (in scan pages) the text's size last.
                let sized = sizedPage && width >= 3
                let attributeEnd = sized ? width - 1 : width
                out.append(Row(id: raw.map { Self.idString($0, type: types[0]) }, rawID: raw,
                               text: value(r, 1).map { Self.textString($0, type: types[1]) },
                               attributes: attributeEnd <= 2 ? [] : (2..<attributeEnd).map { Self.databaseValue(value(r, $0), type: types[Int($0)]) },
                               bytes: sized ? value(r, width - 1).flatMap { Int($0) } : nil))
            }
            return out
        }

        private func message(_ result: OpaquePointer?) -> String {
            let text = result.map { String(cString: PQresultErrorMessage($0)) } ?? ""
            let chosen = text.isEmpty ? String(cString: PQerrorMessage(conn)) : text
            return chosen.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "; ")
        }

        /// libpq's message on one line, with the URI's password removed should libpq ever echo it.
        private static func clean(_ message: UnsafePointer<CChar>?, uri: String) -> String {
            var text = message.map { String(cString: $0) } ?? "unknown error"
            text = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: "; ")
            if uri != PrimaryLocation.display(uri) { text = text.replacingOccurrences(of: uri, with: PrimaryLocation.display(uri)) }
            return text
        }

        // Type OIDs (pg_type.h): how values are converted to SQLite's storage classes.
        private static let bool: Oid = 16, bytea: Oid = 17, int8: Oid = 20, int2: Oid = 21, int4: Oid = 23
        private static let float4: Oid = 700, float8: Oid = 701, numeric: Oid = 1700

        /// Ids as text, as `SourceScanner.idString`: integers in decimal, bytea in hex.
        static func idString(_ raw: String, type: Oid) -> String {
            switch type {
            case bytea: return raw.hasPrefix("\\x") ? String(raw.dropFirst(2)) : raw
            case float4, float8, numeric:
                if let d = Double(raw), d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
                return raw
            default: return raw
            }
        }

        /// Text as `SourceScanner.textString`: bytea decoded as UTF-8.
        static func textString(_ raw: String, type: Oid) -> String {
            guard type == bytea, raw.hasPrefix("\\x") else { return raw }
            var bytes: [UInt8] = []
            var digits = raw.utf8.dropFirst(2).makeIterator()
            while let hi = digits.next(), let lo = digits.next() {
                guard let h = hex(hi), let l = hex(lo) else { return raw }
                bytes.append(h << 4 | l)
            }
            return String(decoding: bytes, as: UTF8.self)
        }

        private static func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }

        /// Attribute values in SQLite's storage classes.
        static func databaseValue(_ raw: String?, type: Oid) -> DatabaseValue {
            guard let raw else { return .null }
            switch type {
            case int2, int4, int8: return Int64(raw).map { $0.databaseValue } ?? raw.databaseValue
            case float4, float8, numeric: return Double(raw).map { $0.databaseValue } ?? raw.databaseValue
            case bool: return (raw == "t" ? Int64(1) : Int64(0)).databaseValue
            default: return raw.databaseValue
            }
        }
    }
}

/// NUL-terminated C strings for the duration of `body` (libpq's `const char * const *`).
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    return body(copies.map { UnsafePointer($0) } + [nil])
}
