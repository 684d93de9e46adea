import Foundation
import GRDB

/// A change row: one version of one resource written by `advance` (or a deletion).
struct OverlayRow: Sendable {
  var seq: Int64
  var patient: Int
  var type: String
  var id: String
  var version: Int
  var lastUpdated: Int
  var deleted: Bool
  var json: String?
}

/// A resource of one patient at an instant, after merging the base data with the changes.
struct MergedPatient {
  var live: [StoredResource] = []
  /// Resources deleted at or before the instant: (type, id, deletedAt, existedSince).
  var deleted: [(type: String, id: String, at: Int, createdAt: Int)] = []
  var exists: Bool { live.contains { $0.type == "Patient" } }
  var patientID: String? { live.first { $0.type == "Patient" }?.id }
}

enum GroupKind: String, CaseIterable, Sendable {
  case diabetes = "diabetes-patients"
  case hypertension = "hypertension"
  case all = "all-patients"

  var name: String {
    switch self {
    case .diabetes: "Patients with type 2 diabetes (SNOMED 44054006)"
    case .hypertension: "Patients with hypertension (SNOMED 38341003)"
    case .all: "All patients"
    }
  }

  /// Membership is read from the data: an active Condition with the code, or any live Patient.
  func contains(_ patient: MergedPatient) -> Bool {
    guard patient.exists else { return false }
    switch self {
    case .all: return true
    case .diabetes: return Dataset.hasActiveCondition(patient, code: Codes.diabetes)
    case .hypertension: return Dataset.hasActiveCondition(patient, code: Codes.hypertension)
    }
  }
}

/// The population: a base layer (generated from the seed, or imported from `--data`) plus the
/// change rows in SQLite. Everything is read per patient; nothing population-sized is kept.
final class Dataset: Sendable {
  let pool: DatabasePool
  let generator: Generator
  let imported: Bool
  /// Number of patients in the base layer (patients added later exist only as change rows).
  let basePatients: Int

  init(pool: DatabasePool, generator: Generator, imported: Bool, basePatients: Int) {
    self.pool = pool
    self.generator = generator
    self.imported = imported
    self.basePatients = basePatients
  }

  static let migrator: DatabaseMigrator = {
    var m = DatabaseMigrator()
    m.registerMigration("v1") { db in
      try db.execute(
        sql: """
          CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
          CREATE TABLE versions(seq INTEGER PRIMARY KEY AUTOINCREMENT, patient INTEGER NOT NULL, type TEXT NOT NULL,
            id TEXT NOT NULL, version INTEGER NOT NULL, last_updated INTEGER NOT NULL, deleted INTEGER NOT NULL, json TEXT);
          CREATE INDEX versions_patient ON versions(patient, seq);
          CREATE TABLE base(seq INTEGER PRIMARY KEY AUTOINCREMENT, patient INTEGER NOT NULL, type TEXT NOT NULL,
            id TEXT NOT NULL, last_updated INTEGER NOT NULL, json TEXT NOT NULL);
          CREATE INDEX base_patient ON base(patient, seq);
          CREATE TABLE jobs(id INTEGER PRIMARY KEY, state TEXT NOT NULL, transaction_time INTEGER NOT NULL,
            request TEXT NOT NULL, requires_token INTEGER NOT NULL, since INTEGER, files TEXT, error TEXT);
          """)
    }
    return m
  }()

  static func meta(_ db: Database, _ key: String) throws -> String? {
    try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
  }
  static func setMeta(_ db: Database, _ key: String, _ value: String) throws {
    try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", arguments: [key, value])
  }
  static func metaInt(_ db: Database, _ key: String) throws -> Int? { try meta(db, key).flatMap { Int($0) } }

  static func hasActiveCondition(_ patient: MergedPatient, code: String) -> Bool {
    for r in patient.live where r.type == "Condition" {
      let json = r.json
      guard Filters.codeMatches(json["code"], ["\(Codes.snomed)|\(code)"]) else { continue }
      let status = json["clinicalStatus"]?["coding"]?.arrayValue?.first?["code"]?.stringValue
      if status == nil || status == "active" || status == "recurrence" || status == "relapse" { return true }
    }
    return false
  }

  // MARK: reading

  static func row(_ r: Row) -> OverlayRow {
    OverlayRow(
      seq: r["seq"], patient: r["patient"], type: r["type"], id: r["id"], version: r["version"],
      lastUpdated: r["last_updated"], deleted: (r["deleted"] as Int) != 0, json: r["json"])
  }

  /// Base resources of one patient (-1: the supporting resources).
  func base(_ db: Database, patient: Int) throws -> [StoredResource] {
    if !imported {
      if patient < 0 { return generator.supporting() }
      return patient < basePatients ? generator.patient(patient) : []
    }
    var out: [StoredResource] = []
    let rows = try Row.fetchCursor(
      db, sql: "SELECT type, id, last_updated, json FROM base WHERE patient = ? ORDER BY seq", arguments: [patient])
    while let r = try rows.next() {
      let text: String = r["json"]
      out.append(StoredResource(type: r["type"], id: r["id"], version: 1, lastUpdated: r["last_updated"], raw: Array(text.utf8)))
    }
    return out
  }

  /// Merges base resources with change rows (ordered by seq, already limited to the instant).
  func merge(base: [StoredResource], changes: [OverlayRow]) -> MergedPatient {
    var merged = MergedPatient()
    var live = base
    var index: [String: Int] = [:]
    for (i, r) in live.enumerated() { index[r.key] = i }
    var removed = Set<Int>()
    var created: [String: Int] = [:]
    var deletions: [(String, String, Int, Int)] = []
    for c in changes {
      let key = c.type + "/" + c.id
      if c.deleted {
        if let i = index[key], !removed.contains(i) {
          removed.insert(i)
          deletions.append((c.type, c.id, c.lastUpdated, created[key] ?? Int.min))
        }
        continue
      }
      guard let text = c.json else { continue }
      let resource = StoredResource(type: c.type, id: c.id, version: c.version, lastUpdated: c.lastUpdated, raw: Array(text.utf8))
      if let i = index[key], !removed.contains(i) {
        live[i] = resource
      } else {
        index[key] = live.count
        created[key] = c.lastUpdated
        live.append(resource)
      }
    }
    merged.live = live.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    merged.deleted = deletions.map { (type: $0.0, id: $0.1, at: $0.2, createdAt: $0.3) }
    return merged
  }

  /// One patient's state at `instant` (a single query for its change rows).
  func patientState(_ db: Database, patient: Int, at instant: Int) throws -> MergedPatient {
    let rows = try Row.fetchAll(
      db, sql: "SELECT * FROM versions WHERE patient = ? AND last_updated <= ? ORDER BY seq",
      arguments: [patient, instant]
    ).map(Dataset.row)
    return merge(base: try base(db, patient: patient), changes: rows)
  }

  /// Walks every patient (and then the supporting resources, as patient -1) at `instant`,
  /// merge-joining one ordered cursor over the change rows. Memory: one patient at a time.
  func forEachPatient(_ db: Database, at instant: Int, includeSupporting: Bool, _ body: (Int, MergedPatient) throws -> Void) throws {
    let count = try Dataset.metaInt(db, "patientCount") ?? basePatients
    let cursor = try Row.fetchCursor(
      db, sql: "SELECT * FROM versions WHERE last_updated <= ? ORDER BY patient, seq", arguments: [instant])
    var pending: OverlayRow? = try cursor.next().map(Dataset.row)
    func changes(for patient: Int) throws -> [OverlayRow] {
      var out: [OverlayRow] = []
      while let p = pending, p.patient <= patient {
        if p.patient == patient { out.append(p) }
        pending = try cursor.next().map(Dataset.row)
      }
      return out
    }
    // Supporting resources have patient -1, which sorts first.
    let supportingChanges = try changes(for: -1)
    for i in 0..<count {
      let merged = merge(base: try base(db, patient: i), changes: try changes(for: i))
      if merged.live.isEmpty && merged.deleted.isEmpty { continue }
      try body(i, merged)
    }
    if includeSupporting {
      try body(-1, merge(base: try base(db, patient: -1), changes: supportingChanges))
    }
  }

  /// The resource types present (generated types, or the imported ones).
  func resourceTypes() throws -> [String] {
    if !imported { return Generator.allTypes }
    return try pool.read { db in
      let found = try String.fetchAll(db, sql: "SELECT DISTINCT type FROM base")
      let known = Generator.allTypes.filter { found.contains($0) }
      return known + found.filter { !Generator.allTypes.contains($0) }.sorted()
    }
  }

  // MARK: writing changes

  static func insert(_ db: Database, patient: Int, _ r: StoredResource) throws {
    try db.execute(
      sql: "INSERT INTO versions(patient, type, id, version, last_updated, deleted, json) VALUES (?, ?, ?, ?, ?, 0, ?)",
      arguments: [patient, r.type, r.id, r.version, r.lastUpdated, String(decoding: r.bytes(), as: UTF8.self)])
  }

  static func insertDeletion(_ db: Database, patient: Int, _ r: StoredResource, at time: Int) throws {
    try db.execute(
      sql: "INSERT INTO versions(patient, type, id, version, last_updated, deleted, json) VALUES (?, ?, ?, ?, ?, 1, NULL)",
      arguments: [patient, r.type, r.id, r.version + 1, time])
  }
}
