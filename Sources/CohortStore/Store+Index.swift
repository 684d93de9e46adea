import Foundation
import GRDB
import GRDBSQLite

/// One resource version found in an export file.
public struct IndexEntry: Sendable, Equatable {
  public var type: String
  public var id: String
  public var versionId: String?
  public var lastUpdated: String?
  public var hash: String
  /// The Patient id this resource belongs to, when known (its own id for a Patient).
  public var patient: String?
  /// Path relative to the cohort folder.
  public var file: String
  public var offset: Int64
  public var length: Int

  public init(
    type: String, id: String, versionId: String?, lastUpdated: String?, hash: String, patient: String?,
    file: String, offset: Int64, length: Int
  ) {
    self.type = type
    self.id = id
    self.versionId = versionId
    self.lastUpdated = lastUpdated
    self.hash = hash
    self.patient = patient
    self.file = file
    self.offset = offset
    self.length = length
  }
}

extension Store {
  /// Resource counts per type in the state at snapshot `exportID` (O(types): read from the counts kept
  /// at each commit; a scan only for a point before any recorded snapshot).
  public func counts(cohort: String, at exportID: Int64) throws -> [String: Int] {
    try read { db in
      guard let c = try Store.cohortID(db, cohort, create: false) else { return [:] }
      let names = try Store.typeNames(db)
      var counts: [String: Int] = [:]
      for (tid, n) in try Store.countsByType(db, cid: c, at: exportID) where n > 0 { counts[names[tid] ?? "?"] = n }
      return counts
    }
  }

  static func countsByType(_ db: Database, cid c: Int64, at n: Int64) throws -> [Int64: Int] {
    var counts: [Int64: Int] = [:]
    if let snap = try Int64.fetchOne(
      db, sql: "SELECT MAX(export_id) FROM snapshot_counts WHERE cid = ? AND export_id <= ? AND tid = 0",
      arguments: [c, n])
    {
      for row in try Row.fetchAll(
        db, sql: "SELECT tid, n FROM snapshot_counts WHERE cid = ? AND export_id = ? AND tid <> 0", arguments: [c, snap])
      {
        counts[row[0]] = row[1]
      }
      return counts
    }
    for row in try Row.fetchAll(
      db,
      sql: """
        SELECT tid, COUNT(*) FROM resources
        WHERE cid = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) GROUP BY tid
        """, arguments: [c, n, n])
    {
      counts[row[0]] = row[1]
    }
    return counts
  }

  /// Per-patient resource counts of one type at a snapshot (for `summary --by patient`).
  public func perPatientCounts(cohort: String, at exportID: Int64) throws -> [String: [Int]] {
    try read { db in
      let patients = try members(db: db, cohort: cohort, at: exportID)
      guard let c = try Store.cohortID(db, cohort, create: false) else { return [:] }
      let names = try Store.typeNames(db)
      let memberSet = Set(patients)
      var perType: [Int64: [String: Int]] = [:]
      let rows = try Row.fetchCursor(
        db,
        sql: """
          SELECT patient, tid, COUNT(*) FROM resources
          WHERE cid = ? AND patient IS NOT NULL AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)
          GROUP BY patient, tid
          """, arguments: [c, exportID, exportID])
      while let row = try rows.next() {
        let patient: String = row[0]
        guard memberSet.contains(patient) else { continue }
        perType[row[1], default: [:]][patient] = row[2]
      }
      var result: [String: [Int]] = [:]
      for (tid, counts) in perType { result[names[tid] ?? "?"] = patients.map { counts[$0] ?? 0 }.sorted() }
      return result
    }
  }

  /// Whether an earlier snapshot of the cohort read its Group's member list (even an empty one): only then are
  /// patients in today's list joiners.
  public func membershipKnown(cohort: String) throws -> Bool {
    try read { db in try Store.membershipKnown(db, cohort: cohort, excluding: nil) }
  }

  /// The same, inside a transaction: a committed export other than `excluding` read the Group (v7
  /// `members_known`, also when it was empty), or member rows exist from before v7.
  static func membershipKnown(_ db: Database, cohort: String, excluding exportID: Int64?) throws -> Bool {
    try Bool.fetchOne(
      db,
      sql: """
        SELECT EXISTS (SELECT 1 FROM main.exports WHERE cohort = ? AND id IS NOT ? AND phase = 'committed' AND members_known = 1)
          OR EXISTS (SELECT 1 FROM main.members WHERE cohort = ?)
        """, arguments: [cohort, exportID, cohort]) ?? false
  }

  /// The cohort's current members (after the last commit).
  public func currentMembers(cohort: String) throws -> [String] {
    try read { db in
      try String.fetchAll(
        db, sql: "SELECT patient FROM members WHERE cohort = ? AND valid_to IS NULL ORDER BY patient", arguments: [cohort])
    }
  }

  /// Forgets the Group members staged for an export (a new read of the Group starts from nothing). On GRDB's
  /// writer, never blocking the cooperative pool while staging holds it.
  public func clearStagedMembers(exportID: Int64) async throws {
    do {
      try await pool.write { db in
        try db.execute(sql: "DELETE FROM staged_members WHERE export_id = ?", arguments: [exportID])
      }
    } catch let error as DatabaseError {
      throw Store.translate(error, path: path)
    }
  }

  /// Stages a batch of the Group's member ids read by an export (v8 `staged_members`; a duplicate id counts once).
  /// The commit compares them with the current members when its plan says `membersStaged`.
  public func stageMembers(exportID: Int64, _ patients: [String]) throws {
    try write { db in try Store.stageMembers(db, exportID: exportID, patients) }
  }

  static func stageMembers(_ db: Database, exportID: Int64, _ patients: [String]) throws {
    try db.execute(sql: "INSERT OR IGNORE INTO staged_exports (export_id) VALUES (?)", arguments: [exportID])
    // Appended (no key to keep in order): a batch writes a few pages whatever the Group's size.
    // Values bound directly (no argument array per row): a Group of a million members is a million rows.
    let insert = try db.makeStatement(sql: "INSERT INTO staged_members (export_id, patient) VALUES (?, ?)")
    let s = insert.sqliteStatement
    sqlite3_bind_int64(s, 1, exportID)
    for patient in patients {
      Store.bindText(s, 2, patient)
      try stepInsert(s, db)
    }
  }

  /// How many distinct members are staged for an export.
  public func stagedMemberCount(exportID: Int64) throws -> Int {
    try read { db in
      try Int.fetchOne(
        db, sql: "SELECT COUNT(DISTINCT patient) FROM staged_members WHERE export_id = ?", arguments: [exportID]) ?? 0
    }
  }

  /// The staged members of an export that are not current members of the cohort (its joiners), sorted: an
  /// index probe per staged member, memory O(joiners).
  public func stagedJoiners(cohort: String, exportID: Int64) throws -> [String] {
    try read { db in
      try String.fetchAll(
        db,
        sql: """
          SELECT DISTINCT s.patient FROM main.staged_members s
          WHERE s.export_id = ?
            AND NOT EXISTS (SELECT 1 FROM main.members m WHERE m.cohort = ? AND m.patient = s.patient AND m.valid_to IS NULL)
          ORDER BY s.patient
          """, arguments: [exportID, cohort])
    }
  }

  /// Members (Patient ids) of the cohort at a snapshot.
  public func members(cohort: String, at exportID: Int64) throws -> [String] {
    try read { db in try members(db: db, cohort: cohort, at: exportID).sorted() }
  }

  /// The change between two snapshots, per type: O(changes between them) with indexed lookups.
  public func diff(cohort: String, from a: Int64, to b: Int64, type: String?) throws -> SnapshotDiff {
    try read { db in
      var diff = SnapshotDiff()
      let membersA = Set(try members(db: db, cohort: cohort, at: a))
      let membersB = Set(try members(db: db, cohort: cohort, at: b))
      if !membersA.isEmpty || !membersB.isEmpty {
        diff.joined = membersB.subtracting(membersA).sorted()
        diff.left = membersA.subtracting(membersB).sorted()
      }
      guard let c = try Store.cohortID(db, cohort, create: false) else { return diff }
      let names = try Store.typeNames(db)
      var typeClause = ""
      var onlyTid: Int64?
      if let type {
        guard let tid = try Store.typeID(db, type, create: false) else { return diff }
        typeClause = " AND r.tid = \(tid)"
        onlyTid = tid
      }
      func valid(_ alias: String, _ n: Int64) -> String {
        "\(alias).valid_from <= \(n) AND (\(alias).valid_to IS NULL OR \(alias).valid_to > \(n))"
      }
      // Rows valid at B that began after A: added or changed, depending on whether the id existed at A.
      let newer = try Row.fetchCursor(
        db,
        sql: """
          SELECT r.tid, r.id,
            EXISTS (SELECT 1 FROM resources o INDEXED BY resources_key
                    WHERE o.cid = r.cid AND o.tid = r.tid AND o.id = r.id AND \(valid("o", a))) AS existed
          FROM resources r INDEXED BY resources_from
          WHERE r.cid = ? AND r.valid_from > ? AND r.valid_from <= ? AND (r.valid_to IS NULL OR r.valid_to > ?)\(typeClause)
          ORDER BY r.tid, r.id
          """, arguments: [c, a, b, b])
      while let row = try newer.next() {
        let type = names[row[0]] ?? "?"
        if row[2] as Bool {
          diff.changed[type, default: []].append(row[1])
        } else {
          diff.added[type, default: []].append(row[1])
        }
      }
      // Rows valid at A and ended by B (or begun after B when A > B) with no version valid at B: removed.
      let gone = try Row.fetchCursor(
        db,
        sql: """
          SELECT tid, id FROM (
            SELECT r.tid, r.id FROM resources r INDEXED BY resources_to
            WHERE r.cid = ?1 AND r.valid_to > ?2 AND r.valid_to <= ?3 AND r.valid_from <= ?2\(typeClause)
            UNION ALL
            SELECT r.tid, r.id FROM resources r INDEXED BY resources_from
            WHERE r.cid = ?1 AND r.valid_from > ?3 AND r.valid_from <= ?2 AND (r.valid_to IS NULL OR r.valid_to > ?2)\(typeClause)
          ) g
          WHERE NOT EXISTS (SELECT 1 FROM resources n INDEXED BY resources_key
                            WHERE n.cid = ?1 AND n.tid = g.tid AND n.id = g.id AND \(valid("n", b)))
          ORDER BY tid, id
          """, arguments: [c, a, b])
      while let row = try gone.next() { diff.removed[names[row[0]] ?? "?", default: []].append(row[1]) }
      // Rows valid at both A and B: the count at A minus the rows of A that ended by B.
      if a < b {
        var same = try Store.countsByType(db, cid: c, at: a)
        if let onlyTid { same = same.filter { $0.key == onlyTid } }
        for row in try Row.fetchAll(
          db,
          sql: """
            SELECT r.tid, COUNT(*) FROM resources r INDEXED BY resources_to
            WHERE r.cid = ? AND r.valid_to > ? AND r.valid_to <= ? AND r.valid_from <= ?\(typeClause) GROUP BY r.tid
            """, arguments: [c, a, b, a])
        {
          same[row[0], default: 0] -= row[1] as Int
        }
        for (tid, n) in same where n > 0 { diff.unchanged[names[tid] ?? "?"] = n }
      } else {
        for row in try Row.fetchAll(
          db,
          sql: """
            SELECT r.tid, COUNT(*) FROM resources r
            WHERE r.cid = ? AND r.valid_from <= ? AND (r.valid_to IS NULL OR r.valid_to > ?)\(typeClause) GROUP BY r.tid
            """, arguments: [c, a, b])
        {
          diff.unchanged[names[row[0]] ?? "?"] = row[1]
        }
      }
      return diff
    }
  }

  private func members(db: Database, cohort: String, at n: Int64) throws -> [String] {
    try String.fetchAll(
      db,
      sql: "SELECT patient FROM members WHERE cohort = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)",
      arguments: [cohort, n, n])
  }

  /// Where a resource's JSON is at a snapshot, or every version with `at: nil`.
  public func locate(cohort: String, type: String, id: String, at exportID: Int64?) throws -> [ResourceVersion] {
    try read { db in
      guard let c = try Store.cohortID(db, cohort, create: false), let tid = try Store.typeID(db, type, create: false)
      else { return [] }
      var sql = """
        SELECT r.version_id, r.last_updated, r.hash, r.valid_from, r.valid_to, p.path AS file, r.offset, r.length
        FROM resources r INDEXED BY resources_key JOIN paths p ON p.pid = r.fid
        WHERE r.cid = ? AND r.tid = ? AND r.id = ?
        """
      var arguments: StatementArguments = [c, tid, id]
      if let exportID {
        sql += " AND r.valid_from <= ? AND (r.valid_to IS NULL OR r.valid_to > ?)"
        arguments += [exportID, exportID]
      }
      sql += " ORDER BY r.valid_from"
      return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
        ResourceVersion(
          versionId: row["version_id"], lastUpdated: row["last_updated"], hash: Store.hashString(row["hash"]),
          validFrom: row["valid_from"], validTo: row["valid_to"], file: row["file"], offset: row["offset"],
          length: row["length"])
      }
    }
  }
}

/// One stored version of a resource.
public struct ResourceVersion: Sendable, Equatable {
  public var versionId: String?
  public var lastUpdated: String?
  public var hash: String
  public var validFrom: Int64
  public var validTo: Int64?
  public var file: String
  public var offset: Int64
  public var length: Int
}

/// Added / changed / removed ids per type between two snapshots, plus membership changes.
public struct SnapshotDiff: Sendable, Equatable {
  public var added: [String: [String]] = [:]
  public var changed: [String: [String]] = [:]
  public var removed: [String: [String]] = [:]
  public var unchanged: [String: Int] = [:]
  public var joined: [String] = []
  public var left: [String] = []
  public init() {}

  public var types: [String] {
    Set(added.keys).union(changed.keys).union(removed.keys).union(unchanged.keys).sorted()
  }
}
