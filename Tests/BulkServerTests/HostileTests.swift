import CohortTestSupport
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import BulkServer

/// A streamed response: what arrived before the client stopped reading.
struct Streamed {
  var status: Int
  var headers: HTTPHeaders
  var version: HTTPVersion
  var chunks: [Int] = []
  var body = Data()
  var failed = false
}

extension HTTP {
  /// GETs `url` and reads at most `maxBytes` or `maxChunks`, then stops (cancelling the request).
  static func stream(_ url: String, headers: [String: String] = [:], maxBytes: Int = 1 << 30, maxChunks: Int = .max) async throws
    -> Streamed
  {
    var request = HTTPClientRequest(url: url)
    for (k, v) in headers { request.headers.add(name: k, value: v) }
    let response = try await client.execute(request, timeout: .seconds(60))
    var out = Streamed(status: Int(response.status.code), headers: response.headers, version: response.version)
    do {
      for try await chunk in response.body {
        out.chunks.append(chunk.readableBytes)
        out.body.append(contentsOf: chunk.readableBytesView)
        if out.body.count >= maxBytes || out.chunks.count >= maxChunks { break }
      }
    } catch {
      out.failed = true
    }
    return out
  }

  /// Kick-off and poll: the manifest reply.
  static func manifest(_ url: String, headers: [String: String] = [:]) async throws -> (HTTPReply, String) {
    let k = try await kickoff(url, extra: headers)
    guard k.status == 202, let location = k.header("Content-Location") else { throw TestFailure("kick-off answered \(k.status): \(k.text)") }
    let (m, _) = try await poll(location, headers: headers)
    return (m, location)
  }
}

func outputURLs(_ m: HTTPReply) -> [String] { (m.json["output"] as? [[String: Any]] ?? []).compactMap { $0["url"] as? String } }
func host(_ url: String) -> String? { URL(string: url)?.host }

/// Hostile-server faults (issue 11 item 10): each one is shown doing what it says.
@Suite struct HostileTests {
  static let token = "hostile-test-token"
  static let auth = ["Authorization": "Bearer " + token]

  /// The status URL on another origin (127.0.0.2), which serves the same jobs and records every
  /// Authorization header it receives.
  @Test func otherOriginStatus() async throws {
    try await withServer({ $0.auth = .bearer(token: Self.token); $0.faults.otherOriginStatus = true }) { s in
      let other = try #require(s.otherOriginURL)
      #expect(host(other) == "127.0.0.2")
      #expect(await s.otherOriginAuthorizationHeaders.isEmpty)
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient", extra: Self.auth)
      let location = try #require(k.header("Content-Location"))
      #expect(location == other + "/$export-status/1")
      // Without a token the other origin refuses (same rules); a leaky client's token is recorded.
      #expect(try await HTTP.get(location).status == 401)
      let (m, _) = try await HTTP.poll(location, headers: Self.auth)
      #expect(m.status == 200)
      #expect(outputURLs(m).allSatisfy { $0.hasPrefix(s.baseURL) })
      #expect(await s.otherOriginAuthorizationHeaders.contains("Bearer " + Self.token))
      #expect(await s.otherOriginRequestLog.allSatisfy { $0.path.hasPrefix("/$export-status/1") })
      // The main origin's log holds only the main origin's requests.
      #expect(await s.requestLog.allSatisfy { !$0.path.hasPrefix("/$export-status") })
    }
  }

  /// Set at runtime: the listener starts then; `next` manifest pages on the other origin.
  @Test func otherOriginNextAtRuntime() async throws {
    try await withServer { s in
      #expect(s.otherOriginURL == nil)
      await s.setFaults(Faults(otherOriginNext: true))
      let other = try #require(s.otherOriginURL)
      let (m, _) = try await HTTP.manifest(s.baseURL + "/$export?_type=Patient,Condition")
      #expect(outputURLs(m).count == 1)  // one entry per page when manifestPageSize is 0
      let next = try #require((m.json["link"] as? [[String: Any]])?.first?["url"] as? String)
      #expect(next.hasPrefix(other + "/$export-status/1?page=2"))
      let page2 = try await HTTP.get(next, headers: ["Authorization": "Bearer not-for-you"])
      #expect(page2.status == 200)
      #expect(outputURLs(page2).count == 1)
      #expect(await s.otherOriginAuthorizationHeaders == ["Bearer not-for-you"])
    }
  }

  /// File links refreshed after a 410 (expiredLinks) point at the other origin, which serves them.
  @Test func otherOriginRefresh() async throws {
    try await withServer({ $0.faults.otherOriginRefresh = true }) { s in
      let other = try #require(s.otherOriginURL)
      let (m1, location) = try await HTTP.manifest(s.baseURL + "/$export?_type=Patient")
      let stale = try #require(outputURLs(m1).first)
      #expect(stale.hasPrefix(s.baseURL))
      #expect(try await HTTP.get(stale).status == 410)
      let m2 = try await HTTP.get(location)
      let fresh = try #require(outputURLs(m2).first)
      #expect(fresh.hasPrefix(other + "/files/1/"))
      let f = try await HTTP.get(fresh)
      #expect(f.status == 200 && f.lines.count == 40)
      #expect(await s.otherOriginRequestLog.count == 1)
      #expect(await s.otherOriginAuthorizationHeaders.isEmpty)
    }
  }

  @Test func groupWithoutMember() async throws {
    try await withServer({ $0.faults.groupNoMember = true }) { s in
      let g = try await HTTP.get(s.baseURL + "/Group/all-patients")
      #expect(g.status == 200)
      #expect(g.json["resourceType"] as? String == "Group")
      #expect(g.json["quantity"] as? Int == 40)
      #expect(g.json["member"] == nil)
    }
  }

  /// No Content-Length, no chunking, HTTP/1.0, closed after half the lines: nothing says it is short.
  @Test func truncatedBody() async throws {
    try await withServer({ $0.faults.truncatedBody = 1 }) { s in
      let (m, _) = try await HTTP.manifest(s.baseURL + "/$export?_type=Patient")
      let url = try #require(outputURLs(m).first)
      let cut = try await HTTP.stream(url)
      #expect(cut.status == 200)
      #expect(cut.headers.first(name: "Content-Length") == nil)
      #expect(cut.headers.first(name: "Transfer-Encoding") == nil)
      #expect(cut.version == .http1_0)
      #expect(!cut.failed)  // the client sees an ordinary end of body
      let text = String(decoding: cut.body, as: UTF8.self)
      #expect(text.hasSuffix("\n"))
      let lines = text.split(separator: "\n")
      #expect(lines.count > 0 && lines.count < 40)
      #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
      // The next request of the file is whole.
      let whole = try await HTTP.get(url)
      #expect(whole.lines.count == 40)
      #expect(whole.header("Content-Length") == String(whole.body.count))
    }
  }

  @Test func manifestWithoutOutputAndFutureTransactionTime() async throws {
    try await withServer({ $0.faults.noOutput = true; $0.faults.futureTransactionTime = true }) { s in
      let (m, _) = try await HTTP.manifest(s.baseURL + "/$export?_type=Patient")
      #expect(m.status == 200)
      #expect(m.json["output"] == nil)
      #expect(m.json["error"] != nil && m.json["request"] != nil)
      let t = try #require((m.json["transactionTime"] as? String).flatMap { Instant.parse($0) })
      let clock = try #require(Instant.parse(await s.clock))
      #expect(t >= clock + 86400)
      #expect(t >= Int(Date().timeIntervalSince1970) + 86400 - 5)
    }
  }

  @Test func linesWithoutIdAndEmptyDeletedURL() async throws {
    try await withServer({ $0.faults.missingId = true; $0.faults.emptyDeletedURL = true }) { s in
      let full = try await HTTP.export(s.baseURL + "/$export?_type=Patient,Condition")
      for type in ["Patient", "Condition"] {
        let lines = try #require(full.output[type])
        #expect(lines.first?["id"] == nil)
        #expect(lines.first?["resourceType"] as? String == type)
        #expect(lines.dropFirst().allSatisfy { $0["id"] != nil })
      }
      _ = try await s.advance(days: 1)
      let since = try await HTTP.export(s.baseURL + "/$export?_type=Observation&_since=" + URLTools.percentEncode("2026-01-05T09:00:00Z"))
      let urls = since.deleted.flatMap { ($0["entry"] as? [[String: Any]] ?? []).compactMap { ($0["request"] as? [String: Any])?["url"] as? String } }
      #expect(urls.contains(""))
      #expect(urls.contains { $0.hasPrefix("Observation/") })
    }
  }

  /// ESC[… in OperationOutcome diagnostics (errors, the kick-off) and in an error file.
  @Test func terminalEscapes() async throws {
    try await withServer({ $0.faults.escapes = true }) { s in
      let notFound = try await HTTP.get(s.baseURL + "/$export-status/99")
      #expect(notFound.status == 404)
      #expect(notFound.issue?.diagnostics.hasPrefix(Faults.escapeText) == true)
      #expect(notFound.issue?.diagnostics.contains("\u{1B}[") == true)
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient")
      #expect(k.issue?.diagnostics.contains("\u{1B}[") == true)
      let (m, _) = try await HTTP.poll(try #require(k.header("Content-Location")))
      let errorURL = try #require((m.json["error"] as? [[String: Any]])?.first?["url"] as? String)
      let line = try #require(try await HTTP.get(errorURL).lines.first)
      #expect(((line["issue"] as? [[String: Any]])?.first?["diagnostics"] as? String)?.contains("\u{1B}[2K") == true)
    }
  }

  /// An endless body: the server streams until the client stops reading.
  @Test func endlessBody() async throws {
    try await withServer({ $0.faults.endlessBody = 1 }) { s in
      let (m, _) = try await HTTP.manifest(s.baseURL + "/$export?_type=Patient")
      let item = try #require((m.json["output"] as? [[String: Any]])?.first)
      let url = try #require(item["url"] as? String)
      let bound = 2 << 20
      let endless = try await HTTP.stream(url, maxBytes: bound)
      #expect(endless.status == 200)
      #expect(endless.headers.first(name: "Content-Length") == nil)
      #expect(endless.body.count >= bound)  // far more than the file
      let whole = try await HTTP.get(url)
      #expect(whole.lines.count == 40)
      #expect(endless.body.count > 10 * whole.body.count)
      #expect(endless.body.prefix(whole.body.count) == whole.body)
    }
  }

  /// A trickling body: a few bytes per chunk, with the full Content-Length.
  @Test func tricklingBody() async throws {
    try await withServer({ $0.faults.tricklingBody = 1 }) { s in
      let (m, _) = try await HTTP.manifest(s.baseURL + "/$export?_type=Patient")
      let url = try #require(outputURLs(m).first)
      let slow = try await HTTP.stream(url, maxChunks: 3)
      #expect(slow.status == 200)
      #expect(slow.chunks.count == 3)
      #expect(slow.chunks.allSatisfy { $0 <= Faults.trickleBytesPerSecond })
      let whole = try await HTTP.get(url)
      #expect(slow.headers.first(name: "Content-Length") == String(whole.body.count))
      #expect(whole.body.starts(with: slow.body))
    }
  }

  /// One non-JSON 200 from the status URL, then the manifest; status polls answered 429 N times.
  @Test func statusNotJSONAndPoll429() async throws {
    try await withServer({ $0.faults.statusNotJSON = 1; $0.faults.poll429 = 2; $0.retryAfterSeconds = 3 }) { s in
      let k = try await HTTP.kickoff(s.baseURL + "/$export?_type=Patient")
      let location = try #require(k.header("Content-Location"))
      for _ in 0..<2 {
        let r = try await HTTP.get(location)
        #expect(r.status == 429)
        #expect(r.header("Retry-After") == "3")
        #expect(r.issue?.code == "throttled")
      }
      let (odd, pending) = try await HTTP.poll(location)
      #expect(pending == 1)
      #expect(odd.status == 200)
      #expect(odd.header("Content-Type")?.hasPrefix("text/html") == true)
      #expect((try? JSONSerialization.jsonObject(with: odd.body)) == nil)
      let real = try await HTTP.get(location)
      #expect(real.status == 200)
      #expect(outputURLs(real).count == 1)
    }
  }

  @Test func everyFaultParses() throws {
    for name in Faults.names where name != "badLine" {
      let f = try Faults.parse(name + "=1")
      #expect(f != Faults(), "\(name)")
    }
    let f = try Faults.parse("noDeleted,ignorePatient,otherOriginStatus,truncatedBody,poll429=3,escapes")
    #expect(f == Faults(noDeleted: true, ignorePatient: true, otherOriginStatus: true, truncatedBody: 1, escapes: true, poll429: 3))
    #expect(f.needsOtherOrigin)
    #expect(throws: BulkServerError.self) { try Faults.parse("noDeleted=maybe") }
  }
}
