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

  @Test("C44: a line of the wrong resourceType fails the export with one clear line; nothing is committed or left behind")
  func wrongTypeLine() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      await f.server.setFaults(Faults(badLine: .wrongType))
      var caught: (any Error)?
      do {
        _ = try await f.export("diabetes")
      } catch {
        caught = error
      }
      let error = try #require(caught as? ExportError)
      guard case .bulk(let bulk, let seq, let resumable, _) = error else {
        Issue.record("expected a protocol error, got \(error)")
        return
      }
      #expect(seq == 1)
      #expect(resumable)
      if case .downloadsFailed(let failed, _, _) = bulk {
        #expect(failed == 1)
      } else {
        Issue.record("expected downloadsFailed, got \(bulk)")
      }
      let text = error.description
      #expect(!text.contains("\n"))
      #expect(text.contains("resourceType"))
      // The line names the file (its URL) that failed.
      let job = try #require(try f.store.openExport(cohort: "diabetes"))
      let manifest = try Manifest.parse(Data(try #require(job.manifestJSON).utf8))
      let named = manifest.output.filter { text.contains($0.url) }
      #expect(named.count == 1, "\(text)")
      // Resumable: the job is kept open with its status URL; nothing is committed.
      #expect(job.phase == .downloading)
      #expect(job.statusURL != nil)
      #expect(try f.store.snapshots(cohort: "diabetes").isEmpty)
      #expect(try f.store.watermarks(cohort: "diabetes").isEmpty)
      // The bad file is not kept, nor any temporary file; the good files are.
      #expect(f.partFiles() == [])
      let records = try f.store.files(exportID: try #require(job.id))
      #expect(records.count == manifest.output.count + manifest.error.count - 1)
      if let bad = named.first {
        #expect(!records.contains { $0.url == bad.url })
        let onDisk = f.filesOnDisk("diabetes").filter { $0.hasSuffix(".ndjson") && !$0.hasSuffix("/log.ndjson") }
        #expect(onDisk.count == records.count, "\(onDisk)")
      }
    }
  }
}
