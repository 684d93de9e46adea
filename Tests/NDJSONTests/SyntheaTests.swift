import Foundation
import Testing

@testable import NDJSON

/// Real Synthea resources (shared test data): flatten the Bundles to NDJSON with JSONSerialization
/// and check the scanner against what JSONSerialization reads. Skips when the data is absent.
@Suite struct SyntheaTests {
  static let tarball: String? = {
    let candidates: [String?] = [
      ProcessInfo.processInfo.environment["COHORT_TEST_DATA"].map { $0 + "/synthea100-r4-bundles.tar.gz" },
      "/work/shared/data/synthea100-r4-bundles.tar.gz",
      URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "../../../shared/data/synthea100-r4-bundles.tar.gz"
      ).standardized.path,
    ]
    return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
  }()

  /// Under CI=true the data must be there (CI has ../shared/data): a missing tarball fails instead of skipping.
  static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

  @Test(.enabled(if: tarball != nil || isCI, "synthea100-r4-bundles.tar.gz not found (../shared/data): skipped"))
  func syntheaBundlesFlattened() throws {
    guard let tarball = Self.tarball else {
      Issue.record("CI=true but synthea100-r4-bundles.tar.gz is not in ../shared/data (or COHORT_TEST_DATA)")
      return
    }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let tar = Process()
    tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    tar.arguments = ["tar", "-xzf", tarball, "-C", dir.url.path]
    try tar.run()
    tar.waitUntilExit()
    try #require(tar.terminationStatus == 0)

    var files: [URL] = []
    if let e = FileManager.default.enumerator(at: dir.url, includingPropertiesForKeys: nil) {
      for case let u as URL in e where u.pathExtension == "json" { files.append(u) }
    }
    try #require(files.count > 50)

    var ndjson: [UInt8] = []
    var expected: [(type: String?, id: String?, versionId: String?, lastUpdated: String?)] = []
    var expectedReferences: [String?] = []
    var counts: [String: Int] = [:]
    var n = 0
    // A third of the patients plus the practitioner/hospital Bundles keeps the test to a few seconds.
    let sorted = files.sorted(by: { $0.path < $1.path })
    for (k, file) in sorted.enumerated() where k % 3 == 0 || !file.lastPathComponent.contains("_") {
      let bundle = try #require(
        try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
      for entry in bundle["entry"] as? [[String: Any]] ?? [] {
        guard var resource = entry["resource"] as? [String: Any] else { continue }
        n += 1
        if n % 3 == 0 {  // give some resources a meta, as servers do
          resource["meta"] = ["versionId": "\(n % 7)", "lastUpdated": "2024-05-0\(n % 9 + 1)T10:00:00Z",
                              "tag": [["id": "nested", "code": "x"]]] as [String: Any]
        }
        let line = try JSONSerialization.data(withJSONObject: resource)
        ndjson += line
        ndjson.append(0x0A)
        let meta = resource["meta"] as? [String: Any]
        expected.append((resource["resourceType"] as? String, resource["id"] as? String,
                         meta?["versionId"] as? String, meta?["lastUpdated"] as? String))
        expectedReferences.append(Truth.patientReference(of: resource))
        counts[resource["resourceType"] as? String ?? "", default: 0] += 1
      }
    }
    #expect(expected.count > 8_000)

    let lines = try scanAll(ndjson, chunk: 1 << 20)
    try #require(lines.count == expected.count)
    var mismatches = 0
    for (l, e) in zip(lines, expected)
    where l.resourceType != e.type || l.id != e.id || l.versionId != e.versionId
      || l.lastUpdated != e.lastUpdated
    {
      mismatches += 1
      if mismatches < 5 { Issue.record("line \(l.lineNumber): \(l) vs \(e)") }
    }
    #expect(mismatches == 0)
    // Patient compartment references as JSONSerialization reads them (Synthea uses urn:uuid:).
    #expect(lines.map(\.patientReference) == expectedReferences)
    #expect(expectedReferences.filter { $0 != nil }.count > expectedReferences.count / 2)

    let path = dir.path("all.ndjson.gz")
    try Data(try gzip(ndjson)).write(to: URL(fileURLWithPath: path))
    #expect(try NDJSONFile.countByType(path: path) == counts)
  }
}
