import CohortTestSupport
import Foundation
import Testing

@testable import FHIRBulk

@testable import CohortKit

/// log.ndjson in the bulk-data-client format (Sources/CohortKit/ExportLog.swift).
@Suite struct ExportLogTests {
  @Test func exportLogUsesTheBulkDataClientFormat() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("exportlog-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/log.ndjson"
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
}
