import Foundation
import GRDB

/// Where one live resource version's JSON is (a line of a file in the cohort's folder).
public struct ResourceLocation: Sendable, Equatable {
  public var file: String
  public var offset: Int64
  public var length: Int
}

extension Store {
  /// Calls `body` for every file holding live versions of `type` in the cohort at snapshot
  /// `exportID`, with those versions' (offset, length) in ascending offset order. Files come in
  /// name order, so a reader streams each file once.
  public func forEachLiveFile(
    cohort: String, type: String, at exportID: Int64,
    _ body: (_ file: String, _ lines: [(offset: Int64, length: Int)]) throws -> Void
  ) throws {
    try read { db in
      let cursor = try Row.fetchCursor(
        db,
        sql: """
          SELECT p.path, r.offset, r.length FROM resources r
          JOIN cohort_keys k ON k.cid = r.cid JOIN rtypes t ON t.tid = r.tid JOIN paths p ON p.pid = r.fid
          WHERE k.name = ? AND t.name = ? AND r.valid_from <= ? AND (r.valid_to IS NULL OR r.valid_to > ?)
          ORDER BY p.path, r.offset
          """, arguments: [cohort, type, exportID, exportID])
      var current: String?
      var lines: [(offset: Int64, length: Int)] = []
      while let row = try cursor.next() {
        let file: String = row[0]
        if file != current {
          if let current, !lines.isEmpty { try body(current, lines) }
          current = file
          lines.removeAll(keepingCapacity: true)
        }
        lines.append((row[1], row[2]))
      }
      if let current, !lines.isEmpty { try body(current, lines) }
    }
  }
}

/// A value of a materialized view's cell.
public enum AnalysisValue: Sendable, Equatable {
  case null
  case integer(Int64)
  case real(Double)
  case text(String)

  var databaseValue: DatabaseValue {
    switch self {
    case .null: return .null
    case .integer(let i): return i.databaseValue
    case .real(let d): return d.databaseValue
    case .text(let s): return s.databaseValue
    }
  }
}

/// Where a materialized table came from.
public struct MaterializedView: Sendable, Equatable {
  public var table: String
  public var cohort: String
  public var snapshotSeq: Int
  public var exportID: Int64
  public var transactionTime: String?
  public var viewSHA256: String
  public var rows: Int
  public var createdAt: String
  public init(
    table: String, cohort: String, snapshotSeq: Int, exportID: Int64, transactionTime: String?, viewSHA256: String,
    rows: Int, createdAt: String
  ) {
    self.table = table
    self.cohort = cohort
    self.snapshotSeq = snapshotSeq
    self.exportID = exportID
    self.transactionTime = transactionTime
    self.viewSHA256 = viewSHA256
    self.rows = rows
    self.createdAt = createdAt
  }
}

/// The analysis database of one cohort: materialized view tables (never the store's own tables),
/// each recorded in `_materialized` with the snapshot it came from; queried read-only.
public final class AnalysisDatabase: Sendable {
  public let path: String
  let queue: DatabaseQueue

  public init(path: String, readOnly: Bool = false) throws {
    self.path = path
    var configuration = Configuration()
    configuration.readonly = readOnly
    configuration.busyMode = .timeout(5)
    do {
      queue = try DatabaseQueue(path: path, configuration: configuration)
      if !readOnly {
        try queue.write { db in
          try db.execute(
            sql: """
              CREATE TABLE IF NOT EXISTS _materialized (
                "table" TEXT PRIMARY KEY, cohort TEXT NOT NULL, snapshot_seq INTEGER NOT NULL,
                export_id INTEGER NOT NULL, transaction_time TEXT, view_sha256 TEXT NOT NULL,
                rows INTEGER NOT NULL, created_at TEXT NOT NULL)
              """)
        }
      }
    } catch let error as DatabaseError {
      throw Store.translate(error, path: path)
    }
  }

  static func quote(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

  /// Replaces `table` with the rows `fill` produces (in one transaction) and records where they came from.
  public func materialize(
    _ meta: MaterializedView, columns: [(name: String, sqlType: String)],
    fill: (_ insert: ([AnalysisValue]) throws -> Void) throws -> Void
  ) throws -> Int {
    do {
      return try queue.write { db in
        let t = Self.quote(meta.table)
        try db.execute(sql: "DROP TABLE IF EXISTS \(t)")
        let defs = columns.map { Self.quote($0.name) + ($0.sqlType.isEmpty ? "" : " " + $0.sqlType) }
        try db.execute(sql: "CREATE TABLE \(t) (\(defs.joined(separator: ", ")))")
        let statement = try db.makeStatement(
          sql: "INSERT INTO \(t) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))")
        var count = 0
        try fill { values in
          try statement.execute(arguments: StatementArguments(values.map(\.databaseValue)))
          count += 1
        }
        var m = meta
        m.rows = count
        try db.execute(
          sql: """
            INSERT OR REPLACE INTO _materialized ("table", cohort, snapshot_seq, export_id, transaction_time, view_sha256, rows, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
          arguments: [m.table, m.cohort, m.snapshotSeq, m.exportID, m.transactionTime, m.viewSHA256, m.rows, m.createdAt])
        return count
      }
    } catch let error as DatabaseError {
      throw Store.translate(error, path: path)
    }
  }

  public func materialized() throws -> [MaterializedView] {
    do {
      return try queue.read { db in
        try Row.fetchAll(db, sql: "SELECT * FROM _materialized ORDER BY \"table\"").map { r in
          MaterializedView(
            table: r["table"], cohort: r["cohort"], snapshotSeq: r["snapshot_seq"], exportID: r["export_id"],
            transactionTime: r["transaction_time"], viewSHA256: r["view_sha256"], rows: r["rows"], createdAt: r["created_at"])
        }
      }
    } catch let error as DatabaseError {
      throw Store.translate(error, path: path)
    }
  }

  /// Runs one read-only SQL statement; a statement that would write is refused before it runs.
  /// The rows as text, and per column the storage class its non-null values share (`.mixed` when they differ).
  public func query(_ sql: String) throws -> (columns: [String], storage: [StorageClass], rows: [[String]]) {
    do {
      return try queue.read { db in
        let statement = try db.makeStatement(sql: sql)
        guard statement.isReadonly else { throw AnalysisError.writeRefused }
        let columns = statement.columnNames
        var rows: [[String]] = []
        var storage = [StorageClass](repeating: .null, count: columns.count)
        func seen(_ k: Int, _ c: StorageClass) {
          storage[k] = storage[k] == .null || storage[k] == c ? c : .mixed
        }
        let cursor = try Row.fetchCursor(statement)
        while let row = try cursor.next() {
          rows.append(
            (0..<columns.count).map { k in
              switch (row[k] as DatabaseValue).storage {
              case .int64(let i):
                seen(k, .integer)
                return String(i)
              case .double(let d):
                seen(k, .real)
                return String(d)
              case .string(let s):
                seen(k, .text)
                return s
              case .blob(let b):
                seen(k, .blob)
                return "<\(b.count) bytes>"
              case .null: return ""
              }
            })
        }
        return (columns, storage, rows)
      }
    } catch let error as DatabaseError {
      throw AnalysisError.sql(error.message ?? "\(error.resultCode)")
    }
  }
}

/// SQLite's storage class of a result column's values.
public enum StorageClass: Sendable, Equatable {
  case null, integer, real, text, blob
  /// Values of different classes in one column.
  case mixed
}

/// Errors of `sql` over an analysis database.
public enum AnalysisError: Error, CustomStringConvertible, Equatable, Sendable {
  /// The statement would change the database.
  case writeRefused
  /// SQLite rejected the statement (its message verbatim).
  case sql(String)

  public var description: String {
    switch self {
    case .writeRefused:
      return "sql is read-only: only statements that read (SELECT, WITH …, PRAGMA reads) are run; use `view materialize` to change tables"
    case .sql(let message): return "SQL failed: \(message)"
    }
  }
}
