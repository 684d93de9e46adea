import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

@Suite("End to end")
struct EndToEndTests {
  @Test("C72/C23: Netsmart-style URLs end to end, same result as the standard flavor")
  func netsmartFlavor() async throws {
    try await withFixture({ $0.flavor = .netsmart }) { f in
      // The same population behind a standard-flavor server, to compare results.
      var standardConfig = f.config
      standardConfig.flavor = .standard
      let standard = try await BulkDataServer.start(standardConfig)
      do {
        try f.store.addServer(ServerRecord(name: "std", baseURL: standard.baseURL))
        try f.store.addCohort(CohortRecord(name: "std-dm", server: "std", groupID: "diabetes-patients"))
        try f.addCohort("ns-dm")

        let first = try await f.export("ns-dm")
        let statusURL = try #require(first.export.statusURL)
        #expect(statusURL.hasPrefix(f.server.baseURL + "/$export-poll-status?_id="))
        let t1 = try f.manifestTransactionTime(first)
        _ = try await f.server.advance(days: 2)
        let second = try await f.incremental("ns-dm")
        #expect(second.export.since == t1)

        _ = try await f.exporter().export(cohortName: "std-dm", options: ExportOptions())
        _ = try await standard.advance(days: 2)
        var options = ExportOptions()
        options.incremental = true
        _ = try await f.exporter().export(cohortName: "std-dm", options: options)

        let log = await f.requests
        let kicks = log.filter { $0.pathOnly.hasSuffix("/$export") && $0.method == "GET" }
        try #require(kicks.count == 2)
        #expect(kicks[1].parameter("_since") == t1)
        // C23: the status URL is used verbatim (query and all) for polls and the final DELETE.
        for job in [first.export, second.export] {
          let path = String(try #require(job.statusURL).dropFirst(f.server.baseURL.count))
          #expect(path.hasPrefix("/$export-poll-status?_id="))
          #expect(log.contains { $0.method == "GET" && $0.path == path })
          #expect(log.contains { $0.method == "DELETE" && $0.path == path })
        }
        // Files come from /Binary/{id}/$binary-access-read.
        let fileGets = log.filter { $0.method == "GET" && $0.pathOnly.hasPrefix("/Binary/") }
        #expect(!fileGets.isEmpty)
        #expect(fileGets.allSatisfy { $0.pathOnly.hasSuffix("/$binary-access-read") })
        #expect(!log.contains { $0.pathOnly.hasPrefix("/files/") || $0.pathOnly.hasPrefix("/$export-status") })
        let records = try f.store.files(exportID: try #require(first.export.id))
        #expect(records.count == first.files)
        #expect(records.allSatisfy { $0.url.contains("/$binary-access-read") })

        // The same data either way.
        #expect(try f.latestState("ns-dm") == f.latestState("std-dm"))
        #expect(!(try f.latestState("ns-dm")).isEmpty)
      } catch {
        await standard.stop()
        throw error
      }
      await standard.stop()
    }
  }

  @Test("C37: the real binary, SIGKILLed after saving the status URL, resumes the same job without a second kick-off")
  func crashAndResumeWithBinary() async throws {
    guard FileManager.default.isExecutableFile(atPath: Binary.path) else {
      Issue.record("build the cohort binary first: swift build --build-tests (\(Binary.path))")
      return
    }
    try await withFixture({ $0.pollsBeforeComplete = 3 }) { f in
      // The reference state, in-process.
      try f.addCohort("clean")
      _ = try await f.export("clean")
      let cleanState = try f.latestState("clean")

      let home = f.dir + "/binary"
      try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
      let workspace = home + "/Cohorts"
      let setup = try Binary.run(
        ["-w", workspace, "-c", "server add srv \(f.server.baseURL); cohort add dm --server srv --group diabetes-patients"],
        cwd: home)
      try #require(setup.status == 0, "setup failed: \(setup.stderr)")
      let store = try Store(path: workspace + "/cohort.sqlite")
      let mark = await f.requests.count

      let first = try Binary.launch(["-w", workspace, "export", "dm"], cwd: home, tag: "export1")
      let accepted = try await waitUntil(seconds: 20) {
        try store.openExport(cohort: "dm")?.phase == .accepted
      }
      kill(first.process.processIdentifier, SIGKILL)
      first.process.waitUntilExit()
      try #require(accepted, "the export never reached phase accepted: \(first.stderr)")
      #expect(first.process.terminationReason == .uncaughtSignal)
      let open = try #require(try store.openExport(cohort: "dm"))
      let statusURL = try #require(open.statusURL)
      #expect(try store.snapshots(cohort: "dm").isEmpty)

      let second = try Binary.run(["-w", workspace, "export", "dm"], cwd: home)
      #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
      #expect((second.stdout + second.stderr).contains("resuming export #1"))

      let log = Array(await f.requests.dropFirst(mark))
      #expect(log.filter { $0.pathOnly.hasSuffix("/$export") }.count == 1, "exactly one kick-off")
      let statusPath = String(statusURL.dropFirst(f.server.baseURL.count))
      let statusRequests = log.filter { $0.pathOnly.contains("$export-status") }
      #expect(statusRequests.allSatisfy { $0.path == statusPath })
      #expect(statusRequests.contains { $0.method == "DELETE" })

      let snapshots = try store.snapshots(cohort: "dm")
      try #require(snapshots.count == 1)
      #expect(snapshots[0].id == open.id)
      #expect(snapshots[0].statusURL == statusURL)
      #expect(try latestIndexState(store, cohort: "dm") == cleanState)
      var leftovers: [String] = []
      if let walker = FileManager.default.enumerator(atPath: workspace) {
        while let rel = walker.nextObject() as? String {
          if rel.hasSuffix(".part") { leftovers.append(rel) }
        }
      }
      #expect(leftovers == [])
    }
  }

  @Test("C44/C50: a manifest whose output type would escape the export folder is refused")
  func escapingTypeRefused() async throws {
    let data = NSTemporaryDirectory() + "cohortkit-data-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: data) }
    try """
    {"resourceType":"Patient","id":"p1"}
    {"resourceType":"Patient","id":"p2"}

    """.write(toFile: data + "/a-patients.ndjson", atomically: true, encoding: .utf8)
    try """
    {"resourceType":"../../Escape","id":"e1","subject":{"reference":"Patient/p1"}}

    """.write(toFile: data + "/b-escape.ndjson", atomically: true, encoding: .utf8)

    try await withFixture({ $0.dataDirectory = data }) { f in
      try f.addCohort("everyone", group: "all-patients")
      var caught: (any Error)?
      do { _ = try await f.export("everyone") } catch { caught = error }
      let error = try #require(caught as? ExportError, "the export was not refused")
      // Bad data from the server: the export fails for good (not resumable), exit status 1.
      guard case .badData = error else {
        Issue.record("expected bad data (an invalid manifest), got \(error)")
        return
      }
      #expect(error.exitCode == 1)
      #expect(try f.store.openExport(cohort: "everyone") == nil)
      #expect(error.description.contains("../../Escape"))
      #expect(!error.description.contains("\n"))
      // Nothing written anywhere: not in the workspace, not above it.
      var found: [String] = []
      if let walker = FileManager.default.enumerator(atPath: f.dir) {
        while let rel = walker.nextObject() as? String {
          if rel.contains("Escape") || rel.hasSuffix(".part") { found.append(rel) }
        }
      }
      #expect(found == [])
      #expect(try f.store.snapshots(cohort: "everyone").isEmpty)
      #expect(try f.store.exports(cohort: "everyone").last?.phase == .failed)
    }
  }
}
