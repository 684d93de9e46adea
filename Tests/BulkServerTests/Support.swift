import CohortTestSupport
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import BulkServer

struct HTTPReply {
  var status: Int
  var headers: HTTPHeaders
  var body: Data

  var text: String { String(decoding: body, as: UTF8.self) }
  var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
  func header(_ name: String) -> String? { headers.first(name: name) }
  /// Lines of an NDJSON body, parsed.
  var lines: [[String: Any]] {
    text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
  }
  /// The OperationOutcome's first issue (code, diagnostics).
  var issue: (code: String, diagnostics: String)? {
    guard json["resourceType"] as? String == "OperationOutcome", let first = (json["issue"] as? [[String: Any]])?.first else {
      return nil
    }
    return (first["code"] as? String ?? "", first["diagnostics"] as? String ?? "")
  }
}

enum HTTP {
  /// A plain client: no automatic decompression (so gzip bodies can be checked), never shut down.
  static let client = HTTPClient(
    eventLoopGroupProvider: .singleton,
    configuration: HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled))

  static let kickoffHeaders = ["Accept": "application/fhir+json", "Prefer": "respond-async"]

  static func send(
    _ url: String, method: HTTPMethod = .GET, headers: [String: String] = [:], body: Data? = nil
  ) async throws -> HTTPReply {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (k, v) in headers.sorted(by: { $0.key < $1.key }) { request.headers.add(name: k, value: v) }
    if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
    let response = try await client.execute(request, timeout: .seconds(60))
    let buffer = try await response.body.collect(upTo: 64 << 20)
    return HTTPReply(status: Int(response.status.code), headers: response.headers, body: Data(buffer: buffer))
  }

  static func get(_ url: String, headers: [String: String] = [:]) async throws -> HTTPReply {
    try await send(url, headers: headers)
  }

  static func kickoff(_ url: String, extra: [String: String] = [:]) async throws -> HTTPReply {
    try await send(url, headers: kickoffHeaders.merging(extra) { _, b in b })
  }

  /// Polls until 200 (at most `limit` polls); returns the manifest reply and the number of 202s.
  static func poll(_ statusURL: String, headers: [String: String] = [:], limit: Int = 50) async throws -> (HTTPReply, Int) {
    var pending = 0
    for _ in 0..<limit {
      let r = try await get(statusURL, headers: headers)
      if r.status == 202 {
        pending += 1
        continue
      }
      return (r, pending)
    }
    throw TestFailure("status never completed: \(statusURL)")
  }

  /// Kick-off + poll + download: (manifest, files by type → lines).
  static func export(
    _ url: String, headers: [String: String] = [:]
  ) async throws -> (
    manifest: [String: Any], output: [String: [[String: Any]]], deleted: [[String: Any]], raw: [String: Data], manifestText: String
  ) {
    let k = try await kickoff(url, extra: headers)
    guard k.status == 202, let location = k.header("Content-Location") else {
      throw TestFailure("kick-off of \(url) answered \(k.status): \(k.text)")
    }
    let (m, _) = try await poll(location, headers: headers)
    guard m.status == 200 else { throw TestFailure("status answered \(m.status): \(m.text)") }
    var output: [String: [[String: Any]]] = [:]
    var raw: [String: Data] = [:]
    for item in m.json["output"] as? [[String: Any]] ?? [] {
      let type = item["type"] as? String ?? "", fileURL = item["url"] as? String ?? ""
      let f = try await get(fileURL, headers: headers)
      guard f.status == 200 else { throw TestFailure("file \(fileURL) answered \(f.status)") }
      output[type, default: []] += f.lines
      raw[fileURL.components(separatedBy: "/").suffix(2).joined(separator: "/")] = f.body
    }
    var deleted: [[String: Any]] = []
    for item in m.json["deleted"] as? [[String: Any]] ?? [] {
      deleted += try await get(item["url"] as? String ?? "", headers: headers).lines
    }
    return (m.json, output, deleted, raw, m.text)
  }
}

/// Starts a server, runs the body, stops the server.
func withServer<T>(
  _ configure: (inout BulkServerConfiguration) -> Void = { _ in }, _ body: (BulkDataServer) async throws -> T
) async throws -> T {
  var c = BulkServerConfiguration()
  configure(&c)
  let server = try await BulkDataServer.start(c)
  do {
    let result = try await body(server)
    await server.stop()
    return result
  } catch {
    await server.stop()
    throw error
  }
}

func ids(_ lines: [[String: Any]]) -> [String] { lines.compactMap { $0["id"] as? String } }

func tempDirectory() throws -> String { try temporaryDirectory() }
