import CohortTestSupport
import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

@testable import BulkServer

@Suite struct EdgeTests {
  /// Malformed requests get a status and an OperationOutcome with diagnostics; nothing crashes.
  @Test func malformedRequests() async throws {
    try await withServer { s in
      let b = s.baseURL
      typealias Case = (path: String, method: HTTPMethod, body: Data?, status: Int, text: String)
      let json: (String) -> Data? = { Data($0.utf8) }
      let cases: [Case] = [
        ("/Patient/$export", .POST, json("{not json"), 400, "not JSON"),
        ("/Patient/$export", .POST, json(#"{"resourceType":"Patient"}"#), 400, "Parameters"),
        ("/Patient/$export", .POST, json(#"{"resourceType":"Parameters","parameter":[{"name":"_type"}]}"#), 400, "value"),
        ("/$export?_until=yesterday", .GET, nil, 400, "_until"),
        ("/$export?_since=2026-01-01T00:00:00Z&_until=2025-01-01T00:00:00Z", .GET, nil, 400, "before _since"),
        ("/$export?_typeFilter=Observation", .GET, nil, 400, "Type?param=value"),
        ("/$export?_typeFilter=" + URLTools.percentEncode("Observation?_sort=date"), .GET, nil, 400, "_sort"),
        ("/$export?_elements=Claim.id", .GET, nil, 400, "_elements"),
        ("/$export?includeAssociatedData=LatestProvenanceResources", .GET, nil, 400, "not supported"),
        ("/$export-status/abc", .GET, nil, 404, "no export job"),
        ("/files/1/../../etc/passwd", .GET, nil, 404, "unknown path"),
        ("/files/99/Patient.1.ndjson", .GET, nil, 404, "no export job"),
        ("/$admin/advance?days=-3", .POST, nil, 400, "days"),
        ("/auth/token", .POST, nil, 404, "does not issue tokens"),
        ("/.well-known/smart-configuration", .GET, nil, 404, "SMART"),
      ]
      for (path, method, body, status, text) in cases {
        let r = try await HTTP.send(b + path, method: method, headers: HTTP.kickoffHeaders, body: body)
        #expect(r.status == status, "\(method) \(path): \(r.text)")
        #expect(r.issue?.diagnostics.contains(text) == true, "\(method) \(path): \(r.text)")
      }
      // A percent-encoded $ still routes (C14).
      #expect(try await HTTP.kickoff(b + "/Group/all-patients/%24export?_type=Patient").status == 202)
      // The server still works.
      #expect(try await HTTP.get(b + "/metadata").status == 200)
    }
  }

  /// _until bounds the changes (C62); _since with a time zone offset (C18, C41).
  @Test func sinceAndUntil() async throws {
    try await withServer { s in
      let r1 = try await s.advance(days: 1)
      let mid = try #require(Instant.parse(r1.clock))
      _ = try await s.advance(days: 1)
      let start = "2026-01-05T09:00:00Z"
      let both = try await HTTP.export(s.baseURL + "/$export?_since=\(URLTools.percentEncode(start))&_until=\(URLTools.percentEncode(Instant.format(mid)))")
      let sinceOnly = try await HTTP.export(s.baseURL + "/$export?_since=\(URLTools.percentEncode(start))")
      let n1 = both.output.values.reduce(0) { $0 + $1.count }
      let n2 = sinceOnly.output.values.reduce(0) { $0 + $1.count }
      #expect(n1 > 0 && n1 < n2)
      for lines in both.output.values {
        for l in lines { #expect(((l["meta"] as? [String: Any])?["lastUpdated"] as? String ?? "") <= Instant.format(mid)) }
      }
      // The same instant written with an offset selects the same resources.
      let offset = try await HTTP.export(s.baseURL + "/$export?_since=" + URLTools.percentEncode("2026-01-05T11:00:00+02:00"))
      #expect(offset.output.values.reduce(0) { $0 + $1.count } == n2)
    }
  }

  /// C59/C60: group exports after an advance; leavers are not reported as deleted.
  @Test func groupSinceExport() async throws {
    try await withServer { s in
      let first = try await HTTP.export(s.baseURL + "/Group/diabetes-patients/$export")
      let t = try #require(first.manifest["transactionTime"] as? String)
      let r = try await s.advance(days: 1)
      let next = try await HTTP.export(s.baseURL + "/Group/diabetes-patients/$export?_since=" + URLTools.percentEncode(t))
      let conditionSubjects = (next.output["Condition"] ?? []).compactMap { ($0["subject"] as? [String: Any])?["reference"] as? String }
      for joined in r.joined["diabetes-patients"] ?? [] where !(r.joined["all-patients"] ?? []).contains(joined) {
        #expect(conditionSubjects.contains("Patient/" + joined))
      }
      let deletedURLs = next.deleted.flatMap { ($0["entry"] as? [[String: Any]] ?? []).compactMap { ($0["request"] as? [String: Any])?["url"] as? String } }
      for left in r.left["diabetes-patients"] ?? [] { #expect(!deletedURLs.contains("Patient/" + left)) }
      #expect(next.output["Patient"].map { ids($0) }?.allSatisfy { !(r.left["diabetes-patients"] ?? []).contains($0) } ?? true)
    }
  }

  @Test func faultSwitchesParse() throws {
    let f = try Faults.parse("kickoff429=1,transientPolls=2,gzip,badLine=wrongType,manifestPageSize=3")
    #expect(f == Faults(kickoff429: 1, transientPolls: 2, gzip: true, manifestPageSize: 3, badLine: .wrongType))
    #expect(throws: BulkServerError.self) { try Faults.parse("explode=1") }
    #expect(throws: BulkServerError.self) { try Faults.parse("badLine=maybe") }
  }

  @Test func instantsAndJSON() throws {
    #expect(Instant.format(0) == "1970-01-01T00:00:00Z")
    #expect(Instant.parse("2026-01-05T09:00:00.123+01:30") == Instant.parse("2026-01-05T07:30:00Z"))
    #expect(Instant.parse("2026-01-05") == nil)
    #expect(Instant.parse("2026-01-05T09:00:00") == nil)
    let text = #"{"b":1.50,"a":[true,null,"x\"\u00e9\ud83d\ude00"],"c":{}}"#
    let j = try JSON.parse(text)
    #expect(j.serializedString() == #"{"b":1.50,"a":[true,null,"x\"é😀"],"c":{}}"#)
    #expect(throws: JSONParseError.self) { try JSON.parse("{\"a\":}") }
    #expect(throws: JSONParseError.self) { try JSON.parse("[1,2") }
  }
}
