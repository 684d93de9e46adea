import CohortBasics
import Foundation
import GRDB
import GRDBSQLite

/// One resource version found in a verified export file, as staged (the same shape as `IndexEntry`).
public typealias StagedEntry = IndexEntry

// Schema v5 ("v5-staging"): a compact temporal index and a staging area.
//
// - `cohort_keys` / `rtypes` / `paths` intern cohort names, resource types and file paths as integers;
//   the public API keeps strings.
// - `resources`: one row per stored version, hash as a 16-byte BLOB (32-hex hashes; any other text is
//   kept as TEXT), `lu` = meta.lastUpdated as microseconds since 1970 for set-based ordering (NULL when
//   absent or unparseable: the text is then compared). Indexed on (cid, tid, id, valid_to) — the current
//   row is `valid_to IS NULL` — plus (cid, valid_from), (cid, valid_to) for snapshot diffs and
//   (cid, patient) over current rows for leavers.
// - `staging`: rows of an export's verified files, appended file by file; the commit merges them.
// - `current_counts` (per cohort and type) and `snapshot_counts` (per committed export) keep `summary`
//   O(types) instead of O(resources).
// v6 ("v6-commit", `registerV6`) re-keys `resources_key` on (cid, tid, id, valid_from) and replaces the partial
// index by patient with the `patient_keys` table, so that a commit writes O(changes) pages.
extension Store {
  /// Registers the "v5-staging" migration (after "v4-jobs").
  static func registerV5(_ migrator: inout DatabaseMigrator) {
    migrator.registerMigration("v5-staging") { db in
      db.add(function: Store.instantKeyFunction)
      db.add(function: Store.hashBlobFunction)
      try db.execute(
        sql: """
          CREATE TABLE cohort_keys (
            cid INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE REFERENCES cohorts(name) ON UPDATE CASCADE ON DELETE CASCADE
          );
          CREATE TABLE rtypes (tid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
          CREATE TABLE paths (pid INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);
          CREATE TABLE resources_v5 (
            cid INTEGER NOT NULL REFERENCES cohort_keys(cid) ON DELETE CASCADE,
            tid INTEGER NOT NULL,
            id TEXT NOT NULL,
            valid_from INTEGER NOT NULL,
            valid_to INTEGER,
            hash BLOB NOT NULL,
            lu INTEGER,
            last_updated TEXT,
            version_id TEXT,
            patient TEXT,
            fid INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL
          );
          INSERT INTO cohort_keys (name) SELECT name FROM cohorts ORDER BY name;
          INSERT OR IGNORE INTO rtypes (name) SELECT DISTINCT type FROM resources ORDER BY type;
          INSERT OR IGNORE INTO paths (path) SELECT DISTINCT file FROM resources ORDER BY file;
          INSERT INTO resources_v5 (cid, tid, id, valid_from, valid_to, hash, lu, last_updated, version_id, patient,
            fid, offset, length)
          SELECT k.cid, t.tid, r.id, r.valid_from, r.valid_to, cohort_hash_blob(r.hash), cohort_instant_key(r.last_updated),
            r.last_updated, r.version_id, r.patient, p.pid, r.offset, r.length
          FROM resources r JOIN cohort_keys k ON k.name = r.cohort JOIN rtypes t ON t.name = r.type
            JOIN paths p ON p.path = r.file
          ORDER BY k.cid, t.tid, r.id, r.valid_from;
          DROP TABLE resources;
          ALTER TABLE resources_v5 RENAME TO resources;
          CREATE INDEX resources_key ON resources(cid, tid, id, valid_to);
          CREATE INDEX resources_from ON resources(cid, valid_from);
          CREATE INDEX resources_to ON resources(cid, valid_to) WHERE valid_to IS NOT NULL;
          CREATE INDEX resources_patient ON resources(cid, patient) WHERE valid_to IS NULL AND patient IS NOT NULL;

          -- No foreign key on staging itself (it would disable SQLite's truncate, which empties the table
          -- at commit in O(1)): staged_exports carries it, and its trigger removes an export's rows when
          -- the export is deleted.
          CREATE TABLE staged_exports (export_id INTEGER PRIMARY KEY REFERENCES exports(id) ON DELETE CASCADE);
          CREATE TABLE staging (
            export_id INTEGER NOT NULL,
            sfid INTEGER NOT NULL,
            tid INTEGER NOT NULL,
            id TEXT NOT NULL,
            hash BLOB NOT NULL,
            lu INTEGER,
            last_updated TEXT,
            version_id TEXT,
            patient TEXT,
            fid INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL
          );
          CREATE INDEX staging_by_file ON staging(export_id, sfid);
          CREATE TRIGGER staged_exports_gone AFTER DELETE ON staged_exports BEGIN
            DELETE FROM staging WHERE export_id = OLD.export_id;
          END;

          CREATE TABLE current_counts (
            cid INTEGER NOT NULL REFERENCES cohort_keys(cid) ON DELETE CASCADE,
            tid INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (cid, tid)
          ) WITHOUT ROWID;
          INSERT INTO current_counts (cid, tid, n)
            SELECT cid, tid, COUNT(*) FROM resources WHERE valid_to IS NULL GROUP BY cid, tid;

          -- Counts per type of the state at each committed snapshot; tid 0 holds the total (always present).
          CREATE TABLE snapshot_counts (
            cid INTEGER NOT NULL REFERENCES cohort_keys(cid) ON DELETE CASCADE,
            export_id INTEGER NOT NULL,
            tid INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (cid, export_id, tid)
          ) WITHOUT ROWID;
          INSERT INTO snapshot_counts (cid, export_id, tid, n)
            SELECT k.cid, e.id, r.tid, COUNT(*)
            FROM exports e JOIN cohort_keys k ON k.name = e.cohort
              JOIN resources r ON r.cid = k.cid AND r.valid_from <= e.id AND (r.valid_to IS NULL OR r.valid_to > e.id)
            WHERE e.phase = 'committed'
            GROUP BY k.cid, e.id, r.tid;
          INSERT INTO snapshot_counts (cid, export_id, tid, n)
            SELECT k.cid, e.id, 0, COALESCE((SELECT SUM(n) FROM snapshot_counts s WHERE s.cid = k.cid AND s.export_id = e.id), 0)
            FROM exports e JOIN cohort_keys k ON k.name = e.cohort
            WHERE e.phase = 'committed';
          """)
    }
  }

  /// Registers the "v6-commit" migration (after "v5-staging"): the commit writes O(changes) pages.
  ///
  /// - `resources_key` becomes (cid, tid, id, valid_from): closing a version (setting `valid_to`) no longer
  ///   rewrites an index entry, only the table row; the current row is the one of its key with `valid_to IS NULL`.
  /// - The partial index of current rows by patient (rewritten by every change) is replaced by `patient_keys`
  ///   (cid, patient, tid, id), written only when a resource is new or its patient changes. Leavers' current rows
  ///   are found through it (an entry whose resource moved to another patient is filtered by the row's patient).
  static func registerV6(_ migrator: inout DatabaseMigrator) {
    migrator.registerMigration("v6-commit") { db in
      try db.execute(
        sql: """
          DROP INDEX resources_key;
          CREATE INDEX resources_key ON resources(cid, tid, id, valid_from);
          DROP INDEX resources_patient;
          CREATE TABLE patient_keys (
            cid INTEGER NOT NULL REFERENCES cohort_keys(cid) ON DELETE CASCADE,
            patient TEXT NOT NULL,
            tid INTEGER NOT NULL,
            id TEXT NOT NULL,
            PRIMARY KEY (cid, patient, tid, id)
          ) WITHOUT ROWID;
          INSERT OR IGNORE INTO patient_keys (cid, patient, tid, id)
            SELECT cid, patient, tid, id FROM resources WHERE patient IS NOT NULL ORDER BY cid, patient, tid, id;
          """)
    }
  }

  /// Registers the "v7-membership" migration (after "v6-commit"): `exports.members_known` = the commit read the
  /// Group's member list (C59–C61), so that an empty Group is a known membership (its later members are joiners)
  /// and not an unknown one. Backfilled from the member rows: a committed export at or after a cohort's first member.
  static func registerV7(_ migrator: inout DatabaseMigrator) {
    migrator.registerMigration("v7-membership") { db in
      try db.execute(
        sql: """
          ALTER TABLE exports ADD COLUMN members_known INTEGER NOT NULL DEFAULT 0;
          UPDATE exports SET members_known = 1
            WHERE phase = 'committed' AND side = 0
              AND EXISTS (SELECT 1 FROM members m WHERE m.cohort = exports.cohort AND m.valid_from <= exports.id);
          """)
    }
  }

  /// Registers the "v8-staged-members" migration (after "v7-membership"): the Group's member list read by an export
  /// is staged in the database (`staged_members`), not held in memory, so a Group of any size is compared with the
  /// current members by SQL — O(members) on disk, O(joiners + leavers) in memory. Emptied by the commit; an
  /// export's rows go with its staging (the trigger).
  static func registerV8(_ migrator: inout DatabaseMigrator) {
    migrator.registerMigration("v8-staged-members") { db in
      try db.execute(
        sql: """
          -- Appended in the Group's order (no key on the patient: a Group of a million UUIDs inserted into a B-tree
          -- in random order rewrote most of its pages on every batch); the commit sorts it once.
          CREATE TABLE staged_members (export_id INTEGER NOT NULL, patient TEXT NOT NULL);
          CREATE INDEX staged_members_by_export ON staged_members(export_id);
          DROP TRIGGER staged_exports_gone;
          CREATE TRIGGER staged_exports_gone AFTER DELETE ON staged_exports BEGIN
            DELETE FROM staging WHERE export_id = OLD.export_id;
            DELETE FROM staged_members WHERE export_id = OLD.export_id;
          END;
          """)
    }
  }

  /// The page cache of every connection, in KiB: the main database's (which also caps each of the sorter's in-memory
  /// runs) and the temp database's. Measured with store-bench at 1 M resources (2 cores): 2 MiB + 2 MiB with one
  /// sorter helper thread (`sorterThreads`) commits a full export in 4.95 s wall against 5.82 s for 8 MiB + 2 MiB
  /// without one (and 32 + 16 MiB cost the same CPU as 8 + 2): every large statement walks its B-trees in key order,
  /// an incremental touches each page about once, and smaller sort runs stay in the CPU's caches. SQLite's peak heap
  /// 9 MB (was 19 MB at 8 MiB, 82 MB at 32 MiB).
  /// `COHORT_SQLITE_CACHE_KIB` overrides it (benchmarks; a machine with memory to spare).
  static let mainCacheKiB = Environment.integer("COHORT_SQLITE_CACHE_KIB", default: 2048, in: 512...(1 << 20))
  static let tempCacheKiB = 2048
  /// Helper threads of SQLite's sorter (the commit's large ORDER BYs sort runs in parallel; `PRAGMA threads`): one,
  /// for 2 cores. The commit runs when the downloads and staging are done, so the second core is free.
  /// `COHORT_SQLITE_SORTER_THREADS` overrides it (0 = sort on the committing thread only).
  static let sorterThreads = Environment.integer("COHORT_SQLITE_SORTER_THREADS", default: 1, in: 0...8)

  /// Connection settings for index work: a capped page cache (`mainCacheKiB`, `tempCacheKiB`), temporary
  /// tables and sorts in files (not memory; set outside a transaction), no memory-mapped I/O. Cheap; applied before each staging
  /// and commit transaction (and suitable for `Configuration.prepareDatabase`).
  public static func configureIndexConnection(_ db: Database) throws {
    try db.execute(sql: "PRAGMA cache_size = -\(mainCacheKiB); PRAGMA mmap_size = 0; PRAGMA threads = \(sorterThreads)")
    // temp_store cannot change inside a transaction: prepareDatabase sets it (the build default is FILE).
    if !db.isInsideTransaction, try Int.fetchOne(db, sql: "PRAGMA temp_store") == 2 {
      try db.execute(sql: "PRAGMA temp_store = FILE")
    }
    try db.execute(sql: "PRAGMA temp.cache_size = -\(tempCacheKiB)")
  }

  // MARK: - Staging

  /// Stages the entries of ONE verified file of an export in its own short transaction. Re-staging the
  /// same file replaces its rows (resume-safe). Returns the number of entries staged.
  /// `recording`: a file record saved in the same transaction (the download is recorded with its rows).
  public func stage(
    exportID: Int64, file: String, recording: FileRecord? = nil, _ produce: ((StagedEntry) throws -> Void) throws -> Void
  ) throws -> Int {
    let started = Date()
    var inTransaction = Date()
    defer {
      if Store.tracing {
        Store.trace(
          "  STAGE \(file): \(String(format: "waited %.3f s, staged in %.3f s", inTransaction.timeIntervalSince(started), Date().timeIntervalSince(inTransaction))) (incl. commit) at \(Store.traceClock)")
      }
    }
    return try write { db in
      inTransaction = Date()
      try Store.configureIndexConnection(db)
      try recording?.upsert(db)
      let sfid = try Store.pathID(db, file)
      try db.execute(sql: "INSERT OR IGNORE INTO staged_exports (export_id) VALUES (?)", arguments: [exportID])
      try db.execute(sql: "DELETE FROM staging WHERE export_id = ? AND sfid = ?", arguments: [exportID, sfid])
      var stager = try Stager(db, exportID: exportID, sfid: sfid)
      try produce { entry in try stager.add(entry) }
      return stager.count
    }
  }

  /// Removes the staged rows of one file of an export.
  public func unstage(exportID: Int64, file: String) throws {
    try write { db in
      guard let sfid = try Int64.fetchOne(db, sql: "SELECT pid FROM paths WHERE path = ?", arguments: [file]) else {
        return
      }
      try db.execute(sql: "DELETE FROM staging WHERE export_id = ? AND sfid = ?", arguments: [exportID, sfid])
    }
  }

  /// Staged resources of an export per type (distinct type/id).
  public func stagedCounts(exportID: Int64) throws -> [String: Int] {
    try read { db in
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT t.name AS type, c.n AS n FROM
            (SELECT tid, COUNT(DISTINCT id) AS n FROM staging WHERE export_id = ? GROUP BY tid) c
          JOIN rtypes t ON t.tid = c.tid
          """, arguments: [exportID])
      var counts: [String: Int] = [:]
      for row in rows { counts[row["type"]] = row["n"] }
      return counts
    }
  }

  /// Staged rows of one resource in an export (a side export's content is its staging rows, kept after
  /// commit). `validFrom` is the export id, `validTo` nil. Ordered by file and offset.
  public func stagedVersions(exportID: Int64, type: String, id: String) throws -> [ResourceVersion] {
    try read { db in
      guard let tid = try Int64.fetchOne(db, sql: "SELECT tid FROM rtypes WHERE name = ?", arguments: [type]) else {
        return []
      }
      return try Row.fetchAll(
        db,
        sql: """
          SELECT s.version_id, s.last_updated, s.hash, p.path AS file, s.offset, s.length
          FROM staging s JOIN paths p ON p.pid = s.fid
          WHERE s.export_id = ? AND s.tid = ? AND s.id = ?
          ORDER BY p.path, s.offset
          """, arguments: [exportID, tid, id]
      ).map { row in
        ResourceVersion(
          versionId: row["version_id"], lastUpdated: row["last_updated"],
          hash: Store.hashString(row["hash"] as DatabaseValue), validFrom: exportID, validTo: nil,
          file: row["file"], offset: row["offset"], length: row["length"])
      }
    }
  }

  // MARK: - Interning and encodings

  static func pathID(_ db: Database, _ path: String) throws -> Int64 {
    if let pid = try Int64.fetchOne(db, sql: "SELECT pid FROM paths WHERE path = ?", arguments: [path]) { return pid }
    try db.execute(sql: "INSERT INTO paths (path) VALUES (?)", arguments: [path])
    return db.lastInsertedRowID
  }

  static func typeID(_ db: Database, _ type: String, create: Bool) throws -> Int64? {
    if let tid = try Int64.fetchOne(db, sql: "SELECT tid FROM rtypes WHERE name = ?", arguments: [type]) { return tid }
    guard create else { return nil }
    try db.execute(sql: "INSERT INTO rtypes (name) VALUES (?)", arguments: [type])
    return db.lastInsertedRowID
  }

  /// The integer key of a cohort (created on first use).
  static func cohortID(_ db: Database, _ cohort: String, create: Bool) throws -> Int64? {
    if let cid = try Int64.fetchOne(db, sql: "SELECT cid FROM cohort_keys WHERE name = ?", arguments: [cohort]) {
      return cid
    }
    guard create else { return nil }
    try db.execute(sql: "INSERT INTO cohort_keys (name) VALUES (?)", arguments: [cohort])
    return db.lastInsertedRowID
  }

  static func typeNames(_ db: Database) throws -> [Int64: String] {
    var names: [Int64: String] = [:]
    for row in try Row.fetchAll(db, sql: "SELECT tid, name FROM rtypes") { names[row[0]] = row[1] }
    return names
  }

  /// A stored hash back to its text: 16-byte BLOBs are lower-case hex, anything else is text as stored.
  static func hashString(_ value: DatabaseValue) -> String {
    switch value.storage {
    case .blob(let data) where data.count == 16:
      let digits = Array("0123456789abcdef".utf8)
      var out = [UInt8]()
      out.reserveCapacity(32)
      for byte in data {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
      }
      return String(decoding: out, as: UTF8.self)
    case .blob(let data): return String(decoding: data, as: UTF8.self)
    case .string(let text): return text
    case .int64(let n): return String(n)
    case .double(let d): return String(d)
    case .null: return ""
    }
  }

  /// The stored form of a hash: 16-byte BLOB for 32 lower/upper-case hex digits, else the text.
  static func hashValue(_ hash: String) -> DatabaseValue {
    var bytes = [UInt8](repeating: 0, count: 16)
    if decodeHex32(hash, into: &bytes) { return Data(bytes).databaseValue }
    return hash.databaseValue
  }

  static func decodeHex32(_ hash: String, into bytes: inout [UInt8]) -> Bool {
    var hash = hash
    return hash.withUTF8 { utf8 in
      guard utf8.count == 32 else { return false }
      for i in 0..<16 {
        guard let hi = hexNibble(utf8[2 * i]), let lo = hexNibble(utf8[2 * i + 1]) else { return false }
        bytes[i] = hi << 4 | lo
      }
      return true
    }
  }

  @inline(__always) static func hexNibble(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: return c - 0x30
    case 0x61...0x66: return c - 0x61 + 10
    case 0x41...0x46: return c - 0x41 + 10
    default: return nil
    }
  }

  /// A FHIR instant (`2024-01-15T10:00:00Z`, `…00.123456+02:00`) as microseconds since 1970, or nil.
  public static func instantKey(_ text: String) -> Int64? {
    var text = text
    return text.withUTF8 { instantKey(utf8: $0) }
  }

  static func instantKey(utf8 s: UnsafeBufferPointer<UInt8>) -> Int64? {
    // YYYY-MM-DDThh:mm:ss[.f…](Z|±hh:mm)
    guard s.count >= 20, s[4] == 0x2D, s[7] == 0x2D, s[10] == 0x54 || s[10] == 0x74, s[13] == 0x3A, s[16] == 0x3A
    else { return nil }
    func num(_ from: Int, _ count: Int) -> Int64? {
      var value: Int64 = 0
      for i in from..<(from + count) {
        let d = s[i] &- 0x30
        guard d < 10 else { return nil }
        value = value * 10 + Int64(d)
      }
      return value
    }
    guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
      let sec = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61
    else { return nil }
    var i = 19
    var micros: Int64 = 0
    if i < s.count, s[i] == 0x2E {
      i += 1
      var digits = 0
      while i < s.count, s[i] &- 0x30 < 10 {
        if digits < 6 {
          micros = micros * 10 + Int64(s[i] - 0x30)
          digits += 1
        }
        i += 1
      }
      guard digits > 0 else { return nil }
      while digits < 6 {
        micros *= 10
        digits += 1
      }
    }
    guard i < s.count else { return nil }
    var offsetSeconds: Int64 = 0
    if s[i] == 0x5A || s[i] == 0x7A {
      guard i + 1 == s.count else { return nil }
    } else if s[i] == 0x2B || s[i] == 0x2D {
      guard i + 6 == s.count, s[i + 3] == 0x3A, let oh = num(i + 1, 2), let om = num(i + 4, 2) else { return nil }
      offsetSeconds = (oh * 3600 + om * 60) * (s[i] == 0x2D ? -1 : 1)
    } else {
      return nil
    }
    let days = CivilDate.days(year: y, month: mo, day: d)
    let seconds = days * 86400 + h * 3600 + mi * 60 + sec - offsetSeconds
    return seconds * 1_000_000 + micros
  }

  static var instantKeyFunction: DatabaseFunction { DatabaseFunction("cohort_instant_key", argumentCount: 1, pure: true) { values in
    guard let text = String.fromDatabaseValue(values[0]) else { return nil }
    return Store.instantKey(text)
  } }

  static var hashBlobFunction: DatabaseFunction { DatabaseFunction("cohort_hash_blob", argumentCount: 1, pure: true) { values in
    guard let text = String.fromDatabaseValue(values[0]) else { return values[0] }
    return Store.hashValue(text)
  } }
}

/// Appends staging rows with one prepared statement, binding values directly (no per-row argument
/// arrays); resource types and entry files are interned through small caches.
struct Stager {
  let db: Database
  let statement: Statement
  let exportID: Int64
  let sfid: Int64
  var types: [String: Int64] = [:]
  var lastFile: String?
  var lastFileID: Int64 = 0
  var hashBytes = [UInt8](repeating: 0, count: 16)
  var count = 0

  init(_ db: Database, exportID: Int64, sfid: Int64) throws {
    self.db = db
    self.exportID = exportID
    self.sfid = sfid
    statement = try db.makeStatement(
      sql: """
        INSERT INTO staging (export_id, sfid, tid, id, hash, lu, last_updated, version_id, patient, fid, offset, length)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """)
  }

  mutating func add(_ entry: StagedEntry) throws {
    let tid: Int64
    if let known = types[entry.type] {
      tid = known
    } else {
      tid = try Store.typeID(db, entry.type, create: true)!
      types[entry.type] = tid
    }
    if entry.file != lastFile {
      lastFileID = try Store.pathID(db, entry.file)
      lastFile = entry.file
    }
    let s = statement.sqliteStatement
    sqlite3_bind_int64(s, 1, exportID)
    sqlite3_bind_int64(s, 2, sfid)
    sqlite3_bind_int64(s, 3, tid)
    Store.bindText(s, 4, entry.id)
    if Store.decodeHex32(entry.hash, into: &hashBytes) {
      hashBytes.withUnsafeBytes { raw in _ = sqlite3_bind_blob(s, 5, raw.baseAddress, 16, SQLITE_TRANSIENT_) }
    } else {
      Store.bindText(s, 5, entry.hash)
    }
    if let lastUpdated = entry.lastUpdated {
      if let key = Store.instantKey(lastUpdated) {
        sqlite3_bind_int64(s, 6, key)
      } else {
        sqlite3_bind_null(s, 6)
      }
      Store.bindText(s, 7, lastUpdated)
    } else {
      sqlite3_bind_null(s, 6)
      sqlite3_bind_null(s, 7)
    }
    bindOptional(s, 8, entry.versionId)
    bindOptional(s, 9, entry.patient)
    sqlite3_bind_int64(s, 10, lastFileID)
    sqlite3_bind_int64(s, 11, entry.offset)
    sqlite3_bind_int64(s, 12, Int64(entry.length))
    try Store.stepInsert(s, db)
    count += 1
  }

  private func bindOptional(_ s: OpaquePointer?, _ index: Int32, _ text: String?) {
    if let text { Store.bindText(s, index, text) } else { sqlite3_bind_null(s, index) }
  }
}

extension Store {
  /// Binds `text` to parameter `index` of a prepared statement, copied by SQLite (no per-row argument array).
  static func bindText(_ s: OpaquePointer?, _ index: Int32, _ text: String) {
    var text = text
    text.withUTF8 { utf8 in
      if let base = utf8.baseAddress, utf8.count > 0 {
        base.withMemoryRebound(to: CChar.self, capacity: utf8.count) { chars in
          _ = sqlite3_bind_text(s, index, chars, Int32(utf8.count), SQLITE_TRANSIENT_)
        }
      } else {
        _ = sqlite3_bind_text(s, index, "", 0, SQLITE_TRANSIENT_)
      }
    }
  }

  /// Runs a bound INSERT statement once and resets it; a failure is thrown as GRDB's `DatabaseError`.
  static func stepInsert(_ s: OpaquePointer?, _ db: Database) throws {
    let code = sqlite3_step(s)
    sqlite3_reset(s)
    guard code == SQLITE_DONE else {
      throw DatabaseError(
        resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
    }
  }
}

/// SQLite's "copy the bytes now" destructor.
var SQLITE_TRANSIENT_: sqlite3_destructor_type { unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self) }

extension Store {
  /// `COHORT_STORE_TRACE=1`: staging and each commit step print their times on stderr (benchmarks, profiling).
  static let tracing = ProcessInfo.processInfo.environment["COHORT_STORE_TRACE"] != nil

  /// One trace line on stderr.
  static func trace(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

  /// The wall clock in trace lines: seconds within the current 100 s (lines of one run line up, and with `date`).
  static var traceClock: String { String(format: "%.3f", Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 100)) }

  /// SQLite's allocation high-water mark in MB since the last reset (page caches, sorters, statements: what the
  /// store itself holds, as opposed to the process's RSS).
  public static var memoryHighwaterMB: Double { Double(sqlite3_memory_highwater(0)) / 1_048_576 }

  /// Resets SQLite's allocation high-water mark to the memory in use now.
  public static func resetMemoryHighwater() { _ = sqlite3_memory_highwater(1) }

  /// SQLite's memory in use now, in MB.
  public static var memoryUsedMB: Double { Double(sqlite3_memory_used()) / 1_048_576 }
}

extension Store {
  /// A page counter of the connection since the last call (sqlite3_db_status, reset): 2 = cache misses (pages
  /// read), 9 = pages written, 12 = pages spilled mid-transaction. For the commit trace.
  static func pageStatus(_ db: Database, _ op: Int32) -> Int {
    var current: Int32 = 0
    var highwater: Int32 = 0
    _ = sqlite3_db_status(db.sqliteConnection, op, &current, &highwater, 1)
    return Int(current)
  }
}

extension Store {
  /// Tests: runs `body` in a write transaction and counts the SQLite virtual-machine instructions it ran (in
  /// hundreds, through a progress handler) — a measure of work that does not depend on the machine's load.
  func writeCountingWork<T>(_ body: (Database) throws -> T) throws -> (T, Int) {
    try write { db in
      let counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
      counter.initialize(to: 0)
      defer {
        sqlite3_progress_handler(db.sqliteConnection, 0, nil, nil)
        counter.deallocate()
      }
      sqlite3_progress_handler(
        db.sqliteConnection, 100,
        { context in
          context!.assumingMemoryBound(to: Int.self).pointee += 1
          return 0
        }, counter)
      let value = try body(db)
      return (value, counter.pointee)
    }
  }
}
