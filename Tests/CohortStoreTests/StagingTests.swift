import Foundation
import GRDB
import Synchronization
import Testing

@testable import CohortStore

/// A fresh temporary folder for an async test, removed at the end.
func withTemporaryDirectoryAsync<T>(_ body: (String) async throws -> T) async throws -> T {
  let dir = NSTemporaryDirectory() + "cohort-staging-" + UUID().uuidString
  try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(atPath: dir) }
  return try await body(dir)
}

final class TaskBox: Sendable {
  let task = Mutex<Task<IngestResult, any Error>?>(nil)
}

/// Staging files of an export, then merging them into the cohort's state (issue 10 items 3–4, issue 12).
@Suite struct StagingTests {
  func entry(
    _ type: String, _ id: String, _ hash: String, updated: String? = "2024-01-01T00:00:00Z", patient: String? = nil,
    file: String = "0001/output/a.ndjson", offset: Int64 = 0
  ) -> StagedEntry {
    StagedEntry(
      type: type, id: id, versionId: "1", lastUpdated: updated, hash: hash,
      patient: patient ?? (type == "Patient" ? id : nil), file: file, offset: offset, length: 10)
  }

  func makeStore(_ dir: String) throws -> Store {
    let store = try Store(path: dir + "/db.sqlite")
    try store.addServer(ServerRecord(name: "s", baseURL: "https://x"))
    try store.addCohort(CohortRecord(name: "dm", server: "s", groupID: "g"))
    return store
  }

  func newExport(_ store: Store, kind: String = "full") throws -> ExportRecord {
    try store.createExport(
      cohort: "dm", kind: kind, since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get")
  }

  @discardableResult
  func stage(_ store: Store, _ export: ExportRecord, file: String = "0001/output/a.ndjson", _ entries: [StagedEntry])
    throws -> Int
  {
    try store.stage(exportID: export.id!, file: file) { sink in for e in entries { try sink(e) } }
  }

  func resourceRows(_ store: Store) throws -> Int {
    try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM resources") ?? 0 }
  }

  func currentHashes(_ store: Store, at exportID: Int64) throws -> [String: String] {
    let diff = try store.diff(cohort: "dm", from: 0, to: exportID, type: nil)
    var out: [String: String] = [:]
    for (type, ids) in diff.added {
      for id in ids {
        out["\(type)/\(id)"] = try store.locate(cohort: "dm", type: type, id: id, at: exportID).first?.hash
      }
    }
    return out
  }

  @Test func mergeAddsChangesIgnoresOlderAndCountsResentAndUnchangedOnce() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      try stage(store, first, [
        entry("Patient", "p1", "a"), entry("Patient", "p2", "b"), entry("Patient", "p3", "c", updated: "2024-03-01T00:00:00Z"),
        entry("Patient", "p4", "d"),
      ])
      let r1 = try await store.commitExport(CommitPlan(export: first, rebaselineTypes: ["Patient"]))
      #expect(r1.added == 4 && r1.changed == 0 && r1.unchanged == 0 && r1.resent == 0)

      let second = try newExport(store, kind: "incremental")
      try stage(store, second, [
        entry("Patient", "p1", "a"),  // resent, same content
        entry("Patient", "p2", "b2", updated: "2024-02-01T00:00:00Z"),  // changed
        entry("Patient", "p3", "c-old", updated: "2024-03-01T01:00:00+02:00"),  // 1 h older than stored: ignored
        entry("Patient", "p5", "e"),  // added
      ])
      let r2 = try await store.commitExport(CommitPlan(export: second))
      #expect(r2.added == 1)
      #expect(r2.changed == 1)
      #expect(r2.ignoredOlder == 1)
      #expect(r2.resent == 1)
      // p1, p3 and p4 are in the state before and after with the same content (p4 was not even sent).
      #expect(r2.unchanged == 3)
      let diff = try store.diff(cohort: "dm", from: first.id!, to: second.id!, type: nil)
      #expect(diff.unchanged["Patient"] == r2.unchanged)
      #expect(diff.changed == ["Patient": ["p2"]])
      #expect(diff.added == ["Patient": ["p5"]])
      #expect(try store.locate(cohort: "dm", type: "Patient", id: "p3", at: second.id!).map(\.hash) == ["c"])
      #expect(try store.counts(cohort: "dm", at: second.id!) == ["Patient": 5])
      #expect(try store.counts(cohort: "dm", at: first.id!) == ["Patient": 4])
      #expect(try store.export(id: second.id!)?.phase == .committed)
      #expect(try store.stagedCounts(exportID: second.id!).isEmpty)  // staging rows of a merged export are gone
    }
  }

  @Test func severalRowsOfOneResourceInAnExportNewestThenLaterFileWins() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let export = try newExport(store)
      try stage(store, export, file: "0001/output/b.ndjson", [
        entry("Observation", "o1", "newest", updated: "2024-05-01T00:00:00Z", file: "0001/output/b.ndjson"),
        entry("Observation", "o2", "tie-later-file", file: "0001/output/b.ndjson"),
        entry("Observation", "o3", "tie-later-offset", file: "0001/output/b.ndjson", offset: 50),
        entry("Observation", "o3", "tie-earlier-offset", file: "0001/output/b.ndjson", offset: 5),
      ])
      try stage(store, export, file: "0001/output/a.ndjson", [
        entry("Observation", "o1", "older", updated: "2024-04-01T00:00:00Z"),
        entry("Observation", "o2", "tie-earlier-file"),
      ])
      #expect(try store.stagedCounts(exportID: export.id!) == ["Observation": 3])
      let result = try await store.commitExport(CommitPlan(export: export, rebaselineTypes: ["Observation"]))
      #expect(result.added == 3)
      let hashes = try currentHashes(store, at: export.id!)
      #expect(hashes == ["Observation/o1": "newest", "Observation/o2": "tie-later-file", "Observation/o3": "tie-later-offset"])
    }
  }

  @Test func stagingAndCommittingTheSameContentTwiceChangesNothing() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let content = [
        entry("Patient", "p1", "0123456789abcdef0123456789abcdef"), entry("Patient", "p2", "b"),
        entry("Observation", "o1", "c", patient: "p1"),
      ]
      let first = try newExport(store)
      try stage(store, first, content)
      _ = try await store.commitExport(
        CommitPlan(export: first, rebaselineTypes: ["Patient", "Observation"], members: ["p1", "p2"]))
      let rows = try resourceRows(store)
      let second = try newExport(store)
      try stage(store, second, content)
      let again = try await store.commitExport(
        CommitPlan(export: second, rebaselineTypes: ["Patient", "Observation"], members: ["p1", "p2"]))
      #expect(again.added == 0 && again.changed == 0 && again.removed == 0 && again.ignoredOlder == 0)
      #expect(again.resent == 3 && again.unchanged == 3)
      #expect(again.joined.isEmpty && again.left.isEmpty)
      #expect(try resourceRows(store) == rows)
      let diff = try store.diff(cohort: "dm", from: first.id!, to: second.id!, type: nil)
      #expect(diff.added.isEmpty && diff.changed.isEmpty && diff.removed.isEmpty)
      // The 32-hex hash round-trips through its compact form.
      #expect(
        try store.locate(cohort: "dm", type: "Patient", id: "p1", at: nil).map(\.hash)
          == ["0123456789abcdef0123456789abcdef"])
    }
  }

  @Test func restagingAFileReplacesItsRowsAndUnstageRemovesThem() throws {
    try withTemporaryDirectory { dir in
      let store = try makeStore(dir)
      let export = try newExport(store)
      try stage(store, export, [entry("Patient", "p1", "a"), entry("Patient", "p2", "b"), entry("Patient", "p3", "c")])
      try stage(store, export, file: "0001/output/obs.ndjson", [entry("Observation", "o1", "x", file: "0001/output/obs.ndjson")])
      // Resumed after a crash: the same file is staged again, with what it holds now.
      let n = try stage(store, export, [entry("Patient", "p1", "a"), entry("Patient", "p2", "b2")])
      #expect(n == 2)
      #expect(try store.stagedCounts(exportID: export.id!) == ["Patient": 2, "Observation": 1])
      #expect(try store.stagedVersions(exportID: export.id!, type: "Patient", id: "p2").map(\.hash) == ["b2"])
      #expect(try store.stagedVersions(exportID: export.id!, type: "Patient", id: "p3").isEmpty)
      try store.unstage(exportID: export.id!, file: "0001/output/obs.ndjson")
      #expect(try store.stagedCounts(exportID: export.id!) == ["Patient": 2])
    }
  }

  @Test func cancellingACommitRollsItBackAndKeepsTheStagingForAResume() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      try stage(store, first, [entry("Patient", "p0", "a")])
      _ = try await store.commitExport(CommitPlan(export: first, rebaselineTypes: ["Patient"], members: ["p0"]))
      let rowsBefore = try resourceRows(store)

      let big = try newExport(store)
      let n = 50_000
      _ = try store.stage(exportID: big.id!, file: "0002/output/p.ndjson") { sink in
        for i in 0..<n { try sink(entry("Patient", "p\(i)", "h\(i)", file: "0002/output/p.ndjson", offset: Int64(i))) }
      }
      // The task waits for its handle to be published, then commits; the merge cancels its own task from
      // inside the write transaction, so the cancellation lands while the transaction is open.
      let handle = TaskBox()
      let (go, goContinuation) = AsyncStream<Void>.makeStream()
      let plan = CommitPlan(
        export: big, rebaselineTypes: ["Patient"], members: (0..<n).map { "p\($0)" },
        watermarks: [WatermarkUpdate(type: "Patient", transactionTime: "T2")])
      let task = Task<IngestResult, any Error> {
        for await _ in go { break }
        return try await store.commitExport(plan, willMerge: { handle.task.withLock { $0?.cancel() } })
      }
      handle.task.withLock { $0 = task }
      goContinuation.yield()
      goContinuation.finish()
      let outcome = await task.result
      #expect(throws: CancellationError.self) { try outcome.get() }

      #expect(try resourceRows(store) == rowsBefore)
      #expect(try store.counts(cohort: "dm", at: big.id!) == ["Patient": 1])
      #expect(try store.currentMembers(cohort: "dm") == ["p0"])
      #expect(try store.watermarks(cohort: "dm").isEmpty)
      #expect(try store.export(id: big.id!)?.phase == .requested)
      #expect(try store.stagedCounts(exportID: big.id!) == ["Patient": n])

      // The same commit, not cancelled, then applies everything.
      let result = try await store.commitExport(plan)
      #expect(result.added == n - 1 && result.changed == 1)
      #expect(try store.counts(cohort: "dm", at: big.id!) == ["Patient": n])
    }
  }

  @Test func sideExportKeepsItsStagingAndChangesNoState() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      try stage(store, first, [entry("Patient", "p1", "a"), entry("Observation", "o1", "x", patient: "p1")])
      _ = try await store.commitExport(
        CommitPlan(
          export: first, rebaselineTypes: ["Patient", "Observation"], members: ["p1"],
          watermarks: [WatermarkUpdate(type: "Observation", transactionTime: "T1")]))

      let side = try newExport(store)
      try stage(store, side, file: "0002/output/o.ndjson", [
        entry("Observation", "o1", "x-filtered", updated: "2024-09-01T00:00:00Z", file: "0002/output/o.ndjson")
      ])
      let result = try await store.commitExport(
        CommitPlan(
          export: side, side: true, rebaselineTypes: ["Observation", "Patient"], deletes: [("Patient", "p1")],
          members: [], watermarks: [WatermarkUpdate(type: "Observation", transactionTime: "T9")]))
      #expect(result == IngestResult())
      #expect(try store.export(id: side.id!)?.phase == .committed)
      #expect(try store.counts(cohort: "dm", at: side.id!) == ["Patient": 1, "Observation": 1])
      #expect(try store.locate(cohort: "dm", type: "Observation", id: "o1", at: nil).map(\.hash) == ["x"])
      #expect(try store.currentMembers(cohort: "dm") == ["p1"])
      #expect(try store.watermarks(cohort: "dm").map(\.transactionTime) == ["T1"])
      #expect(try store.stagedCounts(exportID: side.id!) == ["Observation": 1])
      let staged = try store.stagedVersions(exportID: side.id!, type: "Observation", id: "o1")
      #expect(staged.map(\.hash) == ["x-filtered"])
      #expect(staged.first?.file == "0002/output/o.ndjson")
    }
  }

  @Test func reconcileClosesWhatTheListingNoLongerHasAndNeverTakesItsContent() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      try stage(store, first, [
        entry("Observation", "o1", "x1"), entry("Observation", "o2", "x2"), entry("Observation", "o3", "x3"),
        entry("Patient", "p1", "a"),
      ])
      _ = try await store.commitExport(CommitPlan(export: first, rebaselineTypes: ["Observation", "Patient"]))

      // An ids-only listing (`_elements=id`): o2 is gone on the server; the listed rows carry no content.
      let listing = try newExport(store)
      try stage(store, listing, [entry("Observation", "o1", "ids-only", updated: nil), entry("Observation", "o3", "ids-only", updated: nil)])
      let result = try await store.commitExport(CommitPlan(export: listing, reconcileTypes: ["Observation"]))
      #expect(result.removed == 1)
      #expect(result.added == 0 && result.changed == 0)
      #expect(result.unchanged == 3)  // o1, o3 and p1 (Patient not reconciled)
      let diff = try store.diff(cohort: "dm", from: first.id!, to: listing.id!, type: nil)
      #expect(diff.removed == ["Observation": ["o2"]])
      #expect(try store.locate(cohort: "dm", type: "Observation", id: "o1", at: nil).map(\.hash) == ["x1"])
      #expect(try store.counts(cohort: "dm", at: listing.id!) == ["Observation": 2, "Patient": 1])
    }
  }

  @Test func unknownMembersLeaveMembershipAlone() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      try stage(store, first, [entry("Patient", "p1", "a"), entry("Patient", "p2", "b")])
      _ = try await store.commitExport(CommitPlan(export: first, rebaselineTypes: ["Patient"], members: ["p1", "p2"]))
      let second = try newExport(store, kind: "incremental")
      try stage(store, second, [entry("Patient", "p3", "c")])
      let result = try await store.commitExport(CommitPlan(export: second, members: nil))
      #expect(result.joined.isEmpty && result.left.isEmpty)
      #expect(try store.currentMembers(cohort: "dm") == ["p1", "p2"])
      #expect(try store.counts(cohort: "dm", at: second.id!) == ["Patient": 3])
    }
  }

  @Test func deletesRebaselineOfSomeTypesAndLeavers() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      try stage(store, first, [
        entry("Patient", "p1", "a"), entry("Patient", "p2", "b"), entry("Patient", "p3", "c"),
        entry("Observation", "o1", "x", patient: "p1"), entry("Observation", "o2", "y", patient: "p2"),
        entry("Condition", "c1", "z", patient: "p1"), entry("Condition", "c3", "w", patient: "p3"),
      ])
      _ = try await store.commitExport(
        CommitPlan(export: first, rebaselineTypes: ["Patient", "Observation", "Condition"], members: ["p1", "p2", "p3"]))

      // A full pull of Observation only; the server reports Condition/c1 deleted; p3 left the Group.
      let second = try newExport(store)
      try stage(store, second, [entry("Observation", "o1", "x")])
      let result = try await store.commitExport(
        CommitPlan(
          export: second, rebaselineTypes: ["Observation"], deletes: [("Condition", "c1"), ("Condition", "nope"), ("Nope", "x")],
          members: ["p1", "p2"]))
      #expect(result.left == ["p3"])
      // o2 (not returned by the Observation pull), c1 (deleted), p3 and c3 (leaver's resources).
      #expect(result.removed == 4)
      #expect(result.unchanged == 3)  // p1, p2, o1
      #expect(try store.counts(cohort: "dm", at: second.id!) == ["Patient": 2, "Observation": 1])
      let diff = try store.diff(cohort: "dm", from: first.id!, to: second.id!, type: nil)
      #expect(diff.removed == ["Condition": ["c1", "c3"], "Observation": ["o2"], "Patient": ["p3"]])
      #expect(diff.left == ["p3"])
      #expect(try store.diff(cohort: "dm", from: first.id!, to: second.id!, type: "Condition").removed == ["Condition": ["c1", "c3"]])
      // The earlier snapshot is intact.
      #expect(try store.counts(cohort: "dm", at: first.id!) == ["Patient": 3, "Observation": 2, "Condition": 2])
      #expect(try store.members(cohort: "dm", at: first.id!) == ["p1", "p2", "p3"])
    }
  }

  /// Issue 10 item 3 / issue 12: an incremental commit is O(changes). The same incremental (changes, deletes, a
  /// joiner, a leaver) is committed into a cohort of 1,000 and one of 40,000 resources (same members); the work,
  /// counted in SQLite VM instructions, must not grow with the cohort (a scan of its rows would multiply it).
  @Test func incrementalCommitWorkDoesNotGrowWithTheCohort() async throws {
    func work(resources n: Int) async throws -> (Int, IngestResult) {
      try await withTemporaryDirectoryAsync { dir in
        let store = try makeStore(dir)
        let first = try newExport(store)
        var entries = (0..<50).map { entry("Patient", "p\($0)", "pa\($0)") }
        entries += [entry("Observation", "leaver-1", "l1", patient: "p49"), entry("Observation", "leaver-2", "l2", patient: "p49")]
        entries += (0..<(n - entries.count)).map { entry("Observation", "o\($0)", "h\($0)", patient: "p\($0 % 49)") }
        try stage(store, first, entries)
        _ = try await store.commitExport(
          CommitPlan(export: first, rebaselineTypes: ["Patient", "Observation"], members: (0..<50).map { "p\($0)" }))

        let second = try newExport(store, kind: "incremental")
        var changes = (0..<20).map { entry("Observation", "o\($0 * 37)", "new\($0)", updated: "2024-02-01T00:00:00Z", patient: "p\($0 * 37 % 49)") }
        changes += [entry("Patient", "p50", "pa50"), entry("Observation", "joiner-1", "j1", patient: "p50")]
        try stage(store, second, changes)
        let plan = CommitPlan(
          export: second, deletes: (0..<5).map { ("Observation", "o\($0 * 101 + 1)") },
          members: (0..<49).map { "p\($0)" } + ["p50"])
        let (result, work) = try store.writeCountingWork { db in try Store.merge(db, plan) }
        return (work, result)
      }
    }
    let (small, a) = try await work(resources: 1_000)
    let (large, b) = try await work(resources: 40_000)
    for r in [a, b] {
      #expect(r.changed == 20 && r.added == 2 && r.removed == 5 + 3 && r.joined == ["p50"] && r.left == ["p49"])
    }
    #expect(large < small * 2, "incremental commit work: \(small) at 1,000 resources, \(large) at 40,000")
  }

  /// The commit empties the staging with `secure_delete = FAST` (no zeroed pages through the WAL: a third of a large
  /// commit's writes on Debian's SQLite) and gives the connection back as it found it, so that other deletes (a
  /// cohort's removal) keep the build's setting.
  @Test func theCommitEmptiesTheStagingAndRestoresSecureDelete() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      for (n, mode) in [(1, "ON"), (0, "OFF")] {
        try store.write { db in try db.execute(sql: "PRAGMA main.secure_delete = \(mode)") }
        let export = try newExport(store)
        try stage(store, export, (0..<5_000).map { entry("Observation", "o\($0)", "h\(n)-\($0)", patient: "p\($0 % 7)") })
        _ = try await store.commitExport(CommitPlan(export: export, rebaselineTypes: ["Observation"]))
        #expect(try store.write { db in try Int.fetchOne(db, sql: "PRAGMA main.secure_delete") } == n)
        #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM staging") } == 0)
      }
    }
  }

  /// Leavers' resources are found through the patient keys, which keep an entry when a resource moves to another
  /// patient: the resource leaves with its current patient, never with a former one.
  @Test func aResourceThatMovedToAnotherPatientLeavesWithItsCurrentPatient() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      try stage(store, first, [
        entry("Patient", "p1", "a"), entry("Patient", "p2", "b"), entry("Observation", "o1", "x", patient: "p1"),
      ])
      _ = try await store.commitExport(CommitPlan(export: first, rebaselineTypes: ["Patient", "Observation"], members: ["p1", "p2"]))
      let second = try newExport(store, kind: "incremental")
      try stage(store, second, [entry("Observation", "o1", "x2", updated: "2024-02-01T00:00:00Z", patient: "p2")])
      _ = try await store.commitExport(CommitPlan(export: second, members: ["p1", "p2"]))
      // p1 leaves: o1 now belongs to p2 and stays.
      let third = try newExport(store, kind: "incremental")
      let r3 = try await store.commitExport(CommitPlan(export: third, members: ["p2"]))
      #expect(r3.left == ["p1"] && r3.removed == 1)
      #expect(try store.counts(cohort: "dm", at: third.id!) == ["Patient": 1, "Observation": 1])
      // p2 leaves: o1 goes with it.
      let fourth = try newExport(store, kind: "incremental")
      let r4 = try await store.commitExport(CommitPlan(export: fourth, members: []))
      #expect(r4.left == ["p2"] && r4.removed == 2)
      #expect(try store.counts(cohort: "dm", at: fourth.id!) == [:])
    }
  }

  /// v8: the Group's members are staged in the database in batches (a Group of any size in bounded memory): joiners
  /// and leavers come out of SQL; a duplicate id counts once; a new read replaces an earlier one; the commit, a
  /// failed export (`unstageAll`) and the cohort's removal leave no staged member behind.
  @Test func stagedMembersGiveJoinersAndLeaversAndLeaveNothingBehind() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      func stagedRows() throws -> Int {
        try store.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM staged_members") ?? -1 }
      }
      let first = try newExport(store)
      try stage(store, first, [entry("Patient", "p1", "a"), entry("Patient", "p2", "b"), entry("Patient", "p3", "c")])
      try store.stageMembers(exportID: first.id!, ["p3", "p1"])
      try store.stageMembers(exportID: first.id!, ["p2", "p1"])
      #expect(try store.stagedMemberCount(exportID: first.id!) == 3)
      #expect(try store.stagedJoiners(cohort: "dm", exportID: first.id!) == ["p1", "p2", "p3"])
      var plan = CommitPlan(export: first, rebaselineTypes: ["Patient"])
      plan.membersStaged = true
      let r1 = try await store.commitExport(plan)
      // The first read: every member is new, none is reported as a joiner.
      #expect(r1.joined.isEmpty && r1.left.isEmpty)
      #expect(try store.currentMembers(cohort: "dm") == ["p1", "p2", "p3"])
      #expect(try stagedRows() == 0)

      // An interrupted read is replaced by the next one; p4 joins, p2 leaves with its Patient.
      let second = try newExport(store, kind: "incremental")
      try store.stageMembers(exportID: second.id!, ["p9"])
      try await store.clearStagedMembers(exportID: second.id!)
      try store.stageMembers(exportID: second.id!, ["p4", "p3", "p1", "p4"])
      #expect(try store.stagedJoiners(cohort: "dm", exportID: second.id!) == ["p4"])
      try stage(store, second, [entry("Patient", "p4", "d")])
      plan = CommitPlan(export: second)
      plan.membersStaged = true
      let r2 = try await store.commitExport(plan)
      #expect(r2.joined == ["p4"] && r2.left == ["p2"] && r2.removed == 1)
      #expect(try store.currentMembers(cohort: "dm") == ["p1", "p3", "p4"])
      #expect(try store.counts(cohort: "dm", at: second.id!) == ["Patient": 3])
      #expect(try stagedRows() == 0)

      // Staged members without `membersStaged` (the read failed half-way) leave membership alone.
      let third = try newExport(store, kind: "incremental")
      try store.stageMembers(exportID: third.id!, ["p1"])
      let r3 = try await store.commitExport(CommitPlan(export: third))
      #expect(r3.left.isEmpty && r3.joined.isEmpty)
      #expect(try store.currentMembers(cohort: "dm") == ["p1", "p3", "p4"])
      #expect(try stagedRows() == 0)

      // A failed export drops them; so does removing the cohort.
      let failed = try newExport(store, kind: "incremental")
      try store.stageMembers(exportID: failed.id!, ["p1", "p5"])
      try store.unstageAll(exportID: failed.id!)
      #expect(try stagedRows() == 0)
      try store.stageMembers(exportID: failed.id!, ["p1", "p5"])
      try store.removeCohort(named: "dm")
      #expect(try stagedRows() == 0)
    }
  }

  @Test func removingACohortRemovesItsIndexAndStaging() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let store = try makeStore(dir)
      let first = try newExport(store)
      try stage(store, first, [entry("Patient", "p1", "a")])
      _ = try await store.commitExport(CommitPlan(export: first))
      let open = try newExport(store)
      try stage(store, open, [entry("Patient", "p2", "b")])
      try store.removeCohort(named: "dm")
      let left = try store.read { db in
        try Int.fetchOne(
          db, sql: "SELECT (SELECT COUNT(*) FROM resources) + (SELECT COUNT(*) FROM staging) + (SELECT COUNT(*) FROM patient_keys)")
          ?? -1
      }
      #expect(left == 0)
    }
  }

  @Test func instantKeysOrderOffsetsAndFractions() {
    let a = Store.instantKey("2024-05-01T00:00:00+02:00")
    let b = Store.instantKey("2024-04-30T22:00:00Z")
    #expect(a != nil && a == b)
    #expect(Store.instantKey("2024-04-30T21:59:59.999Z")! < b!)
    #expect(Store.instantKey("1970-01-01T00:00:01.5Z") == 1_500_000)
    #expect(Store.instantKey("2024-02-29T12:00:00Z")! + 86_400_000_000 == Store.instantKey("2024-03-01T12:00:00Z"))
    #expect(Store.instantKey("2024-05-01") == nil)
    #expect(Store.instantKey("not a date at all, really") == nil)
  }
}

@Suite struct StagingMigrationTests {
  /// v6 ("v6-commit"): the key index no longer holds `valid_to`, and leavers are found through `patient_keys`, built
  /// from every stored row by the migration.
  @Test func v5IndexMigratesToV6AndLeaversStillTakeTheirResources() async throws {
    try await withTemporaryDirectoryAsync { dir in
      let path = dir + "/db.sqlite"
      do {
        let old = try Store(path: path, upTo: "v5-staging")
        try old.write { db in
          try db.execute(
            sql: """
              INSERT INTO servers (name, base_url, created_at) VALUES ('s', 'https://x', '2026-01-01T00:00:00Z');
              INSERT INTO cohorts (name, server, group_id, created_at) VALUES ('dm', 's', 'g', '2026-01-01T00:00:00Z');
              INSERT INTO exports (id, cohort, seq, kind, params_json, phase, started_at) VALUES
                (1, 'dm', 1, 'full', '{}', 'committed', '2026-01-01T00:00:00Z');
              INSERT INTO cohort_keys (cid, name) VALUES (1, 'dm');
              INSERT INTO rtypes (tid, name) VALUES (1, 'Patient'), (2, 'Observation');
              INSERT INTO paths (pid, path) VALUES (1, '0001/output/a.ndjson');
              INSERT INTO resources (cid, tid, id, valid_from, valid_to, hash, lu, last_updated, version_id, patient, fid, offset, length)
              VALUES (1, 1, 'p1', 1, NULL, 'a', NULL, NULL, '1', 'p1', 1, 0, 9),
                     (1, 1, 'p2', 1, NULL, 'b', NULL, NULL, '1', 'p2', 1, 10, 9),
                     (1, 2, 'o1', 1, NULL, 'x', NULL, NULL, '1', 'p1', 1, 20, 9);
              INSERT INTO current_counts (cid, tid, n) VALUES (1, 1, 2), (1, 2, 1);
              INSERT INTO snapshot_counts (cid, export_id, tid, n) VALUES (1, 1, 1, 2), (1, 1, 2, 1), (1, 1, 0, 3);
              INSERT INTO members (cohort, patient, valid_from) VALUES ('dm', 'p1', 1), ('dm', 'p2', 1);
              """)
        }
      }
      let store = try Store(path: path)
      #expect(try store.appliedMigrations().contains("v6-commit"))
      let keyColumns = try store.read { db in try String.fetchAll(db, sql: "SELECT name FROM pragma_index_info('resources_key')") }
      #expect(keyColumns == ["cid", "tid", "id", "valid_from"])
      let second = try store.createExport(
        cohort: "dm", kind: "incremental", since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get")
      let result = try await store.commitExport(CommitPlan(export: second, members: ["p2"]))
      #expect(result.left == ["p1"] && result.removed == 2 && result.unchanged == 1)
      #expect(try store.counts(cohort: "dm", at: second.id!) == ["Patient": 1])
      #expect(try store.locate(cohort: "dm", type: "Observation", id: "o1", at: nil).map(\.validTo) == [second.id!])
    }
  }

  @Test func v3IndexRowsAreCopiedIntoTheCompactIndex() throws {
    try withTemporaryDirectory { dir in
      let path = dir + "/db.sqlite"
      do {
        let old = try Store(path: path, upTo: "v3-index")
        // Rows as a v3 binary wrote them (today's records have columns v3 does not).
        try old.write { db in
          try db.execute(
            sql: """
              INSERT INTO servers (name, base_url, created_at) VALUES ('s', 'https://x', '2026-01-01T00:00:00Z');
              INSERT INTO cohorts (name, server, group_id, created_at) VALUES ('dm', 's', 'g', '2026-01-01T00:00:00Z');
              INSERT INTO exports (id, cohort, seq, kind, params_json, phase, started_at) VALUES
                (1, 'dm', 1, 'full', '{}', 'committed', '2026-01-01T00:00:00Z'),
                (2, 'dm', 2, 'incremental', '{}', 'committed', '2026-01-01T00:00:00Z');
              """)
        }
        let e1 = (id: Optional<Int64>(1), seq: 1)
        let e2 = (id: Optional<Int64>(2), seq: 2)
        try old.write { db in
          let insert = """
            INSERT INTO resources (cohort, type, id, version_id, last_updated, hash, patient, valid_from, valid_to, file, offset, length)
            VALUES ('dm', ?, ?, '1', ?, ?, ?, ?, ?, ?, ?, 9)
            """
          try db.execute(sql: insert, arguments: ["Patient", "p1", "2024-01-01T00:00:00Z", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "p1", e1.id!, nil, "0001/output/Patient.ndjson", 0])
          try db.execute(sql: insert, arguments: ["Observation", "o1", "2024-01-01T00:00:00Z", "h1", "p1", e1.id!, e2.id!, "0001/output/Observation.ndjson", 0])
          try db.execute(sql: insert, arguments: ["Observation", "o1", "2024-02-01T00:00:00+01:00", "h2", "p1", e2.id!, nil, "0002/output/Observation.ndjson", 40])
          try db.execute(sql: "INSERT INTO members (cohort, patient, valid_from) VALUES ('dm', 'p1', ?)", arguments: [e1.id!])
        }
      }
      let store = try Store(path: path)
      #expect(try store.appliedMigrations().contains("v5-staging"))
      let exports = try store.exports(cohort: "dm")
      let (a, b) = (exports[0].id!, exports[1].id!)
      #expect(try store.counts(cohort: "dm", at: a) == ["Patient": 1, "Observation": 1])
      #expect(try store.counts(cohort: "dm", at: b) == ["Patient": 1, "Observation": 1])
      let versions = try store.locate(cohort: "dm", type: "Observation", id: "o1", at: nil)
      #expect(versions.map(\.hash) == ["h1", "h2"])
      #expect(versions.map(\.file) == ["0001/output/Observation.ndjson", "0002/output/Observation.ndjson"])
      #expect(try store.locate(cohort: "dm", type: "Patient", id: "p1", at: b).map(\.hash) == ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"])
      #expect(try store.diff(cohort: "dm", from: a, to: b, type: nil).changed == ["Observation": ["o1"]])
      // The migrated index keeps working: an older version is still refused by the migrated lastUpdated.
      let e3 = try store.createExport(cohort: "dm", kind: "incremental", since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get")
      let result = try store.commitExport(CommitPlan(export: e3, rebaselineTypes: nil, deletes: [], members: nil, watermarks: [:])) { sink in
        try sink(IndexEntry(type: "Observation", id: "o1", versionId: "0", lastUpdated: "2024-01-31T22:30:00Z", hash: "h0", patient: "p1", file: "f", offset: 0, length: 1))
      }
      #expect(result.ignoredOlder == 1 && result.unchanged == 2)
    }
  }
}
