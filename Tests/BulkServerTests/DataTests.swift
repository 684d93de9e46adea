import CohortTestSupport
import Foundation
import Testing

@testable import BulkServer

@Suite struct DataTests {
  static let synthea = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/synthea100-r4-bundles.tar.gz").path

  /// `--data` with the Synthea set: Bundles imported, urn:uuid references rewritten, served as Bulk Data.
  @Test func servesTheSyntheaSet() async throws {
    guard FileManager.default.fileExists(atPath: DataTests.synthea) else {
      print("skipping: \(DataTests.synthea) is absent")
      return
    }
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let tar = Process()
    tar.executableURL = URL(fileURLWithPath: "/bin/tar")
    tar.arguments = ["xzf", DataTests.synthea, "-C", dir]
    try tar.run()
    tar.waitUntilExit()
    #expect(tar.terminationStatus == 0)
    try await withServer({ $0.dataDirectory = dir }) { s in
      let meta = try await HTTP.get(s.baseURL + "/metadata")
      #expect(meta.text.contains("\"ExplanationOfBenefit\""))
      let e = try await HTTP.export(s.baseURL + "/Group/all-patients/$export?_type=Patient,Condition,Encounter")
      #expect(e.output["Patient"]?.count == 100)
      #expect((e.output["Encounter"]?.count ?? 0) > 1000)
      for (_, data) in e.raw { #expect(!String(decoding: data, as: UTF8.self).contains("urn:uuid:")) }
      let condition = try #require(e.output["Condition"]?.first)
      let subject = (condition["subject"] as? [String: Any])?["reference"] as? String ?? ""
      #expect(subject.hasPrefix("Patient/"))
      let diabetes = try await HTTP.get(s.baseURL + "/Group/diabetes-patients")
      #expect(((diabetes.json["member"] as? [Any])?.count ?? 0) > 0)
      // Time moves on imported data too.
      let r = try await s.advance()
      #expect(r.joined["all-patients"]?.count == 1)
    }
  }

  /// NDJSON files per type, with references to patients.
  @Test func servesNDJSONFiles() async throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let patients = (1...3).map { #"{"resourceType":"Patient","id":"p\#($0)","gender":"female"}"# }.joined(separator: "\n")
    let obs = (1...3).map { #"{"resourceType":"Observation","id":"o\#($0)","status":"final","subject":{"reference":"Patient/p\#($0)"}}"# }
      .joined(separator: "\n")
    try patients.write(toFile: dir + "/Patient.ndjson", atomically: true, encoding: .utf8)
    try (obs + "\n").write(toFile: dir + "/Observation.ndjson", atomically: true, encoding: .utf8)
    try await withServer({ $0.dataDirectory = dir }) { s in
      let e = try await HTTP.export(s.baseURL + "/Patient/$export")
      #expect(ids(e.output["Patient"] ?? []) == ["p1", "p2", "p3"])
      #expect(ids(e.output["Observation"] ?? []) == ["o1", "o2", "o3"])
      let post = try await HTTP.send(
        s.baseURL + "/Patient/$export", method: .POST, headers: HTTP.kickoffHeaders,
        body: Data(#"{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/p2"}}]}"#.utf8))
      let (m, _) = try await HTTP.poll(try #require(post.header("Content-Location")))
      #expect((m.json["output"] as? [[String: Any]])?.map { $0["count"] as? Int } == [1, 1])
    }
    var bad = BulkServerConfiguration()
    bad.dataDirectory = dir + "/missing"
    await #expect(throws: BulkServerError.self) { _ = try await BulkDataServer.start(bad) }
  }
}
