import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// Resume of an interrupted job (C37) and cancel (C36), in-process.
@Suite("Resume and cancel")
struct ResumeTests {
  @Test("C37: downloads that exhaust their retries leave a resumable job; the rerun makes no second kick-off")
  func resumeAfterFailedDownloads() async throws {
    try await withFixture({ $0.resourcesPerFile = 60 }) { f in
      try f.addCohort("clean")
      _ = try await f.export("clean")
      let cleanState = try f.latestState("clean")
      let mark = await f.requests.count

      try f.addCohort("diabetes")
      await f.server.setFaults(Faults(fileErrors: 10))
      var caught: (any Error)?
      do { _ = try await f.export("diabetes") } catch { caught = error }
      let error = try #require(caught as? ExportError)
      guard case .bulk(.downloadsFailed, _, true, _) = error else {
        Issue.record("expected a resumable downloadsFailed, got \(error)")
        return
      }
      #expect(error.description.contains("`export diabetes` resumes it"))
      let open = try #require(try f.store.openExport(cohort: "diabetes"))
      #expect(open.phase == .downloading)
      let statusURL = try #require(open.statusURL)
      #expect(try f.store.snapshots(cohort: "diabetes").isEmpty)
      #expect(try f.store.watermarks(cohort: "diabetes").isEmpty)
      #expect(f.partFiles() == [])

      await f.server.setFaults(Faults())
      let out = try await f.export("diabetes")
      #expect(out.resumed)
      #expect(out.export.id == open.id)
      #expect(out.export.statusURL == statusURL)
      #expect(out.export.phase == .committed)
      let log = Array(await f.requests.dropFirst(mark))
      #expect(log.filter { $0.pathOnly.hasSuffix("/$export") }.count == 1, "one kick-off for this cohort, ever")
      // Every status request of this cohort went to the one saved status URL (polls and the final DELETE).
      let statusPath = String(statusURL.dropFirst(f.server.baseURL.count))
      let statusRequests = log.filter { $0.pathOnly.contains("$export-status") }
      #expect(!statusRequests.isEmpty)
      #expect(statusRequests.allSatisfy { $0.pathOnly == statusPath })
      #expect(statusRequests.last?.method == "DELETE")
      #expect(try f.latestState("diabetes") == cleanState)
      #expect(f.partFiles() == [])
    }
  }

  @Test("C37: an export interrupted mid-download resumes with only the missing files")
  func resumeDownloadsOnlyMissingFiles() async throws {
    try await withFixture({ $0.resourcesPerFile = 40 }) { f in
      try f.addCohort("clean")
      _ = try await f.export("clean")
      let cleanState = try f.latestState("clean")
      let mark = await f.requests.count

      try f.addCohort("diabetes")
      let task = Box<Task<ExportOutcome, any Error>?>(nil)
      let completed = Box(0)
      let exporter = f.exporter(onEvent: { event in
        guard case .downloadComplete = event else { return }
        if completed.mutate({ $0 += 1; return $0 }) == 2 { task.value?.cancel() }
      })
      var options = ExportOptions()
      options.parallel = 1
      let started = Task { try await exporter.export(cohortName: "diabetes", options: options) }
      task.value = started
      if completed.value >= 2 { started.cancel() }
      var caught: (any Error)?
      do { _ = try await started.value } catch { caught = error }
      let error = try #require(caught as? ExportError, "the export was not interrupted")
      switch error {
      case .interrupted: break
      case .bulk(_, _, let resumable, _): #expect(resumable)
      default: Issue.record("unexpected \(error)")
      }
      let open = try #require(try f.store.openExport(cohort: "diabetes"))
      let kept = try f.store.files(exportID: try #require(open.id))
      #expect(kept.count >= 2)
      let manifest = try Manifest.parse(Data(try #require(open.manifestJSON).utf8))
      let total = manifest.output.count + manifest.error.count
      #expect(kept.count < total, "interrupted after the last file; nothing left to resume")
      #expect(f.partFiles() == [])

      let out = try await f.export("diabetes")
      #expect(out.resumed)
      #expect(out.export.id == open.id)
      #expect(try f.latestState("diabetes") == cleanState)
      #expect(f.notes.value.contains { $0.contains("already downloaded") })
      let log = Array(await f.requests.dropFirst(mark))
      #expect(log.filter { $0.pathOnly.hasSuffix("/$export") }.count == 1)
      let gets = Dictionary(grouping: log.filter { $0.method == "GET" && $0.path.hasPrefix("/files/") }, by: \.path)
        .mapValues(\.count)
      // Files finished before the interruption are never fetched again; the rest at most twice
      // (the one in flight when it was interrupted).
      for file in kept {
        let path = String(file.url.dropFirst(f.server.baseURL.count))
        #expect(gets[path] == 1, "\(path) fetched \(gets[path] ?? 0) times")
      }
      #expect(gets.count == total)
      #expect(gets.values.filter { $0 > 1 }.count <= 1)
      #expect(try f.store.files(exportID: open.id!).count == total)
    }
  }

  @Test("C37: an export interrupted while polling resumes polling the same status URL, no second kick-off")
  func resumeWhilePolling() async throws {
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
      let statusPath = String(statusURL.dropFirst(f.server.baseURL.count))
      let mark = await f.requests.count

      await f.server.setFaults(Faults())
      let out = try await f.export("diabetes")
      #expect(out.resumed)
      #expect(out.export.id == open.id)
      #expect(out.export.phase == .committed)
      let log = Array(await f.requests.dropFirst(mark))
      #expect(!log.contains { $0.pathOnly.hasSuffix("/$export") }, "a second kick-off")
      let statusRequests = log.filter { $0.pathOnly.contains("$export-status") }
      #expect(statusRequests.contains { $0.method == "GET" && $0.path == statusPath })
      #expect(statusRequests.allSatisfy { $0.path == statusPath })
      #expect(await f.kickoffs().count == 1)
      #expect(try f.store.exports(cohort: "diabetes").count == 1)
    }
  }

  @Test("C36: cancel sends DELETE for the open job and marks it cancelled")
  func cancelOpenJob() async throws {
    try await withFixture({ $0.pollsBeforeComplete = 1000 }) { f in
      try f.addCohort("diabetes")
      let exporter = f.exporter()
      await #expect(throws: ExportError.self) { _ = try await exporter.cancel(cohortName: "diabetes") }

      let running = Task { try await exporter.export(cohortName: "diabetes", options: ExportOptions()) }
      let accepted = try await waitUntil(seconds: 60) {
        try f.store.openExport(cohort: "diabetes")?.phase == .accepted
      }
      try #require(accepted)
      running.cancel()
      var caught: (any Error)?
      do { _ = try await running.value } catch { caught = error }
      guard case .interrupted(let seq, _) = caught as? ExportError else {
        Issue.record("expected interrupted, got \(String(describing: caught))")
        return
      }
      #expect(seq == 1)
      let open = try #require(try f.store.openExport(cohort: "diabetes"))
      let statusURL = try #require(open.statusURL)

      let cancelled = try await exporter.cancel(cohortName: "diabetes")
      #expect(cancelled.phase == .cancelled)
      #expect(cancelled.outcome == "cancelled")
      #expect(try f.store.openExport(cohort: "diabetes") == nil)
      #expect(try f.store.export(id: open.id!)?.phase == .cancelled)
      let statusPath = String(statusURL.dropFirst(f.server.baseURL.count))
      let deletes = await f.requests.filter { $0.method == "DELETE" }
      #expect(deletes.map(\.path) == [statusPath])
      #expect(try f.store.snapshots(cohort: "diabetes").isEmpty)
      #expect(try f.store.watermarks(cohort: "diabetes").isEmpty)

      // Nothing left to cancel; the next export is a new job.
      await #expect(throws: ExportError.self) { _ = try await exporter.cancel(cohortName: "diabetes") }
    }
  }
}
