import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// Smaller reproductions of issue 11: resume keyed by what lands, options while an export is open, private files,
/// and one redaction rule.
@Suite("Nothing lost, nothing leaked (issue 11)")
struct TrustTests {
  @Test("C47: after refreshed links and an interruption, every file is recorded once (by where it lands)")
  func refreshedLinksRecordedOnce() async throws {
    try await withFixture({ $0.resourcesPerFile = 20; $0.faults.expiredLinks = 1 }) { f in
      try f.addCohort("dm")
      let seen = Box(0)
      let task = Box<Task<ExportOutcome, any Error>?>(nil)
      let exporter = f.exporter(onEvent: { event in
        guard case .downloadComplete = event else { return }
        if seen.mutate({ $0 += 1; return $0 }) == 2 { task.value?.cancel() }
      })
      var options = ExportOptions()
      options.parallel = 1
      let running = Task { try await exporter.export(cohortName: "dm", options: options) }
      task.value = running
      _ = try? await running.value
      let out = try await f.export("dm")
      let files = try f.store.files(exportID: out.export.id!)
      #expect(Set(files.map(\.path)).count == files.count)
      let manifest = try Manifest.parse(Data(try #require(out.export.manifestJSON).utf8))
      #expect(files.count == manifest.output.count + manifest.error.count + (manifest.deleted?.count ?? 0))
      #expect(out.resources == files.filter { $0.kind == "output" }.reduce(0) { $0 + $1.lines })
    }
  }

  @Test("export --since while an export is unfinished asks for --resume or --cancel instead of resuming silently")
  func optionsWhileOpen() async throws {
    try await withFixture { f in
      try f.addCohort("dm")
      await f.server.setFaults(Faults(slowPolls: 1000))
      let exporter = f.exporter()
      let running = Task { try await exporter.export(cohortName: "dm", options: ExportOptions()) }
      try #require(try await waitUntil(seconds: 20) { try f.store.openExport(cohort: "dm")?.phase == .accepted })
      running.cancel()
      _ = try? await running.value
      var since = ExportOptions()
      since.since = "2026-01-01T00:00:00Z"
      var caught: (any Error)?
      do { _ = try await f.export("dm", since) } catch { caught = error }
      let error = try #require(caught as? ExportError)
      guard case .unfinished = error else {
        Issue.record("expected unfinished, got \(error)")
        return
      }
      #expect(error.description.contains("--resume") && error.description.contains("--cancel"))
      await f.server.setFaults(Faults())
      since.resume = true
      let resumed = try await f.export("dm", since)
      #expect(resumed.resumed)
    }
  }

  @Test("files holding patient data are the owner's only: folders 0700, files 0600")
  func privateFiles() async throws {
    try await withFixture { f in
      let old = umask(0o022)
      defer { umask(old) }
      try f.addCohort("dm")
      let out = try await f.export("dm")
      let attributes = try FileManager.default.attributesOfItem(atPath: out.folder)
      #expect((attributes[.posixPermissions] as? Int ?? 0) & 0o077 == 0, "export folder is readable by others")
      let manifest = try FileManager.default.attributesOfItem(atPath: out.folder + "/manifest.json")
      #expect((manifest[.posixPermissions] as? Int ?? 0) & 0o077 == 0, "manifest.json is readable by others")
    }
  }

  @Test("one redaction rule: secret options in both spellings, secret-looking set values, Bearer text, PEM, patients")
  func redaction() {
    let token = "eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    #expect(Redaction.words(["serve", "--bearer-token", "abc"]) == ["serve", "--bearer-token", "<redacted>"])
    #expect(Redaction.words(["serve", "--bearer-token=abc"]) == ["serve", "--bearer-token=<redacted>"])
    #expect(Redaction.words(["set", "tok", "s3cr3t"]) == ["set", "tok", "<redacted>"])
    #expect(Redaction.words(["set", "x", token]) == ["set", "x", "<redacted>"])
    #expect(Redaction.words(["set", "x", "hello"]) == ["set", "x", "hello"])
    #expect(Redaction.words(["echo", "Bearer", "abc"]) == ["echo", "Bearer", "<redacted>"])
    #expect(Redaction.words(["show", "dm", "Patient/p1"]) == ["show", "dm", "Patient/<redacted>"])
    #expect(Redaction.words(["key", "-----BEGIN", "PRIVATE", "KEY-----", "MIIB", "-----END", "PRIVATE", "KEY-----"]) == ["key", "<redacted>"])
    #expect(Redaction.lineCarriesSecret("serve --bearer-token=abc"))
    #expect(Redaction.lineCarriesSecret("set tok abc"))
    #expect(Redaction.lineCarriesSecret("-----BEGIN PRIVATE KEY-----"))
    #expect(!Redaction.lineCarriesSecret("export dm --incremental"))
    #expect(!Redaction.lineCarriesSecret("show dm Patient/p1"), "patient ids are redacted in records, but the history may keep them")
    #expect(Redaction.text("HTTP 401: Bearer \(token) expired") == "HTTP 401: Bearer <redacted> expired")
    #expect(!Redaction.text("token \(token)").contains(token))
  }
}
