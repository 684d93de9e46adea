import Foundation
import GRDB

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

/// What committing an export changed in the cohort's state.
public struct IngestResult: Sendable, Equatable, Codable {
  public var added = 0
  public var changed = 0
  public var unchanged = 0
  public var removed = 0
  public var ignoredOlder = 0
  public var joined: [String] = []
  public var left: [String] = []
  public init() {}
}

/// Everything that is applied together when an export commits.
public struct CommitPlan: Sendable {
  public var export: ExportRecord
  /// A full export re-baselines: current ids of these types that it did not return are removed.
  /// nil = no re-baseline (incremental). An empty array means every type.
  public var rebaselineTypes: [String]?
  /// `Type/id` pairs from the manifest's `deleted` files.
  public var deletes: [(type: String, id: String)]
  /// The Group's current members (Patient ids), when known.
  public var members: [String]?
  /// Watermarks to advance (type → transactionTime verbatim). Empty for a partial export.
  public var watermarks: [String: String]

  public init(
    export: ExportRecord, rebaselineTypes: [String]?, deletes: [(type: String, id: String)],
    members: [String]?, watermarks: [String: String]
  ) {
    self.export = export
    self.rebaselineTypes = rebaselineTypes
    self.deletes = deletes
    self.members = members
    self.watermarks = watermarks
  }
}

extension Store {
  /// Commits an export in ONE transaction: the export row (phase committed), the resource index
  /// (upserts by type/id: same hash → nothing; newer `meta.lastUpdated` wins), deletes, membership and
  /// watermarks. `produce` streams the entries of the export's files and runs inside the transaction.
  /// Applying the same entries again changes nothing.
  public func commitExport(
    _ plan: CommitPlan, produce: ((IndexEntry) throws -> Void) throws -> Void
  ) throws -> IngestResult {
    guard let exportID = plan.export.id else { throw StoreError.database("export has no id") }
    let cohort = plan.export.cohort
    return try write { db in
      var result = IngestResult()
      let current = try db.makeStatement(
        sql: """
          SELECT rowid, hash, last_updated FROM resources
          WHERE cohort = ? AND type = ? AND id = ? AND valid_to IS NULL
          """)
      let close = try db.makeStatement(sql: "UPDATE resources SET valid_to = ? WHERE rowid = ?")
      let insert = try db.makeStatement(
        sql: """
          INSERT INTO resources (cohort, type, id, version_id, last_updated, hash, patient, valid_from,
            valid_to, file, offset, length)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)
          """)
      let rebaseline = plan.rebaselineTypes != nil
      if rebaseline {
        try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS seen (type TEXT NOT NULL, id TEXT NOT NULL)")
        try db.execute(sql: "DELETE FROM temp.seen")
      }
      let markSeen = rebaseline ? try db.makeStatement(sql: "INSERT INTO temp.seen VALUES (?, ?)") : nil

      try produce { entry in
        try markSeen?.execute(arguments: [entry.type, entry.id])
        let row = try Row.fetchOne(current, arguments: [cohort, entry.type, entry.id])
        if let row {
          let hash: String = row["hash"]
          if hash == entry.hash {
            result.unchanged += 1
            return
          }
          let existingUpdated: String? = row["last_updated"]
          if let existingUpdated, let incoming = entry.lastUpdated,
            instantOrder(incoming, existingUpdated) == .orderedAscending
          {
            result.ignoredOlder += 1
            return
          }
          let rowid: Int64 = row["rowid"]
          try close.execute(arguments: [exportID, rowid])
          result.changed += 1
        } else {
          result.added += 1
        }
        try insert.execute(arguments: [
          cohort, entry.type, entry.id, entry.versionId, entry.lastUpdated, entry.hash, entry.patient,
          exportID, entry.file, entry.offset, entry.length,
        ])
      }

      for (type, id) in plan.deletes {
        try db.execute(
          sql: """
            UPDATE resources SET valid_to = ?
            WHERE cohort = ? AND type = ? AND id = ? AND valid_to IS NULL AND valid_from < ?
            """, arguments: [exportID, cohort, type, id, exportID])
        result.removed += db.changesCount
      }

      if let types = plan.rebaselineTypes {
        var sql = """
          UPDATE resources SET valid_to = ?
          WHERE cohort = ? AND valid_to IS NULL AND valid_from < ?
            AND NOT EXISTS (SELECT 1 FROM temp.seen s WHERE s.type = resources.type AND s.id = resources.id)
          """
        var arguments: StatementArguments = [exportID, cohort, exportID]
        if !types.isEmpty {
          sql += " AND type IN (\(types.map { _ in "?" }.joined(separator: ",")))"
          arguments += StatementArguments(types)
        }
        try db.execute(sql: sql, arguments: arguments)
        result.removed += db.changesCount
        try db.execute(sql: "DELETE FROM temp.seen")
      }

      if let members = plan.members {
        let previous = Set(
          try String.fetchAll(
            db, sql: "SELECT patient FROM members WHERE cohort = ? AND valid_to IS NULL", arguments: [cohort]))
        let now = Set(members)
        let hadMembers = try Bool.fetchOne(
          db, sql: "SELECT EXISTS (SELECT 1 FROM members WHERE cohort = ?)", arguments: [cohort]) ?? false
        let joined = now.subtracting(previous).sorted()
        let left = previous.subtracting(now).sorted()
        for patient in joined {
          try db.execute(
            sql: "INSERT INTO members (cohort, patient, valid_from, valid_to) VALUES (?, ?, ?, NULL)",
            arguments: [cohort, patient, exportID])
        }
        for patient in left {
          try db.execute(
            sql: "UPDATE members SET valid_to = ? WHERE cohort = ? AND patient = ? AND valid_to IS NULL",
            arguments: [exportID, cohort, patient])
          // A leaver's resources leave the cohort's state at this snapshot.
          try db.execute(
            sql: "UPDATE resources SET valid_to = ? WHERE cohort = ? AND patient = ? AND valid_to IS NULL",
            arguments: [exportID, cohort, patient])
          result.removed += db.changesCount
        }
        if hadMembers {
          result.joined = joined
          result.left = left
        }
      }

      for (type, time) in plan.watermarks {
        try WatermarkRecord(cohort: cohort, resourceType: type, transactionTime: time, exportID: exportID)
          .upsert(db)
      }
      var export = plan.export
      export.phase = .committed
      try export.update(db)
      return result
    }
  }

  /// Resource counts per type in the state at snapshot `exportID`.
  public func counts(cohort: String, at exportID: Int64) throws -> [String: Int] {
    try read { db in
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT type, COUNT(*) AS n FROM resources
          WHERE cohort = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)
          GROUP BY type
          """, arguments: [cohort, exportID, exportID])
      var counts: [String: Int] = [:]
      for row in rows { counts[row["type"]] = row["n"] }
      return counts
    }
  }

  /// Per-patient resource counts of one type at a snapshot (for `summary --by patient`).
  public func perPatientCounts(cohort: String, at exportID: Int64) throws -> [String: [Int]] {
    try read { db in
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT m.patient AS patient, r.type AS type, COUNT(r.id) AS n
          FROM members m LEFT JOIN resources r
            ON r.cohort = m.cohort AND r.patient = m.patient
           AND r.valid_from <= ? AND (r.valid_to IS NULL OR r.valid_to > ?)
          WHERE m.cohort = ? AND m.valid_from <= ? AND (m.valid_to IS NULL OR m.valid_to > ?)
          GROUP BY m.patient, r.type
          """, arguments: [exportID, exportID, cohort, exportID, exportID])
      var perType: [String: [String: Int]] = [:]
      var patients = Set<String>()
      for row in rows {
        let patient: String = row["patient"]
        patients.insert(patient)
        if let type: String = row["type"] { perType[type, default: [:]][patient] = row["n"] }
      }
      return perType.mapValues { counts in patients.map { counts[$0] ?? 0 }.sorted() }
    }
  }

  /// The cohort's current members (after the last commit).
  public func currentMembers(cohort: String) throws -> [String] {
    try read { db in
      try String.fetchAll(
        db, sql: "SELECT patient FROM members WHERE cohort = ? AND valid_to IS NULL ORDER BY patient", arguments: [cohort])
    }
  }

  /// Members (Patient ids) of the cohort at a snapshot.
  public func members(cohort: String, at exportID: Int64) throws -> [String] {
    try read { db in
      try String.fetchAll(
        db,
        sql: """
          SELECT patient FROM members WHERE cohort = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)
          ORDER BY patient
          """, arguments: [cohort, exportID, exportID])
    }
  }

  /// The change between two snapshots, per type.
  public func diff(cohort: String, from a: Int64, to b: Int64, type: String?) throws -> SnapshotDiff {
    try read { db in
      var diff = SnapshotDiff()
      let typeClause = type == nil ? "" : " AND r.type = ?"
      func args(_ base: [any DatabaseValueConvertible]) -> StatementArguments {
        StatementArguments(base + (type.map { [$0] } ?? []))!
      }
      let valid = { (alias: String, n: String) in
        "\(alias).valid_from <= \(n) AND (\(alias).valid_to IS NULL OR \(alias).valid_to > \(n))"
      }
      // Rows valid at B that began after A: added or changed, depending on whether the id existed at A.
      let newer = try Row.fetchAll(
        db,
        sql: """
          SELECT r.type AS type, r.id AS id,
            EXISTS (SELECT 1 FROM resources o INDEXED BY resources_current WHERE o.cohort = r.cohort AND o.type = r.type AND o.id = r.id
                    AND \(valid("o", "?"))) AS existed
          FROM resources r
          WHERE r.cohort = ? AND \(valid("r", "?")) AND r.valid_from > ?\(typeClause)
          ORDER BY r.type, r.id
          """, arguments: args([a, a, cohort, b, b, a]))
      for row in newer {
        let type: String = row["type"]
        let id: String = row["id"]
        if row["existed"] as Bool {
          diff.changed[type, default: []].append(id)
        } else {
          diff.added[type, default: []].append(id)
        }
      }
      let gone = try Row.fetchAll(
        db,
        sql: """
          SELECT r.type AS type, r.id AS id FROM resources r
          WHERE r.cohort = ? AND \(valid("r", "?"))\(typeClause)
            AND NOT EXISTS (SELECT 1 FROM resources n INDEXED BY resources_current WHERE n.cohort = r.cohort AND n.type = r.type AND n.id = r.id
                            AND \(valid("n", "?")))
          ORDER BY r.type, r.id
          """, arguments: args([cohort, a, a, b, b]))
      for row in gone { diff.removed[row["type"] as String, default: []].append(row["id"]) }
      let same = try Row.fetchAll(
        db,
        sql: """
          SELECT r.type AS type, COUNT(*) AS n FROM resources r
          WHERE r.cohort = ? AND r.valid_from <= ? AND (r.valid_to IS NULL OR r.valid_to > ?)\(typeClause)
          GROUP BY r.type
          """, arguments: args([cohort, a, b]))
      for row in same { diff.unchanged[row["type"]] = row["n"] }
      let membersA = Set(try members(db: db, cohort: cohort, at: a))
      let membersB = Set(try members(db: db, cohort: cohort, at: b))
      if !membersA.isEmpty || !membersB.isEmpty {
        diff.joined = membersB.subtracting(membersA).sorted()
        diff.left = membersA.subtracting(membersB).sorted()
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

  /// Where a resource's JSON is at a snapshot, or every version with `allVersions`.
  public func locate(cohort: String, type: String, id: String, at exportID: Int64?) throws -> [ResourceVersion] {
    try read { db in
      var sql = """
        SELECT version_id, last_updated, hash, valid_from, valid_to, file, offset, length FROM resources
        WHERE cohort = ? AND type = ? AND id = ?
        """
      var arguments: StatementArguments = [cohort, type, id]
      if let exportID {
        sql += " AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
        arguments += [exportID, exportID]
      }
      sql += " ORDER BY valid_from"
      return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
        ResourceVersion(
          versionId: row["version_id"], lastUpdated: row["last_updated"], hash: row["hash"],
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

/// Orders two FHIR instants (`Z`, offsets and fractional seconds); falls back to text order.
public func instantOrder(_ a: String, _ b: String) -> ComparisonResult {
  if let x = parseInstant(a), let y = parseInstant(b) {
    return x < y ? .orderedAscending : (x > y ? .orderedDescending : .orderedSame)
  }
  return a < b ? .orderedAscending : (a > b ? .orderedDescending : .orderedSame)
}

/// Parses a FHIR instant (`2024-01-15T10:00:00Z`, `…00.123+02:00`).
public func parseInstant(_ text: String) -> Date? {
  let withFraction = ISO8601DateFormatter()
  withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
  if let date = withFraction.date(from: text) { return date }
  let plain = ISO8601DateFormatter()
  plain.formatOptions = [.withInternetDateTime]
  return plain.date(from: text)
}
