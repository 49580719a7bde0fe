import GRDB
import GRDBSQLite

/// The SQLite C API calls GRDB does not wrap, in one place: loading an
/// extension, and a scalar function that reads its text argument in place.
enum SQLiteC {
    /// Loads the shared library at `path` into `db`'s connection (extension
    /// loading is enabled only for that call); returns SQLite's message when
    /// it fails.
    static func loadExtension(_ db: Database, path: String) throws -> String? {
        guard let handle = db.sqliteConnection else {
            throw ReindexError.internal("loading the SQLite extension \(path): the connection is closed — report it")
        }
        guard sqlite3_enable_load_extension(handle, 1) == SQLITE_OK else {
            return "this SQLite does not allow loading extensions (got an error from sqlite3_enable_load_extension)"
        }
        defer { sqlite3_enable_load_extension(handle, 0) }
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_load_extension(handle, path, nil, &message)
        guard rc != SQLITE_OK else { return nil }
        defer { sqlite3_free(message) }
        return message.map { String(cString: $0) } ?? "SQLite code \(rc)"
    }

    /// Where a text function writes its result.
    struct Result {
        fileprivate let context: OpaquePointer?
        func null() { sqlite3_result_null(context) }
        func integer(_ value: Int64) { sqlite3_result_int64(context, value) }
        /// Copies `bytes` (SQLite's `SQLITE_TRANSIENT`).
        func blob(_ bytes: UnsafeRawBufferPointer) {
            sqlite3_result_blob(context, bytes.baseAddress, Int32(bytes.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }
    }

    /// The argument of a text function: its UTF-8 bytes in place, valid for
    /// the call (SQLite ends them with a NUL, not counted), or nil when the
    /// value is not text.
    struct Text {
        let bytes: UnsafeRawBufferPointer
        /// The string GRDB would make of the value (`String(cString:)`: up to
        /// the first NUL, invalid UTF-8 repaired).
        var string: String { String(cString: bytes.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    }

    private final class Body {
        let call: (Text?, Result) -> Void
        init(_ call: @escaping (Text?, Result) -> Void) { self.call = call }
    }

    /// Registers the deterministic one-argument function `name` on `db`'s
    /// connection. GRDB's `DatabaseFunction` hands each call an array of
    /// `DatabaseValue`s, a `String` per text and a `Data` back: at a million
    /// rows that cost 0.5 s of the hash pass's 1.4 s (measured in
    /// docs/performance.md); `body` reads the bytes where SQLite keeps them.
    static func addTextFunction(_ db: Database, name: String, _ body: @escaping (Text?, Result) -> Void) throws {
        guard let handle = db.sqliteConnection else {
            throw ReindexError.internal("registering the SQL function \(name): the connection is closed — report it")
        }
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = sqlite3_create_function_v2(handle, name, 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, box, { context, _, values in
            let body = Unmanaged<Body>.fromOpaque(sqlite3_user_data(context)!).takeUnretainedValue()
            guard let value = values?[0], sqlite3_value_type(value) == SQLITE_TEXT, let text = sqlite3_value_text(value) else {
                return body.call(nil, Result(context: context))
            }
            // sqlite3_value_bytes after sqlite3_value_text: the count of the UTF-8 the pointer holds.
            body.call(Text(bytes: UnsafeRawBufferPointer(start: text, count: Int(sqlite3_value_bytes(value)))), Result(context: context))
        }, nil, nil, { box in
            if let box { Unmanaged<Body>.fromOpaque(box).release() }
        })
        // On failure SQLite has called the destructor already.
        guard rc == SQLITE_OK else {
            throw ReindexError.internal("registering the SQL function \(name) failed (got SQLite code \(rc)) — report it")
        }
    }
}
