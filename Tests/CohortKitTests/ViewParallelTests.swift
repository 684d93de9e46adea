import CohortTestSupport
import CohortKit
import Foundation
import Testing

/// `view run` on several threads (issue 14, throughput): the rows, their order and the errors are the same as on one
/// thread, over files of many resources (more than one batch) and over several files.
@Suite("Views in parallel")
struct ViewParallelTests {
  static let view = """
    {"resourceType": "ViewDefinition", "resource": "Observation", "status": "active",
     "select": [{"column": [{"name": "id", "path": "getResourceKey()"}, {"name": "patient", "path": "subject.getReferenceKey(Patient)"}]},
                {"forEach": "component", "column": [{"name": "code", "path": "code.coding.first().code"},
                                                    {"name": "value", "path": "value.ofType(Quantity).value"}]}],
     "where": [{"path": "status = 'final'"}]}
    """

  /// `count` Observations with 0–3 components each, some not final, and a Patient line in between now and then.
  static func ndjson(_ count: Int, seed: Int) -> String {
    var out = ""
    for i in 0..<count {
      if i % 97 == 0 { out += #"{"resourceType":"Patient","id":"p\#(i)"}"# + "\n" }
      let components = (0..<((i + seed) % 4)).map { k in
        #"{"code":{"coding":[{"code":"c\#(k)"}]},"valueQuantity":{"value":\#(i * 10 + k).5}}"#
      }
      let status = (i + seed) % 11 == 0 ? "preliminary" : "final"
      out += #"{"resourceType":"Observation","id":"o\#(seed)-\#(i)","status":"\#(status)","subject":{"reference":"Patient/p\#(i % 50)"},"component":[\#(components.joined(separator: ","))]}"#
      out += "\n"
    }
    return out
  }

  static func folder() throws -> String {
    let dir = NSTemporaryDirectory() + "cohort-view-parallel-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try view.write(toFile: dir + "/view.json", atomically: true, encoding: .utf8)
    return dir
  }

  static func rows(_ spec: ViewSpec, _ files: [String], workers: Int) throws -> (ViewRunStats, [String]) {
    var rows: [String] = []
    let stats = try ViewRunner.run(spec, files: files, workers: workers) { rows.append($0.cells.joined(separator: "|")) }
    return (stats, rows)
  }

  @Test("rows from 1, 2 and 5 workers are identical and in the same order, over several files of several batches")
  func parallelRowsEqualSequentialRows() throws {
    let dir = try Self.folder()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Self.ndjson(3000, seed: 1).write(toFile: dir + "/Observation.1.ndjson", atomically: true, encoding: .utf8)
    try Self.ndjson(700, seed: 2).write(toFile: dir + "/Observation.2.ndjson", atomically: true, encoding: .utf8)
    try Self.ndjson(1, seed: 3).write(toFile: dir + "/Observation.3.ndjson", atomically: true, encoding: .utf8)
    let spec = try ViewSpec(path: dir + "/view.json")
    let files = try ViewRunner.ndjsonFiles(at: dir)
    let (stats1, one) = try Self.rows(spec, files, workers: 1)
    #expect(stats1.resources == 3701)
    #expect(stats1.rows == one.count)
    #expect(one.count > 3000)
    #expect(one.first?.hasPrefix("o1-0|p0|c0|") == true, "\(one.first ?? "")")
    for workers in [2, 5] {
      let (stats, many) = try Self.rows(spec, files, workers: workers)
      #expect(stats == stats1)
      #expect(many == one, "\(workers) workers give the rows of 1 worker, in order")
    }
  }

  @Test("a bad line fails the run naming its file, after the rows of the lines before it, whatever the workers")
  func errorsAreReportedInOrder() throws {
    let dir = try Self.folder()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var lines = Self.ndjson(2000, seed: 1).split(separator: "\n").map(String.init)
    lines[1500] = #"{"resourceType":"Observation","id":"bad","status":"final","#
    try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/Observation.1.ndjson", atomically: true, encoding: .utf8)
    let spec = try ViewSpec(path: dir + "/view.json")
    var counts: [Int] = []
    for workers in [1, 2, 4] {
      var delivered = 0
      do {
        _ = try ViewRunner.run(spec, files: [dir + "/Observation.1.ndjson"], workers: workers) { _ in delivered += 1 }
        Issue.record("a truncated resource must fail the run")
      } catch {
        #expect("\(error)".contains("Observation.1.ndjson"), "\(error)")
      }
      counts.append(delivered)
    }
    #expect(counts[0] > 0)
    #expect(Set(counts).count == 1, "the same rows come before the error: \(counts)")
  }
}
