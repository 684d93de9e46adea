import CohortTestSupport
import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

@testable import BulkServer

@Suite struct FaultTests {
  /// C72: Netsmart URL style, X-RetryAfter, Binary files.
  @Test func netsmartFlavor() async throws {
    try await withServer({ $0.flavor = .netsmart }) { s in
      let k = try await HTTP.kickoff(s.baseURL + "/Group/all-patients/$export?_type=Patient")
      let location = try #require(k.header("Content-Location"))
      #expect(location == s.baseURL + "/$export-poll-status?_id=1")
      let p = try await HTTP.get(location, headers: ["X-Request-ID": "req-7"])
      #expect(p.status == 202)
      #expect(p.header("X-Correlation-Id") == "req-7")
      #expect(p.header("X-RetryAfter") == "1" && p.header("Retry-After") == "1")
      let (m, _) = try await HTTP.poll(location)
      let url = try #require((m.json["output"] as? [[String: Any]])?.first?["url"] as? String)
      #expect(url == s.baseURL + "/Binary/1-Patient-1/$binary-access-read")
      #expect(try await HTTP.get(url).lines.count == 40)
      // The standard paths do not exist on this flavor.
      #expect(try await HTTP.get(s.baseURL + "/$export-status/1").status == 404)
      #expect(try await HTTP.get(s.baseURL + "/$export-poll-status").status == 400)
      let d = try await HTTP.send(location, method: .DELETE)
      #expect(d.status == 202)
      #expect(try await HTTP.get(location).status == 404)
      #expect(try await HTTP.get(url).status == 404)
    }
  }

  /// C26: 429 + Retry-After on kick-off; C34: transient 500 on the first polls; slow exports.
  @Test func kickoff429TransientPollsAndSlowExport() async throws {
    try await withServer({ $0.faults = Faults(kickoff429: 1, transientPolls: 2, slowPolls: 3); $0.retryAfterSeconds = 2 }) { s in
      let url = s.baseURL + "/$export?_type=Patient"
      let first = try await HTTP.kickoff(url)
      #expect(first.status == 429)
      #expect(first.header("Retry-After") == "2")
      #expect(first.issue?.code == "throttled")
      let second = try await HTTP.kickoff(url)
      #expect(second.status == 202)
      let location = try #require(second.header("Content-Location"))
      for _ in 0..<2 {
        let r = try await HTTP.get(location)
        #expect(r.status == 500)
        #expect(r.issue?.code == "transient")
      }
      let (m, pending) = try await HTTP.poll(location)
      #expect(m.status == 200)
      #expect(pending == 4)  // pollsBeforeComplete 1 + slowPolls 3
    }
  }

  /// C48: 5xx on a file and a dropped connection, both retried; C47: expired links renewed by polling again.
  @Test func fileFaults() async throws {
    try await withServer({ $0.faults = Faults(fileErrors: 1, dropConnections: 1, expiredLinks: 1) }) { s in
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient")
      let location = try #require(k.header("Content-Location"))
      let (m1, _) = try await HTTP.poll(location)
      let stale = try #require((m1.json["output"] as? [[String: Any]])?.first?["url"] as? String)
      let expired = try await HTTP.get(stale)
      #expect(expired.status == 410)
      #expect(expired.issue?.diagnostics.contains("poll the status URL") == true)
      let m2 = try await HTTP.get(location)
      let fresh = try #require((m2.json["output"] as? [[String: Any]])?.first?["url"] as? String)
      #expect(fresh != stale)
      let e = try await HTTP.get(fresh)
      #expect(e.status == 503)
      #expect(e.issue?.code == "transient")
      // The second request is cut off half-way.
      var request = HTTPClientRequest(url: fresh)
      request.method = .GET
      var received = 0
      var failed = false
      do {
        let response = try await HTTP.client.execute(request, timeout: .seconds(10))
        #expect(response.status.code == 200)
        for try await chunk in response.body { received += chunk.readableBytes }
      } catch {
        failed = true
      }
      #expect(failed)
      let ok = try await HTTP.get(fresh)
      #expect(ok.status == 200)
      #expect(ok.lines.count == 40)
      #expect(received < ok.body.count)
    }
  }

  /// C45: gzip when asked for; C64: paged manifest; C40: partial success; C44: a wrong-type line.
  @Test func gzipPagingPartialAndBadLines() async throws {
    try await withServer({ $0.faults = Faults(gzip: true, manifestPageSize: 2, partialFailure: true, badLine: .wrongType) }) { s in
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient,Condition,Observation,Encounter")
      let location = try #require(k.header("Content-Location"))
      var (page, _) = try await HTTP.poll(location)
      var outputs: [[String: Any]] = []
      var errors: [[String: Any]] = []
      var pages = 0
      while true {
        pages += 1
        outputs += page.json["output"] as? [[String: Any]] ?? []
        errors += page.json["error"] as? [[String: Any]] ?? []
        guard let next = (page.json["link"] as? [[String: Any]])?.first(where: { $0["relation"] as? String == "next" })?["url"] as? String
        else { break }
        page = try await HTTP.get(next)
        #expect(page.status == 200)
      }
      let types = outputs.compactMap { $0["type"] as? String }
      #expect(pages == 2)
      #expect(types == ["Patient", "Encounter", "Condition"])  // Observation "failed"
      #expect(errors.count == 1)
      let err = try await HTTP.get(errors[0]["url"] as! String)
      #expect(err.lines.first?["resourceType"] as? String == "OperationOutcome")
      #expect(err.text.contains("Observation"))
      // gzip only when the client asks.
      let url = outputs[0]["url"] as! String
      let zipped = try await HTTP.get(url, headers: ["Accept-Encoding": "gzip"])
      #expect(zipped.header("Content-Encoding") == "gzip")
      #expect(zipped.body.prefix(2) == Data([0x1F, 0x8B]))
      let plain = try await HTTP.get(url)
      #expect(plain.header("Content-Encoding") == nil)
      #expect(try gunzip(zipped.body) == plain.body)
      // The first output file carries one line of the wrong type, counted in `count`.
      let lines = plain.lines
      #expect(lines.count == outputs[0]["count"] as? Int)
      #expect(lines.filter { $0["resourceType"] as? String != "Patient" }.count == 1)
    }
  }

  @Test func invalidJSONLine() async throws {
    try await withServer({ $0.faults = Faults(badLine: .invalidJSON) }) { s in
      let e = try await HTTP.export(s.baseURL + "/$export?_type=Patient")
      let raw = try #require(e.raw.values.first)
      let lines = String(decoding: raw, as: UTF8.self).split(separator: "\n")
      #expect(lines.count == 41)
      #expect(e.output["Patient"]?.count == 40)  // one line does not parse
      await s.setFaults(Faults())
      let clean = try await HTTP.export(s.baseURL + "/$export?_type=Patient")
      #expect(clean.raw.values.first.map { String(decoding: $0, as: UTF8.self).split(separator: "\n").count } == 40)
    }
  }
}

func gunzip(_ data: Data) throws -> Data {
  let dir = try tempDirectory()
  defer { try? FileManager.default.removeItem(atPath: dir) }
  let path = dir + "/x.gz"
  try data.write(to: URL(fileURLWithPath: path))
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/bin/gzip")
  p.arguments = ["-d", path]
  try p.run()
  p.waitUntilExit()
  return try Data(contentsOf: URL(fileURLWithPath: dir + "/x"))
}
