// A scriptable mock Bulk Data server for checklist tests: each test sets the responses of the
// routes it needs and reads back the log of received requests (with headers).
import Foundation
import Hummingbird
import Logging
import NIOCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

@testable import FHIRBulk

struct RecordedRequest: Sendable {
  var method: String
  /// Raw request target (path + query), exactly as received.
  var uri: String
  var headers: [(String, String)]
  var body: Data

  var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? "") }
  var query: String? { uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) }

  /// All values of a header (case-insensitive), joined with ", ".
  func header(_ name: String) -> String? {
    let v = headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    return v.isEmpty ? nil : v.joined(separator: ", ")
  }
}

enum MockBody: Sendable {
  case data(Data)
  /// Sends `chunks`, then (if `thenFail`) drops the connection before the declared length.
  case chunks([Data], thenFail: Bool)
  /// `count` repetitions of `line`, streamed in 64 KB writes (for large files).
  case repeated(line: Data, count: Int)
  /// `line` repeated without end (chunked), until the client goes away (or 4 GB).
  case endless(line: Data)
  /// `first`, then `count` lines one at a time with `pause` between them (chunked): a trickle,
  /// or with a long pause, a stall.
  case trickle(first: Data, line: Data, count: Int, pause: Duration)
}

struct MockResponse: Sendable {
  var status: Int
  var headers: [(String, String)] = []
  var body: MockBody = .data(Data())

  static func json(_ status: Int, _ text: String, _ headers: [(String, String)] = []) -> MockResponse {
    MockResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: .data(Data(text.utf8)))
  }
  static func text(_ status: Int, _ text: String, contentType: String = "text/plain", _ headers: [(String, String)] = [])
    -> MockResponse
  {
    MockResponse(status: status, headers: [("Content-Type", contentType)] + headers, body: .data(Data(text.utf8)))
  }
  static func status(_ status: Int, _ headers: [(String, String)] = []) -> MockResponse {
    MockResponse(status: status, headers: headers)
  }
  static func ndjson(_ lines: [String], _ headers: [(String, String)] = []) -> MockResponse {
    MockResponse(
      status: 200, headers: [("Content-Type", "application/fhir+ndjson")] + headers,
      body: .data(Data(lines.map { $0 + "\n" }.joined().utf8)))
  }
  static func outcome(_ status: Int, code: String, diagnostics: String, _ headers: [(String, String)] = []) -> MockResponse {
    .json(
      status,
      #"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"\#(code)","diagnostics":"\#(diagnostics)"}]}"#,
      headers)
  }
}

struct MockFailure: Error {}

final class MockServer: Sendable {
  /// (request, 1-based hit count for this route) → response.
  typealias Handler = @Sendable (RecordedRequest, Int) async -> MockResponse

  let port: Int
  let host: String
  var base: String { "http://\(host):\(port)" }
  private let routes = Locked<[String: Handler]>([:])
  private let hits = Locked<[String: Int]>([:])
  private let log = Locked<[RecordedRequest]>([])
  private let concurrency = Locked<(now: Int, max: Int)>((0, 0))
  private let task = Locked<Task<Void, any Error>?>(nil)

  private init(port: Int, host: String) {
    self.port = port
    self.host = host
  }

  /// Binds `host` (127.0.0.1, or 127.0.0.2 for "another origin") on port 0.
  static func start(host: String = "127.0.0.1") async throws -> MockServer {
    let (stream, cont) = AsyncStream.makeStream(of: Int.self)
    let box = Locked<MockServer?>(nil)
    var logger = Logger(label: "mock-bulk-server")
    logger.logLevel = .critical
    let app = Application(
      responder: CallbackResponder<BasicRequestContext> { request, _ in
        guard let server = box.current else { return Response(status: .serviceUnavailable) }
        return try await server.respond(request)
      },
      configuration: .init(address: .hostname(host, port: 0)),
      onServerRunning: { channel in
        cont.yield(channel.localAddress?.port ?? 0)
        cont.finish()
      },
      logger: logger)
    let t = Task { try await app.run() }
    var it = stream.makeAsyncIterator()
    guard let port = await it.next(), port > 0 else {
      t.cancel()
      throw MockFailure()
    }
    let server = MockServer(port: port, host: host)
    box.withLock { $0 = server }
    server.task.withLock { $0 = t }
    return server
  }

  func stop() async {
    let t = task.withLock { t -> Task<Void, any Error>? in
      defer { t = nil }
      return t
    }
    t?.cancel()
    _ = await t?.result
  }

  /// Sets the handler of `METHOD path` (path without query, as received).
  func on(_ method: String, _ path: String, _ handler: @escaping Handler) {
    routes.withLock { $0["\(method) \(path)"] = handler }
  }

  /// Always the same response.
  func on(_ method: String, _ path: String, respond: MockResponse) {
    on(method, path) { _, _ in respond }
  }

  /// Responses in order; the last one repeats.
  func on(_ method: String, _ path: String, sequence: [MockResponse]) {
    on(method, path) { _, n in sequence[min(n, sequence.count) - 1] }
  }

  func requests(_ method: String? = nil, path: String? = nil) -> [RecordedRequest] {
    log.current.filter { (method == nil || $0.method == method) && (path == nil || $0.path == path) }
  }

  var maxConcurrent: Int { concurrency.current.max }

  private func respond(_ request: Request) async throws -> Response {
    let body = try await request.body.collect(upTo: 16 << 20)
    let rec = RecordedRequest(
      method: request.method.rawValue, uri: request.uri.description,
      headers: request.headers.map { ($0.name.rawName, $0.value) }, body: Data(body.readableBytesView))
    log.withLock { $0.append(rec) }
    let key = "\(rec.method) \(rec.path)"
    let n = hits.withLock { h -> Int in
      h[key, default: 0] += 1
      return h[key]!
    }
    concurrency.withLock { c in
      c.now += 1
      c.max = max(c.max, c.now)
    }
    defer { concurrency.withLock { $0.now -= 1 } }
    guard let handler = routes.current[key] else {
      return Self.make(
        .outcome(404, code: "not-found", diagnostics: "no route for \(key)"))
    }
    let r = await handler(rec, n)
    return Self.make(r)
  }

  private static func make(_ r: MockResponse) -> Response {
    var fields = HTTPFields()
    for (k, v) in r.headers {
      if let name = HTTPFields.Element.Name(k) { fields.append(HTTPFields.Element(name: name, value: v)) }
    }
    let status = HTTPResponse.Status(code: r.status)
    switch r.body {
    case .data(let d):
      return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: d)))
    case .chunks(let chunks, let thenFail):
      let total = chunks.reduce(0) { $0 + $1.count } + (thenFail ? 1000 : 0)
      return Response(
        status: status, headers: fields,
        body: ResponseBody(contentLength: total) { writer in
          for c in chunks { try await writer.write(ByteBuffer(bytes: c)) }
          if thenFail { throw MockFailure() }
          try await writer.finish(nil)
        })
    case .repeated(let line, let count):
      return Response(
        status: status, headers: fields,
        body: ResponseBody(contentLength: line.count * count) { writer in
          let perChunk = max(1, (64 << 10) / max(1, line.count))
          var block = ByteBuffer()
          for _ in 0..<perChunk { block.writeBytes(line) }
          var left = count
          while left > 0 {
            if left >= perChunk {
              try await writer.write(block)
              left -= perChunk
            } else {
              var tail = ByteBuffer()
              for _ in 0..<left { tail.writeBytes(line) }
              try await writer.write(tail)
              left = 0
            }
          }
          try await writer.finish(nil)
        })
    case .endless(let line):
      return Response(
        status: status, headers: fields,
        body: ResponseBody { writer in
          var block = ByteBuffer()
          while block.readableBytes < 64 << 10 { block.writeBytes(line) }
          for _ in 0..<65_536 { try await writer.write(block) }
          try await writer.finish(nil)
        })
    case .trickle(let first, let line, let count, let pause):
      return Response(
        status: status, headers: fields,
        body: ResponseBody { writer in
          try await writer.write(ByteBuffer(bytes: first))
          for _ in 0..<count {
            try await Task.sleep(for: pause)
            try await writer.write(ByteBuffer(bytes: line))
          }
          try await writer.finish(nil)
        })
    }
  }
}

/// A bare TCP server for what Hummingbird will not send: a body delimited only by the
/// connection's close. Each connection gets the next scripted raw response (the last repeats),
/// then is closed. Binds 127.0.0.1:0; `stop()` closes the listener.
final class RawHTTPServer: Sendable {
  let port: Int
  private let listener: Int32
  private let responses: [Data]
  /// false: answer after the first bytes arrive (a TLS ClientHello never ends in a blank line).
  private let waitForHead: Bool
  private let served = Locked(0)
  var base: String { "http://127.0.0.1:\(port)" }
  var connections: Int { served.current }

  init(responses: [String], waitForHead: Bool = true) throws {
    self.responses = responses.map { Data($0.utf8) }
    self.waitForHead = waitForHead
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw MockFailure() }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, 16) == 0 else {
      close(fd)
      throw MockFailure()
    }
    var got = sockaddr_in()
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &got) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    port = Int(UInt16(bigEndian: got.sin_port))
    listener = fd
    let thread = Thread { [self] in self.serve() }
    thread.start()
  }

  /// A port nothing listens on (bound, then closed).
  static func closedPort() throws -> Int {
    let s = try RawHTTPServer(responses: [""])
    let p = s.port
    s.stop()
    return p
  }

  func stop() { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }

  private func serve() {
    for _ in 0..<1000 {
      let c = accept(listener, nil, nil)
      guard c >= 0 else { return }
      let n = served.withLock { v -> Int in
        v += 1
        return v
      }
      // Read the request head.
      var head = Data()
      var buf = [UInt8](repeating: 0, count: 4096)
      while !head.contains(Data("\r\n\r\n".utf8)), head.count < 1 << 16 {
        let r = read(c, &buf, buf.count)
        if r <= 0 { break }
        head.append(contentsOf: buf[0..<r])
        if !waitForHead { break }
      }
      let reply = responses[min(n, responses.count) - 1]
      reply.withUnsafeBytes { p in _ = write(c, p.baseAddress, p.count) }
      close(c)
    }
  }
}

/// A temporary folder removed by `cleanup()`.
struct TempDir {
  let path: String
  init() throws {
    path = NSTemporaryDirectory() + "fhirbulk-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }
  func cleanup() { try? FileManager.default.removeItem(atPath: path) }
  func files() -> [String] {
    (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []).sorted()
  }
}

/// Collects events for assertions.
final class EventLog: Sendable {
  private let events = Locked<[BulkEvent]>([])
  var all: [BulkEvent] { events.current }
  @Sendable func record(_ e: BulkEvent) { events.withLock { $0.append(e) } }
  var warnings: [String] { all.compactMap { if case .warning(let w) = $0 { return w } else { return nil } } }
  var information: [String] { all.compactMap { if case .information(let w) = $0 { return w } else { return nil } } }
  var retries: [(String, Duration)] { all.compactMap { if case .retry(let r, let d) = $0 { return (r, d) } else { return nil } } }
}

/// Counts token requests; hands out "tok-1", "tok-2", …
final class CountingTokens: AccessTokenProvider {
  private let n = Locked(0)
  var calls: Int { n.current }
  func token(forceRenew: Bool) async throws -> String {
    let k = n.withLock { v -> Int in
      v += 1
      return v
    }
    return "tok-\(k)"
  }
}

func makeClient(
  _ server: MockServer, method: KickoffMethod = .get, auth: (any AccessTokenProvider)? = StaticTokenProvider("secret-token"),
  events: EventLog = EventLog(), maxAttempts: Int = 3, allowedOrigins: [String] = [],
  downloadPolicy: DownloadPolicy? = nil, clock: any Clock<Duration> = ContinuousClock()
) -> BulkClient {
  BulkClient(
    endpoint: BulkEndpoint(
      baseURL: server.base + "/fhir", kickoffMethod: method, auth: auth, userAgent: "cohort-test/1",
      allowedOrigins: allowedOrigins),
    pollPolicy: .fast(), downloadPolicy: downloadPolicy ?? .fast(maxAttempts: maxAttempts), events: events.record,
    clock: clock)
}

func manifestJSON(
  _ base: String, output: [(String, String, Int?)], deleted: [(String, String)]? = nil, error: [(String, String)] = [],
  requiresAccessToken: Bool = true, next: String? = nil, transactionTime: String = "2024-05-01T10:00:00.123+00:00"
) -> String {
  func item(_ t: String, _ u: String, _ c: Int?) -> String {
    #"{"type":"\#(t)","url":"\#(u)""# + (c.map { #","count":\#($0)"# } ?? "") + "}"
  }
  var s = #"{"transactionTime":"\#(transactionTime)","request":"\#(base)/fhir/Group/g1/$export","requiresAccessToken":\#(requiresAccessToken),"#
  s += #""output":[\#(output.map { item($0.0, $0.1, $0.2) }.joined(separator: ","))],"#
  if let deleted { s += #""deleted":[\#(deleted.map { item($0.0, $0.1, nil) }.joined(separator: ","))],"# }
  s += #""error":[\#(error.map { item($0.0, $0.1, nil) }.joined(separator: ","))]"#
  if let next { s += #","link":[{"relation":"next","url":"\#(next)"}]"# }
  return s + "}"
}
