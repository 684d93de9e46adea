import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// Full export → server advance → `--incremental`, against the embedded server (C51–C54, C59–C60).
@Suite("Incremental exports")
struct IncrementalTests {
  @Test("C51/C54: the incremental kick-off sends _since = the first manifest's transactionTime verbatim; the diff is what the server changed")
  func incrementalMatchesServerChanges() async throws {
    try await withFixture { f in
      // all-patients: every patient is a member, so the server's AdvanceReport is exactly the cohort's change.
      try f.addCohort("everyone", group: "all-patients")
      let first = try await f.export("everyone")
      #expect(first.export.phase == .committed)
      #expect(first.export.kind == "full")
      let t1 = try f.manifestTransactionTime(first)
      #expect(first.export.transactionTime == t1)
      #expect(first.ingest.added > 0)

      let report = try await f.server.advance(days: 2)
      #expect(report.addedCount > 0 && report.updatedCount > 0 && report.deletedCount > 0, "advance changed nothing: \(report)")

      let second = try await f.incremental("everyone")
      #expect(second.export.kind == "incremental")
      #expect(second.export.since == t1)

      // C51: exactly the first manifest's transactionTime, byte for byte, in the second kick-off.
      // GET kick-offs are the cohort's exports; a POST with patient= pulls the joiners' history (C59).
      let all = await f.kickoffs()
      let kicks = all.filter { $0.method == "GET" }
      try #require(kicks.count == 2)
      let joiners = report.joined["all-patients"] ?? []
      #expect(!joiners.isEmpty, "a new patient joins the practice every day")
      #expect(all.filter { $0.method == "POST" }.count == (joiners.isEmpty ? 0 : 1))
      #expect(kicks[0].parameter("_since") == nil)
      #expect(kicks[1].parameter("_since") == t1)
      #expect(Array((kicks[1].parameter("_since") ?? "").utf8) == Array(t1.utf8))

      // C54: what the server says changed is what the index says changed.
      let a = try #require(first.export.id)
      let b = try #require(second.export.id)
      let diff = try f.store.diff(cohort: "everyone", from: a, to: b, type: nil)
      #expect(references(diff.added) == references(report.added))
      #expect(references(diff.changed) == references(report.updated))
      #expect(references(diff.removed) == references(report.deleted))
      #expect(second.ingest.added == report.addedCount)
      #expect(second.ingest.changed == report.updatedCount)
      #expect(second.ingest.removed == report.deletedCount)
      #expect(second.ingest.ignoredOlder == 0)

      // Counts follow: before + added − removed, per type.
      let before = try f.store.counts(cohort: "everyone", at: a)
      let after = try f.store.counts(cohort: "everyone", at: b)
      for type in Set(before.keys).union(after.keys) {
        let expected = (before[type] ?? 0) + (report.added[type]?.count ?? 0) - (report.deleted[type]?.count ?? 0)
        #expect(after[type] ?? 0 == expected, "count of \(type)")
      }

      // The server's own view: a fresh full export gives the same (type, id, hash) set.
      try f.addCohort("everyone-fresh", group: "all-patients")
      let fresh = try await f.export("everyone-fresh")
      let merged = try f.state("everyone", at: b)
      let baseline = try f.state("everyone-fresh", at: try #require(fresh.export.id))
      #expect(merged.count == baseline.count)
      #expect(merged.subtracting(baseline).sorted() == [])
      #expect(baseline.subtracting(merged).sorted() == [])
      #expect(try f.store.counts(cohort: "everyone-fresh", at: fresh.export.id!) == after)
    }
  }

  @Test("C59/C60: diabetes-patients Group — full + incremental equals a fresh full export; joiners and leavers reported")
  func groupCohortMatchesFreshExport() async throws {
    try await withFixture { f in
      try f.addCohort("diabetes")
      let first = try await f.export("diabetes")
      let t1 = try f.manifestTransactionTime(first)
      let report = try await f.server.advance(days: 3)
      let joiners = report.joined["diabetes-patients"] ?? []
      let leavers = report.left["diabetes-patients"] ?? []

      let second = try await f.incremental("diabetes")
      let all = await f.kickoffs()
      let kicks = all.filter { $0.method == "GET" }
      try #require(kicks.count == 2)
      #expect(all.filter { $0.method == "POST" }.count == (joiners.isEmpty ? 0 : 1))
      #expect(kicks[1].parameter("_since") == t1)
      #expect(kicks[1].pathOnly.hasSuffix("/Group/diabetes-patients/$export"))
      #expect(second.ingest.joined == joiners.sorted())
      #expect(second.ingest.left == leavers.sorted())
      let b = try #require(second.export.id)
      #expect(try f.store.members(cohort: "diabetes", at: b).count > 0)

      try f.addCohort("diabetes-fresh")
      let fresh = try await f.export("diabetes-fresh")
      let freshID = try #require(fresh.export.id)
      #expect(try f.store.members(cohort: "diabetes-fresh", at: freshID) == f.store.members(cohort: "diabetes", at: b))

      let merged = try f.state("diabetes", at: b)
      let baseline = try f.state("diabetes-fresh", at: freshID)
      let extra = merged.subtracting(baseline)  // in full+incremental only
      let missing = baseline.subtracting(merged)  // in the server's view only

      // Resources of patients who stayed in the Group (and supporting resources) must agree exactly.
      let moved = Set(joiners).union(leavers)
      func owner(_ entry: String, cohort: String, snapshot: Int) throws -> String? {
        let reference = String(entry.split(separator: "#")[0])
        return patientOf(try f.resource(cohort, reference, at: snapshot))
      }
      var extraOfStayers: [String] = []
      for e in extra where try !moved.contains(owner(e, cohort: "diabetes", snapshot: second.export.seq) ?? "") {
        extraOfStayers.append(e)
      }
      var missingOfStayers: [String] = []
      for e in missing where try !moved.contains(owner(e, cohort: "diabetes-fresh", snapshot: fresh.export.seq) ?? "") {
        missingOfStayers.append(e)
      }
      #expect(extraOfStayers.sorted() == [])
      #expect(missingOfStayers.sorted() == [])

      // The whole state, joiners' older data and leavers' data included (C59, C60).
      #expect(!moved.isEmpty, "the advance moved nobody in or out of the Group; the check below is weaker")
      // A leaver's Observations, Conditions… leave with them (the index knows each resource's patient).
      #expect(extra.sorted() == [], "resources kept for patients who left the Group")
      #expect(missing.sorted() == [], "older resources of patients who joined the Group were never pulled")
    }
  }
}
