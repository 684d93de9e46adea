import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// One server fault the export must recover from.
struct RecoverableFault: Sendable, CustomTestStringConvertible {
  var name: String
  var faults: Faults
  var testDescription: String { name }

  static let all: [RecoverableFault] = [
    RecoverableFault(name: "kickoff429 (C26)", faults: Faults(kickoff429: 1)),
    RecoverableFault(name: "transientPolls (C34)", faults: Faults(transientPolls: 2)),
    RecoverableFault(name: "fileErrors (C48)", faults: Faults(fileErrors: 2)),
    RecoverableFault(name: "dropConnections (C48)", faults: Faults(dropConnections: 1)),
    RecoverableFault(name: "expiredLinks (C47)", faults: Faults(expiredLinks: 1)),
    RecoverableFault(name: "gzip (C45)", faults: Faults(gzip: true)),
    RecoverableFault(name: "manifestPageSize (C64)", faults: Faults(manifestPageSize: 3)),
  ]
}

@Suite("Server faults")
struct FaultTests {
  @Test("the export recovers and gives the same state as a clean export", arguments: RecoverableFault.all)
  func recovers(_ fault: RecoverableFault) async throws {
    try await withFixture({ $0.resourcesPerFile = 60 }) { f in
      try f.addCohort("clean")
      let clean = try await f.export("clean")
      let cleanState = try f.latestState("clean")
      let cleanCount = await f.requests.count
      let cleanManifest = try Manifest.parse(Data(contentsOf: URL(fileURLWithPath: clean.folder + "/manifest.json")))
      #expect(cleanManifest.output.count > 6, "small files, so that faults hit many of them")

      await f.server.setFaults(fault.faults)
      try f.addCohort("faulty")
      let out = try await f.export("faulty")
      #expect(out.export.phase == .committed)
      #expect(out.export.outcome == "ok")
      #expect(!out.partial)
      #expect(try f.latestState("faulty") == cleanState)
      #expect(out.files == clean.files)
      #expect(f.partFiles() == [])
      #expect(try f.store.openExport(cohort: "faulty") == nil)

      // Evidence that the fault really happened, and how it was handled.
      let log = Array(await f.requests.dropFirst(cleanCount))
      let kickoffs = log.filter { $0.pathOnly.hasSuffix("/$export") }
      let statusURL = try #require(out.export.statusURL)
      let statusPath = String(statusURL.dropFirst(f.server.baseURL.count))
      let polls = log.filter { $0.method == "GET" && $0.path.hasPrefix(statusPath) }
      let fileGets = log.filter { $0.method == "GET" && $0.path.hasPrefix("/files/") }
      let attempts = Dictionary(grouping: fileGets, by: { $0.pathOnly }).mapValues(\.count)
      let retries = f.events.value.filter { if case .retry = $0 { return true } else { return false } }
      switch fault.name {
      case _ where fault.faults.kickoff429 > 0:
        #expect(kickoffs.count == 2, "one 429, then one accepted kick-off")
        #expect(!retries.isEmpty)
      case _ where fault.faults.transientPolls > 0:
        #expect(polls.count >= 3, "2 transient answers, then the manifest")
        #expect(retries.count >= 2)
      case _ where fault.faults.fileErrors > 0:
        #expect(attempts.count == out.files)
        #expect(attempts.values.allSatisfy { $0 == 3 }, "\(attempts)")
      case _ where fault.faults.dropConnections > 0:
        #expect(attempts.values.allSatisfy { $0 == 2 }, "\(attempts)")
      case _ where fault.faults.expiredLinks > 0:
        // C47: the first links answer 410, the status URL is polled again, the fresh links work.
        #expect(fileGets.contains { $0.parameter("v") == "1" })
        #expect(fileGets.contains { $0.parameter("v") == "2" })
        #expect(polls.filter { $0.parameter("page") == nil }.count >= 3)
      case _ where fault.faults.gzip:
        #expect(fileGets.allSatisfy { ($0.header("accept-encoding") ?? "").contains("gzip") })
      case _ where fault.faults.manifestPageSize > 0:
        // C64: every page followed, every file downloaded exactly once.
        let pages = polls.compactMap { $0.parameter("page") }
        #expect(pages.count == (cleanManifest.output.count + 2) / 3 - 1, "\(pages)")
        #expect(attempts.count == out.files)
        #expect(attempts.values.allSatisfy { $0 == 1 }, "\(attempts)")
        let records = try f.store.files(exportID: try #require(out.export.id))
        #expect(Set(records.map(\.url)).count == records.count)
        #expect(records.filter { $0.kind == "output" }.count == cleanManifest.output.count)
      default:
        Issue.record("no evidence check for \(fault.name)")
      }
      #expect(log.last?.method == "DELETE" || log.contains { $0.method == "DELETE" && $0.path == statusPath })
    }
  }

  @Test(
    "C44: a line of the wrong resourceType is bad data: the export fails for good with one clear line (exit 1, not resumable); nothing is committed and its folder is removed",
    arguments: [false, true])
  func wrongTypeLine(keepFailed: Bool) async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      await f.server.setFaults(Faults(badLine: .wrongType))
      var options = ExportOptions()
      options.keepFailed = keepFailed
      var caught: (any Error)?
      do {
        _ = try await f.export("diabetes", options)
      } catch {
        caught = error
      }
      let error = try #require(caught as? ExportError)
      guard case .badData(let text, let seq, _) = error else {
        Issue.record("expected bad data, got \(error)")
        return
      }
      #expect(seq == 1)
      #expect(error.exitCode == 1)
      #expect(!error.description.contains("\n"))
      #expect(text.contains("resourceType"))
      #expect(error.description.contains("report it to the server's operators"))
      // Not resumable: no open job; the export is recorded as failed with the reason.
      #expect(try f.store.openExport(cohort: "diabetes") == nil)
      let failed = try #require(try f.store.exports(cohort: "diabetes").first)
      #expect(failed.phase == .failed)
      #expect(failed.outcome == "failed")
      #expect(failed.error?.contains("resourceType") == true)
      #expect(try f.store.snapshots(cohort: "diabetes").isEmpty)
      #expect(try f.store.watermarks(cohort: "diabetes").isEmpty)
      #expect(f.partFiles() == [])
      // The failed export's folder is removed, unless --keep-failed.
      let folder = f.cohortFolder("diabetes") + "/0001"
      #expect(FileManager.default.fileExists(atPath: folder) == keepFailed)
      // The next export starts afresh and commits.
      await f.server.setFaults(Faults())
      let fresh = try await f.export("diabetes")
      #expect(!fresh.resumed)
      #expect(fresh.export.seq == 2)
    }
  }
}
