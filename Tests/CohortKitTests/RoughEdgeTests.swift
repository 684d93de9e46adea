import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// Rough edges of issue 15 that live in the export flow: hints that match the real cause, and the
/// server software recorded in every kick-off record of `log.ndjson`.
@Suite("Rough edges (issue 15)")
struct RoughEdgeTests {
  @Test("C36: a 403 to DELETE of a finished job (read-only SMART scopes) is a calm note, not a hint about scopes")
  func forbiddenDeleteIsHarmless() async throws {
    try await withFixture({ $0.faults.deleteForbidden = true }) { f in
      try f.addCohort("dm")
      let out = try await f.export("dm")
      #expect(out.export.phase == .committed)
      let deletes = await f.requests.filter { $0.method == "DELETE" }
      #expect(!deletes.isEmpty, "the client should still tell the server the files may go")
      let notes = f.notes.value
      #expect(notes.contains { $0.contains("does not let this client delete finished export jobs (HTTP 403)") }, "\(notes)")
      #expect(!notes.contains { $0.contains("scopes or the Group") || $0.hasPrefix("warning: DELETE") }, "\(notes)")
      // The error text itself names the cause wherever it surfaces (e.g. `export --cancel`).
      let error = BulkError.server(operation: .delete, status: 403, outcome: nil, body: nil)
      #expect(!error.description.contains("scopes or the Group"))
      #expect(error.description.contains("does not let this client delete export jobs"))
    }
  }

  @Test("log.ndjson names the server software in every kick-off record: first export, incremental, joiners' job")
  func serverSoftwareInEveryKickoff() async throws {
    try await withFixture { f in
      try f.addCohort("everyone", group: "all-patients")
      let first = try await f.export("everyone")
      let report = try await f.server.advance(days: 2)
      #expect(!(report.joined["all-patients"] ?? []).isEmpty, "the advance should bring joiners (a POST patient= job)")
      let second = try await f.incremental("everyone")
      for outcome in [first, second] {
        let text = try String(contentsOfFile: outcome.folder + "/log.ndjson", encoding: .utf8)
        let kickoffs = text.split(separator: "\n").compactMap { line -> [String: Any]? in
          guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            object["eventId"] as? String == "kickoff"
          else { return nil }
          return object["eventDetail"] as? [String: Any]
        }
        #expect(kickoffs.count == (outcome.export.seq == 1 ? 1 : 2), "\(outcome.export.seq): \(kickoffs.count) kick-off records")
        for detail in kickoffs {
          #expect((detail["softwareName"] as? String)?.isEmpty == false, "export #\(outcome.export.seq): \(detail)")
          #expect(detail["fhirVersion"] as? String != nil, "export #\(outcome.export.seq): \(detail)")
        }
        #expect(outcome.export.serverSoftware?.isEmpty == false)
      }
    }
  }
}

/// One error taxonomy (issue 13 item 4): no foreign error reaches the user as a type dump.
@Suite struct ErrorTextTests {
  struct Opaque: Error { let secret = "internals" }

  @Test("foreign errors are put in words: Foundation with the path, POSIX, decoding; unknown ones never dump fields")
  func foreignErrorsInWords() {
    let cocoa = CocoaError(.fileWriteOutOfSpace, userInfo: [NSFilePathErrorKey: "/tmp/ws/cohort.sqlite"])
    #expect(ErrorText.describe(cocoa).contains("/tmp/ws/cohort.sqlite"))
    #expect(ErrorText.describe(POSIXError(.ENOSPC)) == "No space left on device")
    struct Thing: Decodable { let x: Int }
    var decoding: (any Error)?
    do { _ = try JSONDecoder().decode(Thing.self, from: Data("{}".utf8)) } catch { decoding = error }
    #expect(decoding.map { ErrorText.describe($0).contains("not in the expected format") } == true)
    let opaque = ErrorText.describe(Opaque())
    #expect(!opaque.contains("internals") && !opaque.contains("secret"), "\(opaque)")
    #expect(ErrorText.describe(CancellationError()) == "interrupted")
  }
}

/// A crash between saving an export and its server jobs (CrashTests found it under load): the export and its jobs
/// are now saved in one transaction, and an export row left without jobs by an older version is closed, not
/// resumed into an empty commit.
@Suite struct OrphanExportTests {
  @Test("an open export with no saved jobs is closed and a new export runs; the state equals a fresh export")
  func exportWithoutJobsIsNotResumedIntoAnEmptyCommit() async throws {
    try await withFixture { f in
      try f.addCohort("dm")
      try f.addCohort("ref")
      let orphan = try f.store.createExport(
        cohort: "dm", kind: "full", since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get")
      #expect(try f.store.openExport(cohort: "dm")?.id == orphan.id)
      let out = try await f.export("dm")
      #expect(out.export.id != orphan.id && out.resources > 0)
      #expect(try f.store.export(id: orphan.id!)?.phase == .cancelled)
      #expect(f.notes.value.contains { $0.contains("stopped before anything was sent") })
      let reference = try await f.export("ref")
      #expect(try f.latestState("dm") == f.latestState("ref"))
      _ = reference
    }
  }

  @Test("a new export's jobs are saved with it (one transaction)")
  func jobsSavedWithTheExport() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let store = try Store(path: dir + "/cohort.sqlite")
    try store.addServer(ServerRecord(name: "s", baseURL: "https://x.example/r4"))
    try store.addCohort(CohortRecord(name: "c", server: "s", groupID: "g"))
    let jobs = [JobRecord(exportID: 0, ordinal: 1, role: .main, types: [], since: nil, paramsJSON: "{}")]
    let export = try store.createExport(
      cohort: "c", kind: "full", since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get", side: false,
      note: nil, kickoffURL: "https://x.example/r4/Group/g/$export", jobs: jobs)
    let saved = try store.jobs(exportID: export.id!)
    #expect(saved.count == 1 && saved[0].exportID == export.id && export.kickoffURL != nil)
  }
}
