import CohortStore
import CohortTestSupport
import Foundation
import Testing

@testable import CohortKit

/// Staging while downloading (issue 12): the scanner → writer hand-over, abandoning, recording files with their
/// rows, and when the Group is read.
@Suite("Staging pipeline (issue 12)")
struct StagerTests {
  // MARK: The channel between the scanner and the writer

  @Test("the channel holds at most its capacity: the scanner waits until the writer takes a batch")
  func channelIsBounded() async throws {
    let channel = EntryChannel(capacity: 2)
    let sent = Counter()
    let producer = Thread {
      for i in 0..<5 {
        guard channel.send([Self.entry(i)]) else { return }
        sent.add()
      }
      channel.finish()
    }
    producer.start()
    // Without a receiver the scanner gets exactly `capacity` batches in (and no more however long we wait).
    #expect(await waitUntil(seconds: 30) { sent.value == 2 })
    try await Task.sleep(for: .milliseconds(200))
    #expect(sent.value == 2, "a full channel makes the scanner wait")
    var received: [String] = []
    while let batch = try channel.receive() { received += batch.map(\.id) }
    #expect(received == ["r0", "r1", "r2", "r3", "r4"], "every batch arrives, in order")
    #expect(sent.value == 5)
  }

  @Test("a scan error reaches the writer after the batches before it (the staging transaction rolls back)")
  func channelRethrowsTheScanError() throws {
    struct Broken: Error {}
    let channel = EntryChannel(capacity: 4)
    #expect(channel.send([Self.entry(0)]))
    channel.finish(throwing: Broken())
    #expect(try channel.receive()?.map(\.id) == ["r0"])
    #expect(throws: Broken.self) { _ = try channel.receive() }
  }

  @Test("the writer's cancel releases a scanner waiting on a full channel")
  func cancelReleasesTheScanner() async throws {
    let channel = EntryChannel(capacity: 1)
    #expect(channel.send([Self.entry(0)]))
    let result = Box<Bool?>(nil)
    let producer = Thread { result.value = channel.send([Self.entry(1)]) }
    producer.start()
    try await Task.sleep(for: .milliseconds(100))
    #expect(result.value == nil, "the second batch waits for room")
    channel.cancel()
    #expect(await waitUntil(seconds: 30) { result.value != nil })
    #expect(result.value == false, "after cancel the scanner is told to stop")
  }

  // MARK: The stager

  @Test("a staged file is recorded with all of its rows; abandoning never leaves part of a file staged")
  func abandonStagesAllOrNothing() async throws {
    try await withFixture({ _ in }) { f in
      let (export, folder) = try Self.export(f, cohort: "s")
      // Several batches per file, so that an abandon can fall in the middle of one.
      let lines = 20 * Stager.batchSize + 17
      var records: [FileRecord] = []
      for n in 1...3 {
        let path = "0001/Observation.\(n).ndjson"
        let text = (0..<lines).map { i in
          #"{"resourceType":"Observation","id":"o\#(n)-\#(i)","subject":{"reference":"Patient/p\#(i % 50)"},"meta":{"lastUpdated":"2024-01-01T00:00:00Z"}}"#
        }.joined(separator: "\n") + "\n"
        try text.write(toFile: folder + "/" + path, atomically: true, encoding: .utf8)
        records.append(
          FileRecord(
            exportID: export.id!, kind: "output", type: "Observation", url: "http://example.invalid/\(n)", path: path,
            bytes: Int64(text.utf8.count), lines: lines, sha256: ""))
      }
      let stager = Stager(store: f.store, exportID: export.id!, cohortFolder: folder)
      for record in records { stager.enqueue(record, only: nil, record: true) }
      // Abandon once the first file is in: the next one is then being scanned or written.
      let id = export.id!
      #expect(await waitUntil(seconds: 60) { ((try? f.store.files(exportID: id).count) ?? 0) >= 1 })
      await stager.abandon()

      let recorded = Set(try f.store.files(exportID: export.id!).map(\.path))
      #expect(recorded == Set(records.map(\.path)), "every downloaded file is recorded, abandoned or not")
      let total = try f.store.stagedCounts(exportID: export.id!)["Observation"] ?? 0
      #expect(total >= lines && total % lines == 0, "whole files only: \(total) rows staged for files of \(lines)")

      // Staging the same files again (a resume) completes them, each once.
      let again = Stager(store: f.store, exportID: export.id!, cohortFolder: folder)
      for record in records { again.enqueue(record, only: nil) }
      try await again.finish()
      #expect(try f.store.stagedCounts(exportID: export.id!)["Observation"] == 3 * lines)
    }
  }

  @Test("a joiners' file keeps only the joiners' resources, and counts the others it dropped")
  func joinersFilter() async throws {
    try await withFixture({ _ in }) { f in
      let (export, folder) = try Self.export(f, cohort: "j")
      let lines = 3 * Stager.batchSize
      let text = (0..<lines).map { i in
        #"{"resourceType":"Condition","id":"c\#(i)","subject":{"reference":"Patient/p\#(i % 4)"}}"#
      }.joined(separator: "\n") + "\n"
      let path = "0001/Condition.1.ndjson"
      try text.write(toFile: folder + "/" + path, atomically: true, encoding: .utf8)
      let stager = Stager(store: f.store, exportID: export.id!, cohortFolder: folder)
      stager.enqueue(
        FileRecord(
          exportID: export.id!, kind: "output", type: "Condition", url: "http://example.invalid/c", path: path,
          bytes: Int64(text.utf8.count), lines: lines, sha256: ""),
        only: ["p1"], record: true)
      try await stager.finish()
      #expect(try f.store.stagedCounts(exportID: export.id!)["Condition"] == lines / 4)
      #expect(stager.droppedOtherPatients == lines - lines / 4)
    }
  }

  // MARK: When the Group is read

  @Test("C59: the Group's members are read after the export's manifest (its transactionTime), never before")
  func groupReadFollowsTheManifest() async throws {
    try await withFixture({ $0.pollsBeforeComplete = 2 }) { f in
      _ = try f.addCohort("m", group: "diabetes-patients")
      let out = try await f.export("m")
      let requests = await f.requests
      let status = try #require(out.jobs.first?.statusURL.flatMap { URL(string: $0)?.path })
      let lastPoll = try #require(
        requests.lastIndex { $0.method == "GET" && (URL(string: "http://h" + $0.path)?.path ?? "") == status })
      let groupRead = try #require(requests.firstIndex { $0.method == "GET" && $0.path == "/Group/diabetes-patients" })
      #expect(groupRead > lastPoll, "the member list is read once the server's job is complete")
      #expect(out.ingest.added > 0)
      #expect(try !f.store.currentMembers(cohort: "m").isEmpty)
    }
  }

  /// A cohort with a started export and its export folder (0001), for staging files by hand.
  static func export(_ f: Fixture, cohort: String) throws -> (ExportRecord, String) {
    _ = try f.addCohort(cohort)
    let export = try f.store.createExport(
      cohort: cohort, kind: "full", since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "GET")
    let folder = f.workspace.cohortFolder(cohort)
    try FileManager.default.createDirectory(atPath: folder + "/0001", withIntermediateDirectories: true)
    return (export, folder)
  }

  static func entry(_ i: Int) -> IndexEntry {
    IndexEntry(
      type: "Observation", id: "r\(i)", versionId: nil, lastUpdated: nil, hash: String(repeating: "0", count: 32),
      patient: nil, file: "f", offset: Int64(i), length: 1)
  }
}

private final class Counter: Sendable {
  private let box = Box(0)
  func add() { box.mutate { $0 += 1 } }
  var value: Int { box.value }
}
