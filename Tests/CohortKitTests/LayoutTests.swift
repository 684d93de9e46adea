import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// What an export leaves on disk and in its record (design "On-disk layout"; C39, C42, C48).
@Suite("Export layout")
struct LayoutTests {
  @Test("files on disk match their records: sha256, line counts = manifest counts, one folder per export", arguments: [false, true])
  func filesMatchRecords(gzip: Bool) async throws {
    try await withFixture({ $0.resourcesPerFile = 80 }) { f in
      try f.addCohort("diabetes")
      await f.server.setFaults(Faults(gzip: gzip, partialFailure: true))
      let out = try await f.export("diabetes")
      #expect(out.folder == f.cohortFolder("diabetes") + "/0001")
      let manifest = try Manifest.parse(Data(contentsOf: URL(fileURLWithPath: out.folder + "/manifest.json")))
      let records = try f.store.files(exportID: try #require(out.export.id))
      #expect(records.count == manifest.output.count + manifest.error.count)
      #expect(records.filter { $0.kind == "error" }.count == manifest.error.count)
      #expect(!manifest.error.isEmpty)
      for record in records {
        #expect(record.path.hasPrefix("0001/"))
        let path = f.cohortFolder("diabetes") + "/" + record.path
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Int64(data.count) == record.bytes, "\(record.path)")
        #expect(try sha256(path) == record.sha256, "\(record.path)")
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { !$0.isEmpty }.count
        #expect(lines == record.lines, "\(record.path)")
        if record.kind == "output" {
          let item = try #require(manifest.output.first { $0.url == record.url })
          #expect(item.count == record.lines, "C42: \(record.path)")
          #expect(record.path.hasSuffix(".ndjson"))
          #expect((record.path as NSString).lastPathComponent.hasPrefix(record.type + "."))
        } else {
          #expect(record.path.hasPrefix("0001/error/"))
        }
      }
      // The export's record carries the totals.
      #expect(out.export.files == records.count)
      #expect(out.export.resources == records.filter { $0.kind == "output" }.reduce(0) { $0 + $1.lines })
      #expect(out.export.bytes == records.reduce(0) { $0 + $1.bytes })
      #expect(out.export.finishedAt != nil)
      #expect(out.export.transactionTime == manifest.transactionTime)
      let counts = try f.store.counts(cohort: "diabetes", at: out.export.id!)
      #expect(counts.values.reduce(0, +) == out.export.resources)
    }
  }
}

/// sha256 of a file, by the system tool (the test target does not link swift-crypto).
func sha256(_ path: String) throws -> String {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
  process.arguments = [path]
  let pipe = Pipe()
  process.standardOutput = pipe
  try process.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return String(String(decoding: data, as: UTF8.self).prefix(64))
}
