import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// Planning (`plan`, `dryRun`), per-type watermarks, and a job that vanished on the server.
@Suite("Plans and job loss")
struct PlanTests {
  @Test("C22/C51: dryRun of an incremental shows the _since it would send, and sends nothing")
  func dryRunShowsSince() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      let exporter = f.exporter()
      var incremental = ExportOptions()
      incremental.incremental = true
      // No watermark yet: the incremental is a full export.
      let before = try exporter.dryRun(cohortName: "diabetes", options: incremental)
      #expect(before.requests.count == 1)
      #expect(before.requests[0].url == f.server.baseURL + "/Group/diabetes-patients/$export")
      #expect(before.requests[0].body == nil)

      let first = try await f.export("diabetes")
      let t1 = try f.manifestTransactionTime(first)
      let count = await f.requests.count
      let dry = try exporter.dryRun(cohortName: "diabetes", options: incremental)
      let query = RecordedRequest(method: "GET", path: String(dry.requests[0].url.dropFirst(f.server.baseURL.count)), headers: [:])
      #expect(query.parameter("_since") == t1)
      let cohort = try f.store.cohort(named: "diabetes")
      let plan = try exporter.plan(cohort: cohort, options: incremental)
      #expect(plan.kind == "incremental")
      #expect(plan.jobs.map(\.parameters.since) == [t1])
      #expect(await f.requests.count == count, "dryRun sent a request")
      #expect(try f.store.exports(cohort: "diabetes").count == 1, "dryRun recorded a job")

      var both = incremental
      both.since = t1
      #expect(throws: ExportError.self) { _ = try exporter.plan(cohort: cohort, options: both) }
      var fullAndIncremental = incremental
      fullAndIncremental.full = true
      #expect(throws: ExportError.self) { _ = try exporter.plan(cohort: cohort, options: fullAndIncremental) }
    }
  }

  @Test("C52: watermarks per _type; a type without one is pulled in full in its own kick-off, the others from their own watermark")
  func watermarksPerType() async throws {
    try await withFixture { f in
      try f.addCohort("dm", types: "Patient,Observation")
      let first = try await f.export("dm")
      let t1 = try f.manifestTransactionTime(first)
      let marks = try f.store.watermarks(cohort: "dm")
      #expect(marks.map(\.resourceType) == ["Observation", "Patient"])
      #expect(marks.allSatisfy { $0.transactionTime == t1 })
      #expect(Set(try f.store.counts(cohort: "dm", at: first.export.id!).keys) == ["Observation", "Patient"])

      _ = try await f.server.advance(days: 1)
      let second = try await f.incremental("dm")
      #expect(second.export.since == t1)

      let t2 = try #require(second.export.transactionTime)

      // The definition gains Condition: it has no watermark, so it is pulled in full in a kick-off of its own,
      // while Patient and Observation go on from their own watermark.
      let change = try Registry.setDefinition(
        cohort: "dm", types: ["Patient", "Observation", "Condition"], typeFilters: nil, elements: nil, store: f.store)
      #expect(change.reset.isEmpty)
      let third = try await f.incremental("dm")
      #expect(third.export.since == nil)
      #expect(f.notes.value.contains { $0.contains("no watermark for Condition: pulled in full") })
      let kicks = await f.kickoffs().filter { $0.method == "GET" }
      try #require(kicks.count == 4)
      #expect(kicks[0].parameter("_type") == "Patient,Observation")
      #expect(kicks[1].parameter("_type") == "Patient,Observation")
      #expect(kicks[1].parameter("_since") == t1)
      #expect(kicks[2].parameter("_type") == "Condition")
      #expect(kicks[2].parameter("_since") == nil)
      #expect(kicks[3].parameter("_type") == "Patient,Observation")
      #expect(kicks[3].parameter("_since") == t2)
      let times = Dictionary(uniqueKeysWithValues: third.jobs.map { ($0.types ?? "", $0.transactionTime ?? "") })
      let finalMarks = Dictionary(uniqueKeysWithValues: try f.store.watermarks(cohort: "dm").map { ($0.resourceType, $0.transactionTime) })
      #expect(finalMarks == ["Condition": times["Condition"]!, "Observation": times["Patient,Observation"]!, "Patient": times["Patient,Observation"]!])
    }
  }

  @Test("C35: a job deleted on the server while we were away fails clearly; the next export starts afresh")
  func jobGoneOnResume() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      await f.server.setFaults(Faults(slowPolls: 1000))
      let exporter = f.exporter()
      let running = Task { try await exporter.export(cohortName: "diabetes", options: ExportOptions()) }
      let accepted = try await waitUntil(seconds: 60) { try f.store.openExport(cohort: "diabetes")?.phase == .accepted }
      try #require(accepted)
      running.cancel()
      _ = try? await running.value
      let open = try #require(try f.store.openExport(cohort: "diabetes"))
      let statusURL = try #require(open.statusURL)

      // Someone else deletes the job (or it expires).
      try await BulkClient(endpoint: BulkEndpoint(baseURL: f.server.baseURL)).delete(statusURL: statusURL)

      var caught: (any Error)?
      do { _ = try await f.export("diabetes") } catch { caught = error }
      let error = try #require(caught as? ExportError)
      guard case .bulk(.jobGone, let seq, let resumable, _) = error else {
        Issue.record("expected jobGone, got \(error)")
        return
      }
      #expect(seq == 1)
      #expect(!resumable)
      #expect(error.description.contains("run the export again"))
      #expect(try f.store.openExport(cohort: "diabetes") == nil)
      #expect(try f.store.export(id: open.id!)?.phase == .failed)

      // A fresh export: a new kick-off, a new job, committed.
      await f.server.setFaults(Faults())
      let before = await f.kickoffs().count
      let fresh = try await f.export("diabetes")
      #expect(!fresh.resumed)
      #expect(fresh.export.phase == .committed)
      #expect(await f.kickoffs().count == before + 1)
      #expect(fresh.export.seq == 2)
      #expect(fresh.export.statusURL != statusURL)
    }
  }
}
