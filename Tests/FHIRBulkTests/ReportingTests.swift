import Foundation
import Testing

@testable import FHIRBulk

@Suite struct ReportingTests {
  @Test func exportLogUsesTheBulkDataClientFormat() async throws {
    let dir = try TempDir()
    defer { dir.cleanup() }
    let path = dir.path + "/log.ndjson"
    let log = try ExportLogWriter(path: path, exportId: "abc")
    let file = DownloadedFile(
      kind: .output, type: "Patient", url: "https://x/f/1", path: "/tmp/P", relativePath: "Patient.1.ndjson", bytes: 100,
      lines: 3, sha256: "00", expectedCount: 3, attempts: 1, seconds: 0.1)
    let events: [BulkEvent] = [
      .kickoff(KickoffRecord(url: "https://x/fhir/$export?_type=Patient", method: .get, status: 202, statusURL: "https://x/st", errorBody: nil, parameters: ["_type": "Patient"])),
      .statusProgress(xProgress: "50%", retryAfter: "2", nextPoll: .seconds(2)),
      .warning("not logged"),
      .statusComplete(transactionTime: "2024-05-01T10:00:00Z"),
      .manifestComplete(ManifestSummary(Manifest(transactionTime: "2024-05-01T10:00:00Z", request: "r", requiresAccessToken: true, output: [ManifestItem(type: "Patient", url: "https://x/f/1")], deleted: nil, error: []))),
      .downloadRequest(url: "https://x/f/1", kind: .output, type: "Patient"),
      .downloadComplete(file),
      .downloadError(url: "https://x/f/2", message: "gone"),
      .exportComplete(ExportTotals(files: 1, resources: 3, bytes: 100, seconds: 1.5)),
    ]
    for e in events { log.handle(e) }
    log.close()
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
    let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    #expect(objects.map { $0["eventId"] as? String } == [
      "kickoff", "status_progress", "status_complete", "manifest_complete", "download_request", "download_complete",
      "download_error", "export_complete",
    ])
    #expect(objects.allSatisfy { $0["exportId"] as? String == "abc" && $0["timestamp"] is String })
    let kick = try #require(objects[0]["eventDetail"] as? [String: Any])
    #expect(kick["exportUrl"] as? String == "https://x/fhir/$export?_type=Patient")
    #expect(kick["errorCode"] is NSNull)
    let progress = try #require(objects[1]["eventDetail"] as? [String: Any])
    #expect(progress["xProgress"] as? String == "50%" && progress["retryAfter"] as? String == "2")
    let manifest = try #require(objects[3]["eventDetail"] as? [String: Any])
    #expect(manifest["totalOutputFileCount"] as? Int == 1 && manifest["totalManifests"] as? Int == 1)
    let complete = try #require(objects[5]["eventDetail"] as? [String: Any])
    #expect(complete["resourceCount"] as? Int == 3 && complete["fileSize"] as? Int == 100)
    let done = try #require(objects[7]["eventDetail"] as? [String: Any])
    #expect(done["duration"] as? Int == 1500 && done["resources"] as? Int == 3)
  }

  @Test func plainReporterPrintsMilestonesAndThrottlesProgress() {
    let out = Locked<[String]>([])
    let r = PlainReporter(interval: .seconds(3600)) { s in out.withLock { $0.append(s) } }
    r.handle(.statusProgress(xProgress: "10%", retryAfter: nil, nextPoll: .seconds(2)))
    r.handle(.statusProgress(xProgress: "20%", retryAfter: nil, nextPoll: .seconds(4)))
    r.handle(.warning("careful"))
    r.handle(.exportComplete(ExportTotals(files: 2, resources: 10, bytes: 2_500_000, seconds: 3)))
    #expect(out.current == [
      "waiting for the server: 10% (next check in 2 s)\n", "warning: careful\n",
      "done: 2 files, 10 resources, 2.5 MB in 3 s\n",
    ])
  }

  @Test func ttyReporterRedrawsOneLine() {
    let out = Locked<[String]>([])
    let r = TTYReporter(minRedraw: .zero) { s in out.withLock { $0.append(s) } }
    r.handle(.statusProgress(xProgress: "40% complete", retryAfter: nil, nextPoll: .seconds(1)))
    r.handle(.manifestComplete(ManifestSummary(Manifest(transactionTime: "2024-05-01T10:00:00Z", request: "r", requiresAccessToken: true, output: [ManifestItem(type: "Patient", url: "https://x/1"), ManifestItem(type: "Patient", url: "https://x/2")], deleted: nil, error: []))))
    r.handle(.downloadRequest(url: "https://x/1", kind: .output, type: "Patient"))
    r.handle(.warning("w"))
    let all = out.current
    #expect(all[0] == "\r\u{1B}[0Kwaiting for the server · 40% complete")
    #expect(all.last?.contains("warning: w\n") == true)
    #expect(all.last?.contains("downloading · files 0/2") == true)
  }
}
