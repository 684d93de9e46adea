import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// A server that is merely broken or unusual, as real EHR endpoints are (issue 11): for each hostile behaviour
/// of the built-in server, the export either succeeds with the correct state or fails with one clear line and
/// leaves the cohort's state as it was — and the bearer token never reaches another origin.
@Suite("Hostile servers")
struct HostileServerTests {
  static let token = "tok-" + UUID().uuidString

  enum Expect: Sendable {
    /// The export fails; the state, watermarks and members are unchanged.
    case refused
    /// The export commits and the state equals a fresh export without the fault.
    case correct
  }

  struct Case: Sendable, CustomStringConvertible {
    var fault: String
    var incremental = false
    var expect: Expect
    var description: String { fault }
  }

  static let cases: [Case] = [
    Case(fault: "otherOriginStatus", expect: .refused),
    Case(fault: "otherOriginNext", expect: .refused),
    Case(fault: "otherOriginRefresh", expect: .refused),
    Case(fault: "noOutput", expect: .refused),
    Case(fault: "missingId", expect: .refused),
    Case(fault: "emptyDeletedURL", incremental: true, expect: .refused),
    Case(fault: "endlessBody", expect: .refused),
    Case(fault: "tricklingBody", expect: .refused),
    Case(fault: "truncatedBody", expect: .correct),
    Case(fault: "statusNotJSON", expect: .correct),
    Case(fault: "poll429=2", expect: .correct),
    Case(fault: "groupNoMember", incremental: true, expect: .correct),
    Case(fault: "futureTransactionTime", incremental: true, expect: .correct),
    Case(fault: "escapes", expect: .correct),
  ]

  @Test("the token stays home and the state stays true", arguments: cases)
  func hostile(_ c: Case) async throws {
    try await withFixture(downloadAttempts: 2, { config in
      config.auth = .bearer(token: Self.token)
      config.resourcesPerFile = 60
    }) { f in
      // Bearer auth for the registered server; small bounds so endless and trickling bodies end quickly.
      var server = try f.store.server(named: f.serverName)
      server.authKind = .bearer
      server.tokenEnv = "HOSTILE_TOKEN"
      try f.store.updateServer(server)
      var factory = f.factory
      factory.environment = ["HOSTILE_TOKEN": Self.token]
      factory.downloadPolicy.maxFileBytes = 2 << 20
      factory.downloadPolicy.maxDuration = .seconds(3)
      factory.downloadPolicy.stallTimeout = .seconds(2)
      let exporter = Exporter(
        workspace: f.workspace, store: f.store, factory: factory, events: { _ in },
        note: { text in f.notes.mutate { $0.append(text) } })

      try f.addCohort("c", group: "all-patients")
      _ = try await exporter.export(cohortName: "c", options: ExportOptions())
      if c.incremental { _ = try await f.server.advance(days: 2) }
      let before = try f.latestState("c")
      let marksBefore = try f.store.watermarks(cohort: "c")
      let membersBefore = try f.store.currentMembers(cohort: "c")

      await f.server.setFaults(try Faults.parse(c.fault))
      var options = ExportOptions()
      options.incremental = c.incremental
      var caught: (any Error)?
      do {
        _ = try await exporter.export(cohortName: "c", options: options)
      } catch {
        caught = error
      }
      await f.server.setFaults(Faults())
      let leaked = await f.server.otherOriginAuthorizationHeaders
      #expect(leaked.isEmpty, "the token reached 127.0.0.2 (\(c.fault))")

      switch c.expect {
      case .refused:
        let error = try #require(caught, "\(c.fault): the export should have failed")
        let text = String(describing: error)
        #expect(!text.contains("\n") && !text.contains("\u{1B}"), "\(c.fault): \(text)")
        #expect(!text.contains(Self.token))
        #expect(try f.latestState("c") == before, "\(c.fault): the state changed")
        #expect(try f.store.watermarks(cohort: "c") == marksBefore)
        #expect(try f.store.currentMembers(cohort: "c") == membersBefore)
        // Whatever was kept, a later export without the fault finishes the job correctly.
        if try f.store.openExport(cohort: "c") != nil {
          _ = try await exporter.export(cohortName: "c", options: ExportOptions())
        }
      case .correct:
        if let caught { Issue.record("\(c.fault): \(caught)") }
      }
      // Against a fresh export without the fault (members excepted where the Group hid them).
      try f.addCohort("control", group: "all-patients")
      _ = try await exporter.export(cohortName: "control", options: ExportOptions())
      if c.fault == "groupNoMember" {
        #expect(try f.store.currentMembers(cohort: "c") == membersBefore, "unknown membership changed the members")
        #expect(f.notes.value.contains { $0.contains("unknown") })
      } else if c.expect == .correct {
        #expect(try f.latestState("c") == f.latestState("control"), "\(c.fault): state differs from a fresh export")
      }
      if c.fault == "futureTransactionTime" {
        #expect(try f.store.watermarks(cohort: "c") == marksBefore, "a transactionTime in the future became a watermark")
        #expect(f.notes.value.contains { $0.contains("in the future") })
      }
      if c.fault == "escapes" {
        let history = try f.store.exports(cohort: "c").compactMap(\.error).joined()
        #expect(!history.contains("\u{1B}"))
      }
    }
  }
}
