import CohortTestSupport
import AsyncHTTPClient
import Foundation
import Testing

@testable import BulkServer

@Suite struct AdvanceTests {
  /// C51, C53, C54: a _since export after an advance returns exactly the changed resources and the deleted ones.
  @Test func sinceExportReturnsExactlyTheChanges() async throws {
    try await withServer { s in
      let first = try await HTTP.export(s.baseURL + "/$export")
      let t1 = try #require(first.manifest["transactionTime"] as? String)
      let report = try await s.advance(days: 2)
      #expect(report.clock == "2026-01-07T09:00:01Z")
      #expect(report.addedCount > 0 && report.updatedCount > 0 && report.deletedCount > 0)
      #expect(report.joined["all-patients"]?.count == 2)  // one new patient per day
      #expect(report.joined["diabetes-patients"]?.isEmpty == false)
      #expect(report.left["diabetes-patients"]?.isEmpty == false)

      let second = try await HTTP.export(s.baseURL + "/$export?_since=" + URLTools.percentEncode(t1))
      #expect(second.manifest["transactionTime"] as? String == "2026-01-07T09:00:02Z")
      var changed: [String: [String]] = [:]
      for (type, lines) in second.output { changed[type] = ids(lines).sorted() }
      var expected: [String: [String]] = [:]
      for (type, list) in report.added { expected[type, default: []] += list }
      for (type, list) in report.updated { expected[type, default: []] += list }
      for k in expected.keys { expected[k]!.sort() }
      #expect(changed == expected)
      // Updated resources carry a new versionId and a lastUpdated after t1.
      for line in second.output["Patient"] ?? [] {
        let meta = line["meta"] as? [String: Any]
        #expect((meta?["lastUpdated"] as? String ?? "") > t1)
      }
      // deleted: Bundles of DELETE entries, exactly the deleted resources (C54).
      #expect(second.manifest["deleted"] != nil)
      let deleted = second.deleted.flatMap { bundle -> [String] in
        #expect(bundle["resourceType"] as? String == "Bundle" && bundle["type"] as? String == "transaction")
        return (bundle["entry"] as? [[String: Any]] ?? []).compactMap {
          let r = $0["request"] as? [String: Any]
          #expect(r?["method"] as? String == "DELETE")
          return r?["url"] as? String
        }
      }
      let expectedDeleted = report.deleted.flatMap { type, list in list.map { "\(type)/\($0)" } }
      #expect(deleted.sorted() == expectedDeleted.sorted())
      // A deleted resource is in no output; a full export no longer has it.
      let full = try await HTTP.export(s.baseURL + "/$export?_type=Observation")
      let live = Set(ids(full.output["Observation"] ?? []))
      for id in report.deleted["Observation"] ?? [] { #expect(!live.contains(id)) }
      // Group membership follows the data.
      let group = try await HTTP.get(s.baseURL + "/Group/diabetes-patients")
      let members = Set((group.json["member"] as? [[String: Any]] ?? []).compactMap { ($0["entity"] as? [String: Any])?["reference"] as? String })
      for p in report.joined["diabetes-patients"] ?? [] { #expect(members.contains("Patient/" + p)) }
      for p in report.left["diabetes-patients"] ?? [] { #expect(!members.contains("Patient/" + p)) }
      // The same advance over HTTP gives the next day.
      let r = try await HTTP.send(s.baseURL + "/$admin/advance?days=1", method: .POST)
      #expect(r.status == 200)
      #expect(r.json["clock"] as? String == "2026-01-08T09:00:03Z")
    }
  }

  /// Two servers with the same seed and the same sequence of advances give identical reports.
  /// `rate` scales the advance so that about that fraction of the resources changes (the bench's 1 % incremental);
  /// a rate outside (0, 1] is refused with one clear line.
  @Test func changeRateScalesTheAdvance() async throws {
    try await withServer({ $0.patients = 400 }) { s in
      let full = try await HTTP.export(s.baseURL + "/$export")
      let resources = full.output.values.reduce(0) { $0 + $1.count }
      let report = try await s.advance(days: 7, rate: 0.05)
      let changed = report.addedCount + report.updatedCount + report.deletedCount
      // 5 % of the resources, give or take the daily new patient and the estimate of resources per visit.
      #expect(Double(changed) > 0.025 * Double(resources) && Double(changed) < 0.1 * Double(resources))
      #expect(report.updatedCount > 0 && report.deletedCount > 0)
      let again = try await s.advance(days: 7)  // the default stays ≈ 25 % in 7 days
      #expect(Double(again.addedCount + again.updatedCount + again.deletedCount) > 0.15 * Double(resources))
      for bad in ["0", "1.5", "abc", "-0.1"] {
        let r = try await HTTP.send(s.baseURL + "/$admin/advance?days=1&rate=" + bad, method: .POST)
        #expect(r.status == 400)
        #expect(String(decoding: r.body, as: UTF8.self).contains("rate must be a number above 0 and at most 1"))
      }
      let ok = try await HTTP.send(s.baseURL + "/$admin/advance?days=1&rate=0.01", method: .POST)
      #expect(ok.status == 200)
    }
  }

  @Test func advanceIsDeterministic() async throws {
    func run() async throws -> [AdvanceReport] {
      try await withServer({ $0.seed = 42 }) { s in
        [try await s.advance(days: 1), try await s.advance(days: 3)]
      }
    }
    let a = try await run()
    let b = try await run()
    #expect(a == b)
  }

  /// An export is a snapshot at its transactionTime: an advance that lands while it runs (here,
  /// before it even starts reading) changes nothing in it, and the next _since export sees the changes.
  @Test(arguments: [0, 400]) func exportDuringAdvanceIsConsistent(delay: Int) async throws {
    try await withServer({ $0.patients = delay == 0 ? 1500 : 200; $0.pollsBeforeComplete = 0; $0.exportStartDelayMilliseconds = delay }) { s in
      let before = try await HTTP.export(s.baseURL + "/$export?_type=Patient,Observation")
      // Kick off, and advance at once, while the files are being written.
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient,Observation")
      let location = try #require(k.header("Content-Location"))
      async let report = s.advance(days: 1)
      let (m, _) = try await HTTP.poll(location)
      let r = try await report
      #expect(r.addedCount > 0 && r.updatedCount > 0 && r.deletedCount > 0)
      let t = try #require(m.json["transactionTime"] as? String)
      #expect(t < r.clock)
      var during: [String: Data] = [:]
      for item in m.json["output"] as? [[String: Any]] ?? [] {
        let url = item["url"] as! String
        during[url.components(separatedBy: "/").last!] = try await HTTP.get(url).body
      }
      var earlier: [String: Data] = [:]
      for (k, v) in before.raw { earlier[k.components(separatedBy: "/").last!] = v }
      #expect(during == earlier)
      // The next export after the advance includes the changes.
      let next = try await HTTP.export(s.baseURL + "/$export?_type=Patient,Observation&_since=" + URLTools.percentEncode(t))
      #expect(Set(ids(next.output["Observation"] ?? [])) == Set((r.added["Observation"] ?? []) + (r.updated["Observation"] ?? [])))
      #expect(next.deleted.count == r.deleted["Observation"]?.count ?? 0)
    }
  }

  /// State survives a restart: the clock, the changes and finished jobs (--state).
  @Test func statePersists() async throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/state.sqlite"
    let (clock, manifestURL, count) = try await withServer({ $0.statePath = path }) { s in
      _ = try await s.advance(days: 1)
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient")
      let location = try #require(k.header("Content-Location"))
      let (m, _) = try await HTTP.poll(location)
      let count = (m.json["output"] as? [[String: Any]])?.first?["count"] as? Int
      return (await s.clock, location.replacingOccurrences(of: s.baseURL, with: ""), count)
    }
    #expect(count == 41)
    try await withServer({ $0.statePath = path; $0.patients = 5 }) { s in
      #expect(await s.clock == clock)
      let m = try await HTTP.get(s.baseURL + manifestURL)
      #expect(m.status == 200)
      let item = try #require((m.json["output"] as? [[String: Any]])?.first)
      let f = try await HTTP.get((item["url"] as! String))
      #expect(f.lines.count == 41)
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient")
      #expect(k.header("Content-Location")?.hasSuffix("/$export-status/2") == true)
    }
  }
}
