import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// Watermarks (C40, C51, C52) and idempotent merges (C53).
@Suite("Watermarks and idempotence")
struct WatermarkTests {
  @Test("C52: watermarks move only in the commit, verbatim from the manifest")
  func watermarksOnlyOnCommit() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      let store = f.store
      // Watermarks as seen while the export runs (every event: kick-off, polls, downloads).
      let seen = Box<[[String]]>([])
      let watch: @Sendable (BulkEvent) -> Void = { _ in
        let marks = (try? store.watermarks(cohort: "diabetes").map { "\($0.resourceType)=\($0.transactionTime)" }) ?? ["<error>"]
        seen.mutate { $0.append(marks) }
      }
      let first = try await f.exporter(onEvent: watch).export(cohortName: "diabetes", options: ExportOptions())
      #expect(seen.value.count > 3)
      #expect(seen.value.allSatisfy { $0.isEmpty }, "a watermark appeared before the commit")
      let t1 = try f.manifestTransactionTime(first)
      let marks1 = try f.store.watermarks(cohort: "diabetes")
      #expect(!marks1.isEmpty)
      #expect(marks1.allSatisfy { $0.transactionTime == t1 && $0.exportID == first.export.id })
      // A cohort of every type: one watermark covers every type ("*"), set from this manifest.
      #expect(marks1.map(\.resourceType) == ["*"])

      _ = try await f.server.advance(days: 1)
      seen.value = []
      var options = ExportOptions()
      options.incremental = true
      let second = try await f.exporter(onEvent: watch).export(cohortName: "diabetes", options: options)
      let before = marks1.map { "\($0.resourceType)=\($0.transactionTime)" }
      #expect(seen.value.allSatisfy { $0 == before }, "watermarks moved before the commit")
      let t2 = try f.manifestTransactionTime(second)
      #expect(t2 != t1)
      let marks2 = try f.store.watermarks(cohort: "diabetes")
      #expect(marks2.count == marks1.count)
      #expect(marks2.allSatisfy { $0.transactionTime == t2 && $0.exportID == second.export.id })
    }
  }

  @Test("C40: a partial export leaves watermarks alone unless acceptPartial")
  func partialExportKeepsWatermarks() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      let first = try await f.export("diabetes")
      let marks1 = try f.store.watermarks(cohort: "diabetes")
      _ = try await f.server.advance(days: 1)

      await f.server.setFaults(Faults(partialFailure: true))
      let partial = try await f.incremental("diabetes")
      #expect(partial.partial)
      #expect(partial.export.outcome == "partial")
      #expect(partial.export.phase == .committed)
      #expect(try f.store.watermarks(cohort: "diabetes") == marks1, "a partial export moved the watermarks")
      #expect(f.notes.value.contains { $0.contains("accept-partial") })
      #expect(f.filesOnDisk("diabetes").contains { $0.hasPrefix(partial.export.folderName + "/error/") })

      // The next incremental still starts from the first export's transactionTime.
      let forced: ExportOutcome
      do {
        var options = ExportOptions()
        options.incremental = true
        options.acceptPartial = true
        forced = try await f.export("diabetes", options)
      }
      let kicks = await f.kickoffs().filter { $0.method == "GET" }
      try #require(kicks.count == 3)
      #expect(kicks[2].parameter("_since") == first.export.transactionTime)
      #expect(forced.partial)
      let t3 = try f.manifestTransactionTime(forced)
      let marks3 = try f.store.watermarks(cohort: "diabetes")
      #expect(!marks3.isEmpty)
      #expect(marks3.allSatisfy { $0.transactionTime == t3 && $0.exportID == forced.export.id })
    }
  }

  @Test("C40/C52: a partial FULL export does not erase the type the server failed to send")
  func partialFullExportKeepsMissingType() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      let first = try await f.export("diabetes")
      let a = try #require(first.export.id)
      let firstTypes = Set(try Manifest.parse(Data(contentsOf: URL(fileURLWithPath: first.folder + "/manifest.json"))).output.map(\.type))

      await f.server.setFaults(Faults(partialFailure: true))
      let partial = try await f.export("diabetes")
      #expect(partial.partial)
      let partialTypes = Set(try Manifest.parse(Data(contentsOf: URL(fileURLWithPath: partial.folder + "/manifest.json"))).output.map(\.type))
      let failed = firstTypes.subtracting(partialTypes)
      try #require(failed.count == 1, "the fault should drop exactly one type: \(firstTypes) vs \(partialTypes)")
      let type = try #require(failed.first)
      let before = try f.store.counts(cohort: "diabetes", at: a)
      let after = try f.store.counts(cohort: "diabetes", at: try #require(partial.export.id))
      // Every other type is untouched (same data on the server).
      for t in partialTypes { #expect(after[t] == before[t], "count of \(t)") }
      // The type the server failed to send is not re-baselined away (no re-baseline for a partial export).
      #expect(after[type] == before[type], "the \(type) resources the server failed to send were removed")
    }
  }

  @Test("C53: exporting twice with no change in between changes nothing")
  func fullExportTwiceIsIdempotent() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      let first = try await f.export("diabetes")
      let second = try await f.export("diabetes")
      #expect(second.ingest.added == 0)
      #expect(second.ingest.changed == 0)
      #expect(second.ingest.removed == 0)
      #expect(second.ingest.unchanged == first.ingest.added)
      let a = try #require(first.export.id)
      let b = try #require(second.export.id)
      let diff = try f.store.diff(cohort: "diabetes", from: a, to: b, type: nil)
      #expect(diff.added.isEmpty && diff.changed.isEmpty && diff.removed.isEmpty)
      #expect(try f.state("diabetes", at: a) == f.state("diabetes", at: b))
      #expect(try f.store.snapshots(cohort: "diabetes").count == 2)
    }
  }

  @Test("C53: applying the same incremental twice (same _since) gives the same snapshot")
  func incrementalTwiceIsIdempotent() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      let first = try await f.export("diabetes")
      let t1 = try #require(first.export.transactionTime)
      let report = try await f.server.advance(days: 2)
      #expect(report.deletedCount > 0)
      let second = try await f.incremental("diabetes")
      #expect(second.ingest.added + second.ingest.changed + second.ingest.removed > 0)

      var again = ExportOptions()
      again.since = t1
      let third = try await f.export("diabetes", again)
      let kicks = await f.kickoffs().filter { $0.method == "GET" }
      try #require(kicks.count == 3)
      #expect(kicks[2].parameter("_since") == t1)
      #expect(third.resources > 0)
      #expect(third.ingest.added == 0)
      #expect(third.ingest.changed == 0)
      #expect(third.ingest.removed == 0)
      #expect(third.ingest.resent + third.ingest.ignoredOlder == third.resources)
      let b = try #require(second.export.id)
      let c = try #require(third.export.id)
      #expect(try f.state("diabetes", at: b) == f.state("diabetes", at: c))
      let diff = try f.store.diff(cohort: "diabetes", from: b, to: c, type: nil)
      #expect(diff.added.isEmpty && diff.changed.isEmpty && diff.removed.isEmpty)
    }
  }
}
