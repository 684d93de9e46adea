import Foundation
import GRDB
import Testing

@testable import CohortStore

/// A fresh temporary folder, removed at the end of the test.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
  let dir = NSTemporaryDirectory() + "cohort-store-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(atPath: dir) }
  return try body(dir)
}

@Suite struct MigrationTests {
  @Test func freshDatabaseIsWALWithForeignKeysAndEveryMigration() throws {
    try withTemporaryDirectory { dir in
      let store = try Store(path: dir + "/cohort.sqlite")
      #expect(try store.appliedMigrations() == Store.knownMigrations.sorted())
      let mode = try store.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
      #expect(mode == "wal")
      let fk = try store.read { db in try Int.fetchOne(db, sql: "PRAGMA foreign_keys") }
      #expect(fk == 1)
    }
  }

  @Test func oldDatabaseIsUpgradedKeepingItsRows() throws {
    try withTemporaryDirectory { dir in
      let path = dir + "/cohort.sqlite"
      do {
        let old = try Store(path: path, upTo: "v1-registry")
        #expect(try old.appliedMigrations() == ["v1-registry"])
        // Rows as a v1 binary wrote them (today's records have columns v1 does not).
        try old.write { db in
          try db.execute(
            sql: """
              INSERT INTO servers (name, base_url, created_at) VALUES ('prod', 'https://fhir.example.org/r4', '2026-01-01T00:00:00Z');
              INSERT INTO cohorts (name, server, group_id, created_at) VALUES ('dm', 'prod', 'g1', '2026-01-01T00:00:00Z');
              """)
        }
      }
      let upgraded = try Store(path: path)
      #expect(try upgraded.appliedMigrations() == Store.knownMigrations.sorted())
      #expect(try upgraded.cohort(named: "dm").groupID == "g1")
      #expect(try upgraded.exportCount(cohort: "dm") == 0)
    }
  }

  @Test func newerDatabaseIsRefusedClearly() throws {
    try withTemporaryDirectory { dir in
      let path = dir + "/cohort.sqlite"
      _ = try Store(path: path)
      let queue = try DatabaseQueue(path: path)
      try queue.write { db in
        try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-future')")
      }
      try queue.close()
      let error = #expect(throws: StoreError.self) { try Store(path: path) }
      #expect(error == .newerSchema(path: path, unknown: ["v99-future"]))
      #expect(error?.description.contains("newer version of cohort") == true)
    }
  }

  @Test func corruptFileIsRefusedClearly() throws {
    try withTemporaryDirectory { dir in
      let path = dir + "/cohort.sqlite"
      try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
      let error = #expect(throws: StoreError.self) { try Store(path: path) }
      guard case .corrupt = error else {
        Issue.record("expected .corrupt, got \(String(describing: error))")
        return
      }
    }
  }
}

@Suite struct RegistryTests {
  @Test(arguments: ["a", "prod", "diabetes-patients", "x.y_z-1", "0abc", String(repeating: "a", count: 64)])
  func validNames(_ name: String) { #expect(Names.isValid(name)) }

  @Test(arguments: ["", "Prod", "-x", ".x", "a b", "a/b", "ü", String(repeating: "a", count: 65)])
  func invalidNames(_ name: String) { #expect(!Names.isValid(name)) }

  @Test func fhirIDs() {
    #expect(Names.isValidFHIRID("7f3a-diabetes.v2"))
    #expect(!Names.isValidFHIRID("a/b"))
    #expect(!Names.isValidFHIRID("a b"))
    #expect(!Names.isValidFHIRID(String(repeating: "a", count: 65)))
  }

  @Test func serversAndCohortsRoundTripAndRenameCascades() throws {
    try withTemporaryDirectory { dir in
      let store = try Store(path: dir + "/db.sqlite")
      try store.addServer(ServerRecord(name: "prod", baseURL: "https://x/r4", authKind: .bearer, tokenEnv: "TOKEN"))
      try store.addCohort(CohortRecord(name: "dm", server: "prod", groupID: "g1", defaultTypes: "Patient,Observation"))
      #expect(throws: StoreError.alreadyExists(kind: "server", name: "prod")) {
        try store.addServer(ServerRecord(name: "prod", baseURL: "https://y"))
      }
      try store.renameServer("prod", to: "production")
      #expect(try store.cohort(named: "dm").server == "production")
      #expect(try store.cohort(named: "dm").types == ["Patient", "Observation"])
      #expect(throws: StoreError.self) { try store.removeServer(named: "production") }
      try store.removeCohort(named: "dm")
      try store.removeServer(named: "production")
      #expect(try store.servers().isEmpty)
    }
  }

  @Test func unknownNamesListWhatExistsAndSuggest() throws {
    try withTemporaryDirectory { dir in
      let store = try Store(path: dir + "/db.sqlite")
      try store.addServer(ServerRecord(name: "prod", baseURL: "https://x/r4"))
      try store.addCohort(CohortRecord(name: "diabetes-patients", server: "prod", groupID: "g1"))
      let error = #expect(throws: StoreError.self) { try store.cohort(named: "diabetes-patient") }
      let text = error?.description ?? ""
      #expect(text.contains("did you mean 'diabetes-patients'"))
      #expect(text.contains("known: diabetes-patients"))
      #expect(throws: StoreError.self) {
        try store.addCohort(CohortRecord(name: "x", server: "nope", groupID: "g"))
      }
      #expect(throws: StoreError.self) {
        try store.addCohort(CohortRecord(name: "y", server: "prod", groupID: "bad/id"))
      }
    }
  }
}

@Suite struct IndexTests {
  func entry(_ type: String, _ id: String, _ hash: String, updated: String = "2024-01-01T00:00:00Z", patient: String? = nil) -> IndexEntry {
    IndexEntry(type: type, id: id, versionId: "1", lastUpdated: updated, hash: hash, patient: patient ?? (type == "Patient" ? id : nil), file: "f", offset: 0, length: 1)
  }

  func newExport(_ store: Store, kind: String = "full") throws -> ExportRecord {
    try store.createExport(cohort: "dm", kind: kind, since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get")
  }

  func makeStore(_ dir: String) throws -> Store {
    let store = try Store(path: dir + "/db.sqlite")
    try store.addServer(ServerRecord(name: "s", baseURL: "https://x"))
    try store.addCohort(CohortRecord(name: "dm", server: "s", groupID: "g"))
    return store
  }

  @Test func snapshotsDiffAndIdempotentReapply() throws {
    try withTemporaryDirectory { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      let r1 = try store.commitExport(
        CommitPlan(export: first, rebaselineTypes: [], deletes: [], members: ["p1", "p2"], watermarks: ["Patient": "T1"])
      ) { sink in
        for e in [entry("Patient", "p1", "a"), entry("Patient", "p2", "b"), entry("Observation", "o1", "c", patient: "p1")] {
          try sink(e)
        }
      }
      #expect(r1.added == 3)
      let second = try newExport(store, kind: "incremental")
      let r2 = try store.commitExport(
        CommitPlan(export: second, rebaselineTypes: nil, deletes: [("Observation", "o1")], members: ["p1", "p2", "p3"], watermarks: ["Patient": "T2"])
      ) { sink in
        try sink(entry("Patient", "p1", "a"))  // unchanged
        try sink(entry("Patient", "p2", "b2", updated: "2024-02-01T00:00:00Z"))  // changed
        try sink(entry("Patient", "p3", "d"))  // added
      }
      #expect(r2.added == 1 && r2.changed == 1 && r2.unchanged == 1 && r2.removed == 1)
      #expect(r2.joined == ["p3"])
      #expect(try store.counts(cohort: "dm", at: first.id!) == ["Patient": 2, "Observation": 1])
      #expect(try store.counts(cohort: "dm", at: second.id!) == ["Patient": 3])
      let diff = try store.diff(cohort: "dm", from: first.id!, to: second.id!, type: nil)
      #expect(diff.added == ["Patient": ["p3"]])
      #expect(diff.changed == ["Patient": ["p2"]])
      #expect(diff.removed == ["Observation": ["o1"]])
      #expect(diff.unchanged == ["Patient": 1])
      #expect(diff.joined == ["p3"])
      #expect(try store.watermarks(cohort: "dm").map(\.transactionTime) == ["T2"])

      // Applying the same entries again changes nothing.
      let before = try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM resources") }
      let again = try store.commitExport(
        CommitPlan(export: second, rebaselineTypes: nil, deletes: [("Observation", "o1")], members: ["p1", "p2", "p3"], watermarks: ["Patient": "T2"])
      ) { sink in
        try sink(entry("Patient", "p1", "a"))
        try sink(entry("Patient", "p2", "b2", updated: "2024-02-01T00:00:00Z"))
        try sink(entry("Patient", "p3", "d"))
      }
      #expect(again.added == 0 && again.changed == 0 && again.removed == 0 && again.unchanged == 3)
      let after = try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM resources") }
      #expect(before == after)
    }
  }

  @Test func olderVersionNeverOverwritesNewer() throws {
    try withTemporaryDirectory { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      _ = try store.commitExport(CommitPlan(export: first, rebaselineTypes: nil, deletes: [], members: nil, watermarks: [:])) {
        try $0(entry("Patient", "p1", "new", updated: "2024-05-01T00:00:00+02:00"))
      }
      let second = try newExport(store)
      let result = try store.commitExport(CommitPlan(export: second, rebaselineTypes: nil, deletes: [], members: nil, watermarks: [:])) {
        try $0(entry("Patient", "p1", "old", updated: "2024-04-30T21:00:00Z"))  // 1 h before the stored one
      }
      #expect(result.ignoredOlder == 1)
      #expect(try store.locate(cohort: "dm", type: "Patient", id: "p1", at: second.id!).map(\.hash) == ["new"])
    }
  }

  @Test func fullExportRebaselinesAndLeaversLeaveTheState() throws {
    try withTemporaryDirectory { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      _ = try store.commitExport(CommitPlan(export: first, rebaselineTypes: [], deletes: [], members: ["p1", "p2"], watermarks: [:])) { sink in
        try sink(entry("Patient", "p1", "a"))
        try sink(entry("Patient", "p2", "b"))
        try sink(entry("Observation", "o2", "c", patient: "p2"))
        try sink(entry("Observation", "o9", "z", patient: "p1"))
      }
      let second = try newExport(store)
      let result = try store.commitExport(CommitPlan(export: second, rebaselineTypes: [], deletes: [], members: ["p1"], watermarks: [:])) { sink in
        try sink(entry("Patient", "p1", "a"))
      }
      // o9 vanished without a delete (re-baseline); p2 left with their Observation.
      #expect(result.left == ["p2"])
      #expect(try store.counts(cohort: "dm", at: second.id!) == ["Patient": 1])
      #expect(try store.counts(cohort: "dm", at: first.id!) == ["Patient": 2, "Observation": 2])
    }
  }

  @Test func failedCommitLeavesStateUntouched() throws {
    try withTemporaryDirectory { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      struct Boom: Error {}
      #expect(throws: Boom.self) {
        _ = try store.commitExport(CommitPlan(export: first, rebaselineTypes: [], deletes: [], members: ["p1"], watermarks: ["Patient": "T"])) { sink in
          try sink(entry("Patient", "p1", "a"))
          throw Boom()
        }
      }
      #expect(try store.watermarks(cohort: "dm").isEmpty)
      #expect(try store.counts(cohort: "dm", at: first.id!).isEmpty)
      #expect(try store.export(id: first.id!)?.phase == .requested)
    }
  }
}

@Suite struct StoreErrorTextTests {
  @Test("SQLite errors from below the store are one line that says what to do (disk full, busy, damaged)")
  func databaseErrorsInWords() {
    #expect(StoreError.describe(DatabaseError(resultCode: .SQLITE_FULL))?.contains("disk is full") == true)
    #expect(StoreError.describe(DatabaseError(resultCode: .SQLITE_BUSY))?.contains("busy") == true)
    #expect(StoreError.describe(DatabaseError(resultCode: .SQLITE_CORRUPT))?.contains("damaged") == true)
    #expect(StoreError.describe(CocoaError(.fileNoSuchFile)) == nil)
  }
}
