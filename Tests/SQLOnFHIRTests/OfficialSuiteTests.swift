import FHIRPath
import Foundation
import SQLOnFHIR
import Testing

/// The official SQL-on-FHIR v2 test suite (HL7, `tests/*.json`, 134 cases in 22 files), read where
/// it lies: `../shared/data/sql-on-fhir-v2/tests` from the package root (or `../../shared/…` from a
/// worktree). Absent → skipped with a message, except under CI=true where it must be present.
enum OfficialSuite {
  static let files = [
    "basic", "collection", "combinations", "constant", "constant_types", "fhirpath",
    "fhirpath_numbers", "fn_boundary", "fn_empty", "fn_extension", "fn_first", "fn_join",
    "fn_oftype", "fn_reference_keys", "foreach", "logic", "repeat", "row_index", "union",
    "validate", "view_resource", "where",
  ]
  static let expectedCases = 134

  static let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  static let directory: URL? = {
    for rel in ["../shared/data/sql-on-fhir-v2/tests", "../../shared/data/sql-on-fhir-v2/tests"] {
      let url = packageRoot.appendingPathComponent(rel).standardizedFileURL
      if FileManager.default.fileExists(atPath: url.appendingPathComponent("basic.json").path) { return url }
    }
    return nil
  }()

  static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

  struct Outcome {
    var title: String
    var passed: Bool
    var detail: String
  }

  /// Runs every case of one file.
  static func run(file: String) throws -> [Outcome] {
    guard let dir = directory else { throw SuiteMissing() }
    let data = try Data(contentsOf: dir.appendingPathComponent(file + ".json"))
    let doc = try JSON.parse(data)
    let resources = doc["resources"]?.arrayValue ?? []
    var outcomes: [Outcome] = []
    for test in doc["tests"]?.arrayValue ?? [] {
      let title = test["title"]?.stringValue ?? "?"
      outcomes.append(runCase(test, title: title, resources: resources))
    }
    return outcomes
  }

  static func runCase(_ test: JSON, title: String, resources: [JSON]) -> Outcome {
    let expectError = test["expectError"] == .bool(true)
    let view: ViewDefinition
    var rows: [ViewDefinition.Row] = []
    do {
      view = try ViewDefinition(json: test["view"] ?? .null)
      for r in resources { rows += try view.rows(for: r) }
    } catch {
      return Outcome(
        title: title, passed: expectError, detail: expectError ? "rejected: \(error)" : "unexpected error: \(error)")
    }
    if expectError {
      return Outcome(title: title, passed: false, detail: "expected an error, got \(rows.count) rows")
    }
    if let cols = test["expectColumns"]?.arrayValue {
      let names = view.columns.map { JSON.string($0.name) }
      if names != cols {
        return Outcome(title: title, passed: false, detail: "columns \(names) ≠ expected \(cols)")
      }
    }
    guard let expect = test["expect"]?.arrayValue else {
      return Outcome(title: title, passed: true, detail: "columns only")
    }
    let got = view.objects(rows)
    // Unordered multiset comparison (the suite's rule).
    var remaining = expect
    var unexpected: [JSON] = []
    for row in got {
      if let k = remaining.firstIndex(where: { rowEqual($0, row) }) {
        remaining.remove(at: k)
      } else {
        unexpected.append(row)
      }
    }
    if remaining.isEmpty && unexpected.isEmpty { return Outcome(title: title, passed: true, detail: "") }
    return Outcome(
      title: title, passed: false,
      detail: "missing rows \(remaining.map(\.jsonText)); unexpected rows \(unexpected.map(\.jsonText))")
  }

  /// Rows are equal when every expected column has an equal value (numbers by value; a column
  /// absent from the expectation must be null).
  static func rowEqual(_ expected: JSON, _ got: JSON) -> Bool {
    guard case .object(let e) = expected, case .object(let g) = got else { return false }
    for (k, key) in g.keys.enumerated() {
      let ev = e[key] ?? .null
      if !valueEqual(ev, g.values[k]) { return false }
    }
    for key in e.keys where g[key] == nil { return false }
    return true
  }

  static func valueEqual(_ a: JSON, _ b: JSON) -> Bool {
    if let x = a.doubleValue, let y = b.doubleValue { return Swift.abs(x - y) <= 1e-9 * max(1, Swift.abs(x)) }
    if case .array(let xs) = a, case .array(let ys) = b {
      return xs.count == ys.count && zip(xs, ys).allSatisfy { valueEqual($0, $1) }
    }
    return a == b
  }

  struct SuiteMissing: Error, CustomStringConvertible {
    var description: String {
      "SQL-on-FHIR v2 test suite not found at ../shared/data/sql-on-fhir-v2/tests (from \(packageRoot.path))"
    }
  }
}

@Suite("SQL-on-FHIR v2 official test suite")
struct OfficialSuiteTests {
  @Test(
    "every case of one suite file passes",
    .enabled(if: OfficialSuite.directory != nil || OfficialSuite.isCI), arguments: OfficialSuite.files)
  func file(_ name: String) throws {
    let outcomes = try OfficialSuite.run(file: name)
    #expect(!outcomes.isEmpty, "\(name).json has no tests")
    for o in outcomes where !o.passed {
      let message = "\(name).json › \(o.title): \(o.detail)"
      print("FAILED " + message)
      Issue.record(Comment(rawValue: message))
    }
  }

  @Test(
    "all 134 cases pass (per-file tally and total)",
    .enabled(if: OfficialSuite.directory != nil || OfficialSuite.isCI))
  func total() throws {
    guard let dir = OfficialSuite.directory else {
      Issue.record("\(OfficialSuite.SuiteMissing()) — required when CI=true")
      return
    }
    let present = try FileManager.default.contentsOfDirectory(atPath: dir.path)
      .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    #expect(present == OfficialSuite.files.sorted(), "the suite's files changed: \(present)")
    var passed = 0
    var total = 0
    var lines: [String] = []
    for name in OfficialSuite.files {
      let outcomes = try OfficialSuite.run(file: name)
      let ok = outcomes.filter(\.passed).count
      passed += ok
      total += outcomes.count
      lines.append("  \(name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(ok)/\(outcomes.count)")
    }
    print("SQL-on-FHIR v2 suite:\n" + lines.joined(separator: "\n") + "\n  total \(passed)/\(total)")
    #expect(total == OfficialSuite.expectedCases)
    #expect(passed == total)
  }

  @Test(
    "the suite is present (skipped when absent outside CI)",
    .enabled(if: OfficialSuite.directory == nil && !OfficialSuite.isCI))
  func absent() {
    print("SKIPPED: \(OfficialSuite.SuiteMissing()); set CI=true to make this a failure")
  }
}
