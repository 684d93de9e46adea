import Foundation
import GRDB

/// Naming rules shared by every front end.
public enum Names {
  public static let rule = "names are 1–64 characters: a lowercase letter or digit, then lowercase letters, digits, '.', '_' or '-'"
  public static let groupRule = "a FHIR id is 1–64 characters of A–Z, a–z, 0–9, '-' and '.'"

  /// `[a-z0-9][a-z0-9._-]{0,63}`
  public static func isValid(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (1...64).contains(bytes.count) else { return false }
    func lowerOrDigit(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
    guard lowerOrDigit(bytes[0]) else { return false }
    return bytes.dropFirst().allSatisfy { lowerOrDigit($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
  }

  /// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`.
  public static func isValidFHIRID(_ id: String) -> Bool {
    let bytes = Array(id.utf8)
    guard (1...64).contains(bytes.count) else { return false }
    return bytes.allSatisfy {
      ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39)
        || $0 == 0x2D || $0 == 0x2E
    }
  }

  public static func validate(_ name: String, kind: String) throws {
    guard isValid(name) else { throw StoreError.invalidName(kind: kind, name: name, rule: rule) }
  }
}

extension Store {
  /// Registers the "v9-connect-timeout" migration (after "v8-staged-members"): a server's connect timeout in seconds
  /// (`server add --connect-timeout`, `server set`); NULL = the default.
  static func registerV9(_ migrator: inout DatabaseMigrator) {
    migrator.registerMigration("v9-connect-timeout") { db in
      try db.execute(sql: "ALTER TABLE servers ADD COLUMN connect_timeout REAL")
    }
  }

  /// "no server named 'x' — did you mean …? (known: …)": the error lists what exists.
  static func notFound(_ kind: String, _ name: String, _ db: Database) throws -> StoreError {
    let table = kind == "server" ? "servers" : "cohorts"
    let names = try String.fetchAll(db, sql: "SELECT name FROM \(table) ORDER BY name")
    return StoreError.notFound(kind: kind, name: name, existing: names)
  }

  // MARK: Servers

  public func servers() throws -> [ServerRecord] {
    try read { db in try ServerRecord.order(Column("name")).fetchAll(db) }
  }

  public func server(named name: String) throws -> ServerRecord {
    try read { db in
      if let server = try ServerRecord.fetchOne(db, key: name) { return server }
      throw try Store.notFound("server", name, db)
    }
  }

  public func addServer(_ server: ServerRecord) throws {
    try Names.validate(server.name, kind: "server")
    try write { db in
      if try ServerRecord.exists(db, key: server.name) {
        throw StoreError.alreadyExists(kind: "server", name: server.name)
      }
      try server.insert(db)
    }
  }

  public func updateServer(_ server: ServerRecord) throws {
    try write { db in try server.update(db) }
  }

  public func removeServer(named name: String) throws {
    try write { db in
      guard try ServerRecord.exists(db, key: name) else {
        throw try Store.notFound("server", name, db)
      }
      let users = try String.fetchAll(
        db, sql: "SELECT name FROM cohorts WHERE server = ? ORDER BY name", arguments: [name])
      if !users.isEmpty {
        throw StoreError.inUse(
          kind: "server", name: name,
          reason: "cohorts use it (\(users.joined(separator: ", "))); remove or move them first")
      }
      _ = try ServerRecord.deleteOne(db, key: name)
    }
  }

  public func renameServer(_ old: String, to new: String) throws {
    try Names.validate(new, kind: "server")
    try write { db in
      guard try ServerRecord.exists(db, key: old) else {
        throw try Store.notFound("server", old, db)
      }
      if try ServerRecord.exists(db, key: new) { throw StoreError.alreadyExists(kind: "server", name: new) }
      try db.execute(sql: "UPDATE servers SET name = ? WHERE name = ?", arguments: [new, old])
    }
  }

  // MARK: Cohorts

  public func cohorts() throws -> [CohortRecord] {
    try read { db in try CohortRecord.order(Column("name")).fetchAll(db) }
  }

  public func cohort(named name: String) throws -> CohortRecord {
    try read { db in
      if let cohort = try CohortRecord.fetchOne(db, key: name) { return cohort }
      throw try Store.notFound("cohort", name, db)
    }
  }

  public func addCohort(_ cohort: CohortRecord) throws {
    try Names.validate(cohort.name, kind: "cohort")
    guard Names.isValidFHIRID(cohort.groupID) else {
      throw StoreError.invalidName(kind: "Group id", name: cohort.groupID, rule: Names.groupRule)
    }
    try write { db in
      guard try ServerRecord.exists(db, key: cohort.server) else {
        throw try Store.notFound("server", cohort.server, db)
      }
      if try CohortRecord.exists(db, key: cohort.name) {
        throw StoreError.alreadyExists(kind: "cohort", name: cohort.name)
      }
      try cohort.insert(db)
    }
  }

  public func updateCohort(_ cohort: CohortRecord) throws {
    try write { db in try cohort.update(db) }
  }

  /// Number of exports (any phase) a cohort has, for `cohort remove` without `--force`.
  public func exportCount(cohort: String) throws -> Int {
    try read { db in
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM exports WHERE cohort = ?", arguments: [cohort]) ?? 0
    }
  }

  /// Removes a cohort and (by cascade) its exports, files, watermarks and index rows.
  public func removeCohort(named name: String) throws {
    try write { db in
      guard try CohortRecord.exists(db, key: name) else {
        throw try Store.notFound("cohort", name, db)
      }
      _ = try CohortRecord.deleteOne(db, key: name)
    }
  }

  public func renameCohort(_ old: String, to new: String) throws {
    try Names.validate(new, kind: "cohort")
    try write { db in
      guard try CohortRecord.exists(db, key: old) else {
        throw try Store.notFound("cohort", old, db)
      }
      if try CohortRecord.exists(db, key: new) { throw StoreError.alreadyExists(kind: "cohort", name: new) }
      try db.execute(sql: "UPDATE cohorts SET name = ? WHERE name = ?", arguments: [new, old])
    }
  }
}
