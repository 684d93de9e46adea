import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// One writer per cohort (issue 11): an OS file lock held from planning to commit, and at most one open export
/// per cohort in the schema.
@Suite("One writer per cohort")
struct LockTests {
  @Test("a second export of a running cohort is refused naming the holder; another cohort exports meanwhile")
  func secondExportRefused() async throws {
    try await withFixture { f in
      try f.addCohort("dm")
      try f.addCohort("other", group: "all-patients")
      await f.server.setFaults(Faults(slowPolls: 1000))
      let exporter = f.exporter()
      let running = Task { try await exporter.export(cohortName: "dm", options: ExportOptions()) }
      let accepted = try await waitUntil(seconds: 20) { try f.store.openExport(cohort: "dm")?.phase == .accepted }
      try #require(accepted)

      var caught: (any Error)?
      do { _ = try await f.export("dm") } catch { caught = error }
      let error = try #require(caught as? ExportError)
      guard case .locked(let cohort, let holder) = error else {
        Issue.record("expected locked, got \(error)")
        return
      }
      #expect(cohort == "dm")
      #expect(holder.contains("process \(getpid())"))
      #expect(error.exitCode == 1)
      #expect(!error.description.contains("\n"))

      // Exports of different cohorts may run at once (other polls slowly too: let it finish first).
      await f.server.setFaults(Faults())
      let other = try await f.export("other")
      #expect(other.export.phase == .committed)

      let first = try await running.value
      #expect(first.export.phase == .committed)
      #expect(try f.store.snapshots(cohort: "dm").count == 1)
      #expect(try f.store.exports(cohort: "dm").count == 1, "the refused export recorded a job")
    }
  }

  @Test("the schema holds at most one open export per cohort")
  func oneOpenExportInTheSchema() async throws {
    try await withFixture { f in
      try f.addCohort("dm")
      _ = try f.store.createExport(
        cohort: "dm", kind: "full", since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get")
      #expect(throws: StoreError.self) {
        _ = try f.store.createExport(
          cohort: "dm", kind: "full", since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get")
      }
    }
  }

  @Test("two cohort processes exporting one cohort at once: exactly one runs, the other exits 1 with one clear line")
  func twoProcesses() async throws {
    guard FileManager.default.isExecutableFile(atPath: Binary.path) else {
      Issue.record("build the cohort binary first: swift build --build-tests (\(Binary.path))")
      return
    }
    try await withFixture({ $0.pollsBeforeComplete = 2 }) { f in
      let home = f.dir + "/binary"
      try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
      let workspace = home + "/Cohorts"
      let setup = try Binary.run(
        ["-w", workspace, "-c", "server add srv \(f.server.baseURL); cohort add dm --server srv --group diabetes-patients"],
        cwd: home)
      try #require(setup.status == 0, "\(setup.stderr)")
      let a = try Binary.launch(["-w", workspace, "export", "dm"], cwd: home, tag: "a")
      let b = try Binary.launch(["-w", workspace, "export", "dm"], cwd: home, tag: "b")
      a.process.waitUntilExit()
      b.process.waitUntilExit()
      let statuses = [a.process.terminationStatus, b.process.terminationStatus].sorted()
      #expect(statuses == [0, 1], "a: \(a.stderr) b: \(b.stderr)")
      let loser = a.process.terminationStatus == 1 ? a : b
      let lines = loser.stderr.split(separator: "\n").filter { $0.contains("error") }
      #expect(lines.count == 1 && lines[0].contains("is being exported by"), "\(loser.stderr)")
      let store = try Store(path: workspace + "/cohort.sqlite")
      #expect(try store.openExport(cohort: "dm") == nil)
      #expect(try store.snapshots(cohort: "dm").count == 1)
      #expect(try store.exports(cohort: "dm").count == 1)
    }
  }
}
