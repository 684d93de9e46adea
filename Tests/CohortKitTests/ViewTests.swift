import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import Foundation
import Testing

/// Views over cohorts (issue 14): rows from the index's live resources at a snapshot, checked
/// against values computed independently from the same resources with JSONSerialization.
@Suite("Views over cohorts")
struct ViewTests {
  static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Notebooks/views").path

  static func spec(_ name: String) throws -> ViewSpec { try ViewSpec(path: examples + "/" + name + ".json") }

  /// Every live resource of a type at a snapshot, parsed with JSONSerialization.
  static func resources(_ f: Fixture, _ cohort: String, _ type: String, at exportID: Int64, seq: Int) throws -> [[String: Any]] {
    try f.state(cohort, at: exportID).filter { $0.hasPrefix(type + "/") }.map { entry in
      let reference = String(entry.split(separator: "#")[0])
      return try f.resource(cohort, reference, at: seq)
    }
  }

  static func run(_ f: Fixture, _ spec: ViewSpec, _ cohort: String, at exportID: Int64) throws -> [[String]] {
    var rows: [[String]] = []
    let stats = try ViewRunner.run(spec, store: f.store, workspace: f.workspace, cohort: cohort, at: exportID) {
      rows.append($0.cells)
    }
    #expect(stats.rows == rows.count)
    return rows
  }

  /// Numbers compare by value (the server may write 7 or 7.0).
  static func normalized(_ rows: [[String]]) -> [String] {
    rows.map { row in row.map { cell in Double(cell).map { String($0) } ?? cell }.joined(separator: "|") }.sorted()
  }

  static func ref(_ any: Any?) -> String {
    guard let r = (any as? [String: Any])?["reference"] as? String, r.hasPrefix("Patient/") else { return "" }
    return String(r.dropFirst("Patient/".count))
  }

  static func loinc(_ any: Any?, _ code: String) -> Bool {
    let codings = ((any as? [String: Any])?["coding"] as? [[String: Any]]) ?? []
    return codings.contains { $0["system"] as? String == "http://loinc.org" && $0["code"] as? String == code }
  }

  static func number(_ any: Any?) -> String {
    guard let v = (any as? [String: Any])?["value"] as? NSNumber else { return "" }
    return String(v.doubleValue)
  }

  static func expectedDemographics(_ patients: [[String: Any]]) -> [[String]] {
    patients.map { p in
      let names = (p["name"] as? [[String: Any]]) ?? []
      let official = names.first { $0["use"] as? String == "official" }
      return [
        p["id"] as? String ?? "", p["gender"] as? String ?? "", p["birthDate"] as? String ?? "",
        (p["deceasedBoolean"] as? Bool) == true ? "true" : "false",
        official?["family"] as? String ?? "",
        official.map { (($0["given"] as? [String]) ?? []).joined(separator: " ") } ?? "",
      ]
    }
  }

  static func expectedHbA1c(_ observations: [[String: Any]]) -> [[String]] {
    observations.filter { loinc($0["code"], "4548-4") }.map { o in
      let q = o["valueQuantity"] as? [String: Any]
      return [o["id"] as? String ?? "", ref(o["subject"]), o["effectiveDateTime"] as? String ?? "", number(q), q?["unit"] as? String ?? ""]
    }
  }

  static func expectedBloodPressure(_ observations: [[String: Any]]) -> [[String]] {
    observations.compactMap { o in
      let components = (o["component"] as? [[String: Any]]) ?? []
      guard components.contains(where: { loinc($0["code"], "8480-6") }) else { return nil }
      let value = { (code: String) in number(components.first { loinc($0["code"], code) }?["valueQuantity"]) }
      return [o["id"] as? String ?? "", ref(o["subject"]), o["effectiveDateTime"] as? String ?? "", value("8480-6"), value("8462-4")]
    }
  }

  static func expectedConditions(_ conditions: [[String: Any]]) -> [[String]] {
    conditions.flatMap { c -> [[String]] in
      let status = ((c["clinicalStatus"] as? [String: Any])?["coding"] as? [[String: Any]]) ?? []
      guard status.contains(where: { $0["code"] as? String == "active" }) else { return [] }
      let codings = (((c["code"] as? [String: Any])?["coding"] as? [[String: Any]]) ?? [])
        .filter { $0["system"] as? String == "http://snomed.info/sct" }
      return codings.map {
        [c["id"] as? String ?? "", ref(c["subject"]), c["onsetDateTime"] as? String ?? "", $0["code"] as? String ?? "", $0["display"] as? String ?? ""]
      }
    }
  }

  @Test("the example views over a cohort snapshot give the rows computed independently from its resources")
  func examplesOverCohort() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      let outcome = try await f.export("diabetes")
      let id = try #require(outcome.export.id)
      let seq = outcome.export.seq
      let patients = try Self.resources(f, "diabetes", "Patient", at: id, seq: seq)
      let observations = try Self.resources(f, "diabetes", "Observation", at: id, seq: seq)
      let conditions = try Self.resources(f, "diabetes", "Condition", at: id, seq: seq)
      #expect(!patients.isEmpty && !observations.isEmpty && !conditions.isEmpty)

      let demo = try Self.run(f, try Self.spec("patient_demographics"), "diabetes", at: id)
      #expect(demo.count == patients.count)
      #expect(Self.normalized(demo) == Self.normalized(Self.expectedDemographics(patients)))

      let a1c = try Self.run(f, try Self.spec("hba1c"), "diabetes", at: id)
      #expect(!a1c.isEmpty, "a diabetes cohort has HbA1c results")
      #expect(Self.normalized(a1c) == Self.normalized(Self.expectedHbA1c(observations)))

      let bp = try Self.run(f, try Self.spec("blood_pressure"), "diabetes", at: id)
      #expect(!bp.isEmpty)
      #expect(Self.normalized(bp) == Self.normalized(Self.expectedBloodPressure(observations)))

      let active = try Self.run(f, try Self.spec("active_conditions"), "diabetes", at: id)
      #expect(!active.isEmpty)
      #expect(Self.normalized(active) == Self.normalized(Self.expectedConditions(conditions)))

      // The same view over the export's NDJSON files (no index) gives the same rows.
      var fromFiles: [[String]] = []
      _ = try ViewRunner.run(try Self.spec("hba1c"), files: try ViewRunner.ndjsonFiles(at: outcome.folder)) {
        fromFiles.append($0.cells)
      }
      #expect(Self.normalized(fromFiles) == Self.normalized(a1c))
    }
  }

  @Test("a view runs as of any snapshot: after an incremental export, #1 still gives the old rows")
  func asOfSnapshot() async throws {
    try await withFixture { f in
      try f.addCohort("everyone", group: "all-patients")
      let first = try await f.export("everyone")
      _ = try await f.server.advance(days: 3)
      let second = try await f.incremental("everyone")
      let a = try #require(first.export.id)
      let b = try #require(second.export.id)
      let spec = try Self.spec("hba1c")
      let rowsA = try Self.run(f, spec, "everyone", at: a)
      let rowsB = try Self.run(f, spec, "everyone", at: b)
      let obsA = try Self.resources(f, "everyone", "Observation", at: a, seq: first.export.seq)
      let obsB = try Self.resources(f, "everyone", "Observation", at: b, seq: second.export.seq)
      #expect(Self.normalized(rowsA) == Self.normalized(Self.expectedHbA1c(obsA)))
      #expect(Self.normalized(rowsB) == Self.normalized(Self.expectedHbA1c(obsB)))
      #expect(rowsA.count != rowsB.count || Self.normalized(rowsA) != Self.normalized(rowsB), "three days of visits change the HbA1c table")
    }
  }

  @Test("saved views: save validates and keeps the file, list and load find it; an invalid view is refused with its location")
  func savedViews() throws {
    let dir = NSTemporaryDirectory() + "views-test-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let workspace = Workspace(location: WorkspaceLocation(path: dir, source: .option))
    let saved = SavedViews(workspace: workspace)
    try saved.save(name: "hba1c", from: Self.examples + "/hba1c.json")
    #expect(saved.names() == ["hba1c"])
    #expect(try saved.load("hba1c").columnNames == ["observation_id", "patient_id", "effective", "value", "unit"])
    let bad = dir + "/bad.json"
    try Data(#"{"resource":"Patient","select":[{"column":[{"name":"x","path":"name.given.join(%nope)"}]}]}"#.utf8)
      .write(to: URL(fileURLWithPath: bad))
    do {
      try saved.save(name: "bad", from: bad)
      Issue.record("an undefined constant was accepted")
    } catch {
      #expect("\(error)".contains("select[0].column[0].path"))
      #expect("\(error)".contains("%nope"))
    }
    #expect(saved.names() == ["hba1c"])
    #expect(throws: (any Error).self) { try saved.save(name: "../x", from: Self.examples + "/hba1c.json") }
  }

  @Test("materialize writes typed tables into the cohort's analysis database with their snapshot; sql reads them and refuses writes; view diff is the multiset change")
  func materializeSQLAndDiff() async throws {
    try await withFixture { f in
      try f.addCohort("everyone", group: "all-patients")
      let first = try await f.export("everyone")
      let a1c = try Self.spec("hba1c")
      let demo = try Self.spec("patient_demographics")
      let m1 = try ViewAnalysis.materialize(a1c, name: "hba1c", store: f.store, workspace: f.workspace, cohort: "everyone", snapshot: first.export)
      _ = try ViewAnalysis.materialize(demo, name: "patient_demographics", store: f.store, workspace: f.workspace, cohort: "everyone", snapshot: first.export)
      let rows1 = try Self.run(f, a1c, "everyone", at: first.export.id!)
      #expect(m1.rows == rows1.count && m1.snapshotSeq == first.export.seq && m1.viewSHA256 == a1c.sha256)
      #expect(ViewAnalysis.databasePath(workspace: f.workspace, cohort: "everyone") != f.workspace.databasePath)

      // Typed columns: decimals are REAL, joins work through the key columns.
      let types = try ViewAnalysis.query(workspace: f.workspace, cohort: "everyone", sql: "SELECT DISTINCT typeof(value) FROM hba1c")
      #expect(types.rows == [["real"]])
      let joined = try ViewAnalysis.query(
        workspace: f.workspace, cohort: "everyone",
        sql: "SELECT count(*) FROM hba1c h JOIN patient_demographics p USING (patient_id)")
      #expect(joined.rows == [[String(rows1.count)]])
      // Each column's kind comes from SQLite's storage classes: `--format json` writes numbers and text as such.
      #expect(joined.kinds == [.integer])
      let mixed = try ViewAnalysis.query(
        workspace: f.workspace, cohort: "everyone", sql: "SELECT patient_id, value, '123' AS label FROM hba1c LIMIT 2")
      #expect(mixed.kinds == [.text, .number, .text])
      let recorded = try ViewAnalysis.materialized(workspace: f.workspace, cohort: "everyone")
      #expect(recorded.map(\.table) == ["hba1c", "patient_demographics"])

      // Writes are refused and change nothing; the store's own tables are not there.
      #expect(throws: AnalysisError.writeRefused) {
        try ViewAnalysis.query(workspace: f.workspace, cohort: "everyone", sql: "DELETE FROM hba1c")
      }
      #expect(throws: (any Error).self) {
        try ViewAnalysis.query(workspace: f.workspace, cohort: "everyone", sql: "SELECT count(*) FROM resources")
      }
      let count = try ViewAnalysis.query(workspace: f.workspace, cohort: "everyone", sql: "SELECT count(*) FROM hba1c")
      #expect(count.rows == [[String(rows1.count)]])

      // Diff between two snapshots = rows(B) − rows(A) and rows(A) − rows(B), as multisets.
      _ = try await f.server.advance(days: 5)
      let second = try await f.incremental("everyone")
      let rows2 = try Self.run(f, a1c, "everyone", at: second.export.id!)
      let (added, removed) = try ViewAnalysis.diff(
        a1c, store: f.store, workspace: f.workspace, cohort: "everyone", from: first.export.id!, to: second.export.id!)
      var before = Self.normalized(rows1)
      var after = Self.normalized(rows2)
      for r in Self.normalized(added.map(\.cells)) {
        let k = try #require(after.firstIndex(of: r), "added row \(r) is not in the new rows")
        after.remove(at: k)
      }
      for r in Self.normalized(removed.map(\.cells)) {
        let k = try #require(before.firstIndex(of: r), "removed row \(r) is not in the old rows")
        before.remove(at: k)
      }
      #expect(before == after, "what is neither added nor removed is unchanged")
      #expect(!added.isEmpty)
    }
  }
}
