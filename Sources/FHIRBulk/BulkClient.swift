// The Bulk Data protocol client: capability check, kick-off, polling, DELETE (C13–C42, C62–C64).
import AsyncHTTPClient
import Foundation
import Logging
import NDJSON
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Download behaviour (C43–C49) and bounds (issue 11 item 6). Defaults fit real exports: files
/// of tens of GB that take hours.
public struct DownloadPolicy: Sendable {
  /// Attempts per file for network errors, 5xx and 429 (C48).
  public var maxAttempts: Int
  /// Backoff between attempts (Retry-After wins, clamped by `retryClamp`).
  public var backoff: PollPolicy
  /// NDJSON line cap (C44).
  public var maxLineLength: Int
  /// Redirects followed per file (C46).
  public var maxRedirects: Int
  /// A line count different from the manifest `count` downloads the file once more, then fails
  /// the export (default). False: only a warning (C42).
  public var strictCount: Bool
  /// Emit `downloadProgress` every this many bytes.
  public var progressEvery: Int64
  /// Bytes received for one file (compressed, when the server compresses).
  public var maxFileBytes: Int64
  /// Bytes written for one file after decompression.
  public var maxDecompressedBytes: Int64
  /// Decompressed ÷ compressed bytes, checked once 1 MiB has been decompressed (gzip bombs).
  public var maxCompressionRatio: Int
  /// Wall time for one attempt at one file.
  public var maxDuration: Duration
  /// No byte for this long fails the attempt (retried like a network error). The response head
  /// may take up to `max(stallTimeout, 30 s)`.
  public var stallTimeout: Duration

  public init(
    maxAttempts: Int = 5, backoff: PollPolicy = PollPolicy(initialBackoff: .seconds(1), maxBackoff: .seconds(60)),
    maxLineLength: Int = 64 << 20, maxRedirects: Int = 5, strictCount: Bool = true,
    progressEvery: Int64 = 4 << 20, maxFileBytes: Int64 = 100 << 30, maxDecompressedBytes: Int64 = 256 << 30,
    maxCompressionRatio: Int = 200, maxDuration: Duration = .seconds(12 * 3600), stallTimeout: Duration = .seconds(300)
  ) {
    self.maxAttempts = maxAttempts
    self.backoff = backoff
    self.maxLineLength = maxLineLength
    self.maxRedirects = maxRedirects
    self.strictCount = strictCount
    self.progressEvery = progressEvery
    self.maxFileBytes = maxFileBytes
    self.maxDecompressedBytes = maxDecompressedBytes
    self.maxCompressionRatio = maxCompressionRatio
    self.maxDuration = maxDuration
    self.stallTimeout = stallTimeout
  }

  public static func fast(maxAttempts: Int = 3) -> DownloadPolicy {
    DownloadPolicy(maxAttempts: maxAttempts, backoff: .fast())
  }
}

public final class BulkClient: Sendable {
  public let endpoint: BulkEndpoint
  public let pollPolicy: PollPolicy
  public let downloadPolicy: DownloadPolicy
  let http: HTTPClient
  let emit: @Sendable (BulkEvent) -> Void
  /// Polling and retry waits, the job timeout, download stall and duration limits (tests inject a virtual clock).
  let clock: ClockReader
  private let capabilityCache = Locked<CapabilitySummary?>(nil)
  /// Tokens handed out so far, only to scrub them from any text we pass on.
  private let seenTokens = Locked<Set<String>>([])
  /// Server warnings/information already surfaced (each is said once).
  private let surfaced = Locked<Set<String>>([])

  /// Status, manifest and error bodies are collected up to this size.
  static let smallBodyLimit = 64 << 20
  static let requestTimeout: TimeAmount = .seconds(120)

  /// The default connect timeout: a refused or unroutable server is reported within seconds.
  public static let defaultConnectTimeout: TimeAmount = .seconds(5)
  public static let defaultConnectTimeoutSeconds = 5.0

  /// A process-wide client configured for Bulk Data (`configuration()`). Never shut down.
  public static let defaultHTTPClient: HTTPClient = HTTPClient(
    eventLoopGroupProvider: .singleton, configuration: defaultConfiguration)

  public static var defaultConfiguration: HTTPClient.Configuration { configuration() }

  /// Redirects handled by `BulkClient` itself (so `Authorization` is dropped on a change of
  /// origin whatever the client), no decompression by the HTTP client (file downloads decode gzip
  /// themselves, with `DownloadPolicy`'s size and ratio limits), the given connect timeout and a
  /// 5-minute read idle timeout.
  public static func configuration(connectTimeout: TimeAmount = defaultConnectTimeout) -> HTTPClient.Configuration {
    var c = HTTPClient.Configuration(
      redirectConfiguration: .disallow,
      timeout: .init(connect: connectTimeout, read: .seconds(300)),
      decompression: .disabled)
    c.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 10
    return c
  }

  private static let sharedClients = Locked<[Int64: HTTPClient]>([:])

  /// The process-wide client for a connect timeout in seconds (a server's setting); never shut down.
  public static func sharedHTTPClient(connectTimeoutSeconds seconds: Double) -> HTTPClient {
    sharedHTTPClient(connectTimeout: .milliseconds(Int64((seconds * 1000).rounded())))
  }

  /// A process-wide client per connect timeout (for per-server timeouts); never shut down.
  public static func sharedHTTPClient(connectTimeout: TimeAmount) -> HTTPClient {
    if connectTimeout == defaultConnectTimeout { return defaultHTTPClient }
    return sharedClients.withLock { clients in
      if let c = clients[connectTimeout.nanoseconds] { return c }
      let c = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration(connectTimeout: connectTimeout))
      clients[connectTimeout.nanoseconds] = c
      return c
    }
  }

  /// The HTTP client its requests go through (its connect timeout is the server's).
  public var httpClient: HTTPClient { http }

  public init(
    endpoint: BulkEndpoint, httpClient: HTTPClient = BulkClient.defaultHTTPClient,
    pollPolicy: PollPolicy = PollPolicy(), downloadPolicy: DownloadPolicy = DownloadPolicy(),
    events: @escaping @Sendable (BulkEvent) -> Void = { _ in }, clock: any Clock<Duration> = ContinuousClock()
  ) {
    self.endpoint = endpoint
    self.clock = ClockReader(clock)
    self.http = httpClient
    self.pollPolicy = pollPolicy
    self.downloadPolicy = downloadPolicy
    self.emit = { events($0.escaped) }
  }

  /// Emits each warning/information issue of a server OperationOutcome once per client (issue 15).
  func surfaceWarnings(_ outcome: OperationOutcome, from source: String) {
    for issue in outcome.issue {
      let severity = (issue.severity ?? "").lowercased()
      guard severity == "warning" || severity == "information" else { continue }
      let what = redact([issue.code, issue.message].compactMap { $0 }.joined(separator: ": "))
      let fresh = surfaced.withLock { $0.insert(severity + " " + what).inserted }
      guard fresh else { continue }
      if severity == "warning" {
        emit(.warning("server warning (\(source)): \(what)"))
      } else {
        emit(.information("the server says (\(source)): \(what)"))
      }
    }
  }

  // MARK: Capability

  /// GET `[base]/metadata` and summarise it; the result is kept for the kick-off log record.
  public func capabilities() async throws -> CapabilitySummary {
    let url = endpoint.baseURL + "/metadata"
    let r = try await exchange(.capabilities, method: .GET, url: url, accept: "application/fhir+json")
    guard r.status == 200 else { throw serverError(.capabilities, r) }
    let s = try CapabilitySummary.parse(r.body)
    capabilityCache.withLock { $0 = s }
    return s
  }

  /// The CapabilityStatement summary read last by this client (or handed over with `remember`), if any;
  /// kick-off log records carry its software fields.
  public var knownCapabilities: CapabilitySummary? { capabilityCache.current }

  /// Hands a summary read by another client for the same server to this one (the joiners' client).
  public func remember(_ summary: CapabilitySummary?) {
    guard let summary else { return }
    capabilityCache.withLock { $0 = summary }
  }

  /// Capabilities, then `check` (refuses clearly when something is not declared).
  public func checkSupport(level: ExportLevel, parameters: ExportParameters) async throws -> CapabilitySummary {
    try parameters.validate(method: endpoint.kickoffMethod)
    let s = try await capabilities()
    try s.check(level: level, parameters: parameters, server: URLText.origin(endpoint.baseURL).map { "server \($0)" } ?? "the server")
    return s
  }

  // MARK: Kick-off

  /// `[base]/Group/{id}/$export?…` for GET; without the query for POST (C13, C14, C22).
  public func kickoffURL(level: ExportLevel, parameters: ExportParameters) -> String {
    var url = endpoint.baseURL
    switch level {
    case .group(let id): url += "/Group/" + URLText.encode(id) + "/$export"
    case .patient: url += "/Patient/$export"
    case .system: url += "/$export"
    }
    if endpoint.kickoffMethod == .get {
      let q = parameters.queryString()
      if !q.isEmpty { url += "?" + q }
    }
    return url
  }

  /// The POST body (a FHIR Parameters resource), for `--dry-run`; nil for GET.
  public func kickoffBody(parameters: ExportParameters) -> String? {
    endpoint.kickoffMethod == .post ? String(decoding: parameters.parametersBody(), as: UTF8.self) : nil
  }

  var preferHeader: String { endpoint.lenient ? "respond-async, handling=lenient" : "respond-async" }

  /// Validates, sends the kick-off and returns the status URL verbatim (C23). 429 and 5xx are
  /// retried a bounded number of times (C25, C26); other errors throw `BulkError.server`.
  public func kickoff(level: ExportLevel, parameters: ExportParameters) async throws -> String {
    try parameters.validate(method: endpoint.kickoffMethod)
    let url = kickoffURL(level: level, parameters: parameters)
    let method: HTTPMethod = endpoint.kickoffMethod == .get ? .GET : .POST
    let body = endpoint.kickoffMethod == .post ? parameters.parametersBody() : nil
    var attempt = 0
    while true {
      let r = try await exchange(
        .kickoff, method: method, url: url, accept: "application/fhir+json",
        extra: [("Prefer", preferHeader)], body: body,
        contentType: body == nil ? nil : "application/fhir+json")
      if r.status == 202 {
        guard let location = r.headers.first(name: "Content-Location"), !location.isEmpty else {
          record(url, parameters, r, statusURL: nil)
          throw BulkError.protocolViolation(
            operation: .kickoff, detail: "202 Accepted without a Content-Location header")
        }
        // Absolute: verbatim. Relative: resolved against the kick-off URL (C24).
        guard let statusURL = URLText.resolve(location, against: url) else {
          throw BulkError.protocolViolation(
            operation: .kickoff, detail: "Content-Location '\(location)' is not a usable URL")
        }
        record(url, parameters, r, statusURL: statusURL)
        if let o = OperationOutcome.decode(r.body) { surfaceWarnings(o, from: "kick-off") }
        return statusURL
      }
      if (200..<300).contains(r.status) {
        record(url, parameters, r, statusURL: nil)
        throw BulkError.protocolViolation(
          operation: .kickoff, detail: "HTTP \(r.status) instead of 202 Accepted")
      }
      let error = serverError(.kickoff, r)
      let retryable = r.status == 429 || (500...599).contains(r.status)
      if retryable && attempt < min(pollPolicy.maxTransientRetries, 5) {
        let ra = retryAfter(r)
        let delay = ra.map(pollPolicy.clamp) ?? pollPolicy.nextDelay(retryAfter: nil, attempt: attempt)
        attempt += 1
        emit(.retry(reason: "kick-off answered HTTP \(r.status)", after: delay))
        try await clock.sleep(for: delay)
        continue
      }
      record(url, parameters, r, statusURL: nil)
      throw error
    }
  }

  private func record(_ url: String, _ parameters: ExportParameters, _ r: Reply, statusURL: String?) {
    let cap = capabilityCache.current
    emit(
      .kickoff(
        KickoffRecord(
          url: url, method: endpoint.kickoffMethod, status: r.status, statusURL: statusURL,
          errorBody: r.status >= 400 ? bodyText(r) : nil, parameters: parameters.logRecord,
          softwareName: cap?.softwareName, softwareVersion: cap?.softwareVersion,
          softwareReleaseDate: cap?.softwareReleaseDate, fhirVersion: cap?.fhirVersion)))
  }

  // MARK: Status

  /// One status request (C28–C35).
  public func pollOnce(statusURL: String) async throws -> PollResult {
    do {
      return try await pollDetailed(statusURL: statusURL).result
    } catch let n as NonJSONStatus {
      throw n.error
    }
  }

  /// A 200 from the status URL whose body is not JSON (a proxy's page, a truncated body): retried
  /// a bounded number of times by `waitForManifest` before it is an error.
  struct NonJSONStatus: Error {
    var error: BulkError
  }

  func pollDetailed(statusURL: String) async throws -> (result: PollResult, rawRetryAfter: String?) {
    let r = try await exchange(.status, method: .GET, url: statusURL, accept: endpoint.statusAccept)
    let raw = r.headers.first(name: "Retry-After") ?? r.headers.first(name: "X-RetryAfter")
    switch r.status {
    case 202:
      var partial: Manifest? = nil
      if !r.body.isEmpty, OperationOutcome.decode(r.body) == nil { partial = try? Manifest.parse(r.body) }
      return (.inProgress(progress: r.headers.first(name: "X-Progress"), retryAfter: retryAfter(r), partial: partial), raw)
    case 200:
      guard (try? JSONSerialization.jsonObject(with: r.body, options: [.fragmentsAllowed])) != nil else {
        let what = bodyText(r).map { "'\($0)'" } ?? "an empty body"
        throw NonJSONStatus(
          error: .protocolViolation(operation: .status, detail: "HTTP 200 with \(what) instead of a JSON manifest"))
      }
      var m = try Manifest.parse(r.body)
      m.expires = r.headers.first(name: "Expires")
      return (.complete(m), raw)
    case 404, 410:
      return (.gone, raw)
    case 429:
      return (.throttled(retryAfter: retryAfter(r)), raw)
    case 200..<300:
      throw BulkError.protocolViolation(operation: .status, detail: "HTTP \(r.status) from the status URL")
    default:
      throw serverError(.status, r)
    }
  }

  /// Polls until the manifest is complete, then follows `next` pages and merges them (C64).
  /// `expectedRequest`: the stored kick-off URL, to catch crossed jobs (C41, warning only).
  public func waitForManifest(
    statusURL: String, policy: PollPolicy? = nil, expectedRequest: String? = nil
  ) async throws -> Manifest {
    let policy = policy ?? pollPolicy
    let start = clock.now
    var attempt = 0
    var transient = 0
    var floor: Duration = .zero
    while true {
      if let limit = policy.jobTimeout, clock.since(start) > limit {
        throw BulkError.jobTimeout(seconds: Int(limit.components.seconds))
      }
      let polled: (result: PollResult, rawRetryAfter: String?)
      do {
        polled = try await pollDetailed(statusURL: statusURL)
        transient = 0
      } catch let n as NonJSONStatus {
        transient += 1
        if transient > policy.maxTransientRetries { throw n.error }
        let d = max(policy.nextDelay(retryAfter: nil, attempt: transient - 1), floor)
        emit(.retry(reason: n.error.description, after: d))
        try await clock.sleep(for: d)
        continue
      } catch let e as BulkError where e.isTransient {
        transient += 1
        if transient > policy.maxTransientRetries { throw e }
        let d = max(policy.nextDelay(retryAfter: nil, attempt: transient - 1), floor)
        emit(.retry(reason: e.description, after: d))
        try await clock.sleep(for: d)
        continue
      }
      switch polled.result {
      case .gone:
        throw BulkError.jobGone(statusURL: statusURL)
      case .complete(let first):
        let m = try await followPages(first, policy: policy)
        if let expectedRequest, !m.request.isEmpty, m.request != expectedRequest {
          emit(.warning("manifest request '\(m.request)' differs from the kick-off '\(expectedRequest)'"))
        }
        if m.transactionTimeIsInFuture(skew: PollPolicy.seconds(policy.clockSkew)) {
          emit(
            .warning(
              "the manifest's transactionTime \(m.transactionTime) is in the future (the server's clock is ahead); it must not become the next _since"))
        }
        emit(.statusComplete(transactionTime: m.transactionTime))
        emit(.manifestComplete(ManifestSummary(m)))
        return m
      case .inProgress(let progress, let ra, _):
        let d = max(policy.nextDelay(retryAfter: ra, attempt: attempt), floor)
        if ra == nil { attempt += 1 }
        emit(.statusProgress(xProgress: progress, retryAfter: polled.rawRetryAfter, nextPoll: d))
        try await clock.sleep(for: d)
      case .throttled(let ra):
        let d = max(ra.map(policy.clamp) ?? policy.nextDelay(retryAfter: nil, attempt: attempt), floor)
        attempt += 1
        // C32: keep later polls at least this far apart.
        floor = max(floor, d)
        emit(.retry(reason: "status polling throttled (HTTP 429)", after: d))
        try await clock.sleep(for: d)
      }
    }
  }

  /// Follows `link[next]` until absent, merging pages (C64). Errors on a page are handled as C34.
  func followPages(_ first: Manifest, policy: PollPolicy) async throws -> Manifest {
    var m = first
    var visited: Set<String> = []
    while let next = m.nextURL {
      guard visited.insert(next).inserted, visited.count < 100_000 else {
        throw BulkError.invalidManifest("manifest pages loop back to \(next)")
      }
      var transient = 0
      while true {
        let r: Reply
        do {
          r = try await exchange(.manifestPage, method: .GET, url: next, accept: endpoint.statusAccept)
        } catch let e as BulkError where e.isTransient && transient < policy.maxTransientRetries {
          transient += 1
          let d = policy.nextDelay(retryAfter: nil, attempt: transient - 1)
          emit(.retry(reason: e.description, after: d))
          try await clock.sleep(for: d)
          continue
        }
        if r.status == 200 {
          m.merge(page: try Manifest.parse(r.body))
          break
        }
        let e = serverError(.manifestPage, r)
        if (e.isTransient || r.status == 202) && transient < policy.maxTransientRetries {
          transient += 1
          let d = retryAfter(r).map(policy.clamp) ?? policy.nextDelay(retryAfter: nil, attempt: transient - 1)
          emit(.retry(reason: "manifest page answered HTTP \(r.status)", after: d))
          try await clock.sleep(for: d)
          continue
        }
        throw e
      }
    }
    return m
  }

  // MARK: DELETE

  /// Cancels a job, or tells the server the files may go (C36). 404/405/501 are warnings.
  public func delete(statusURL: String) async throws {
    let r = try await exchange(.delete, method: .DELETE, url: statusURL, accept: "application/fhir+json")
    switch r.status {
    case 200..<300: return
    case 404, 405, 501:
      emit(.warning("the server answered HTTP \(r.status) to DELETE of the export job; nothing to clean up"))
    default:
      throw serverError(.delete, r)
    }
  }

  // MARK: HTTP plumbing

  struct Reply {
    var status: Int
    var headers: HTTPHeaders
    var body: Data
    var url: String
  }

  func retryAfter(_ r: Reply) -> Duration? {
    RetryAfter.delay(
      retryAfter: r.headers.first(name: "Retry-After"), xRetryAfter: r.headers.first(name: "X-RetryAfter"),
      date: r.headers.first(name: "Date"))
  }

  func token(forceRenew: Bool, for op: BulkOperation = .kickoff) async throws -> String? {
    guard let auth = endpoint.auth else { return nil }
    do {
      let t = try await auth.token(forceRenew: forceRenew)
      seenTokens.withLock { _ = $0.insert(t) }
      return t
    } catch let e as BulkError {
      throw e
    } catch is CancellationError {
      throw CancellationError()
    } catch SMARTError.network(let url, let message) {
      throw BulkError.network(operation: op, url: url, message: "token endpoint: " + redact(message))
    } catch {
      throw BulkError.auth(redact(String(describing: error)))
    }
  }

  /// Replaces any token this client handed out with `***`.
  func redact(_ text: String) -> String {
    var out = text
    for t in seenTokens.current where !t.isEmpty { out = out.replacingOccurrences(of: t, with: "***") }
    return out
  }

  /// Body as one short line for messages: OperationOutcomes are summarised elsewhere; HTML is
  /// described, text is cut to 300 characters (C27).
  func bodyText(_ r: Reply) -> String? {
    guard !r.body.isEmpty else { return nil }
    let type = (r.headers.first(name: "Content-Type") ?? "").lowercased()
    if type.contains("html") { return "a non-FHIR \(type.split(separator: ";").first ?? "html") page of \(r.body.count) bytes" }
    var s = String(decoding: r.body.prefix(2000), as: UTF8.self)
    s = s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    if s.count > 300 { s = String(s.prefix(300)) + "…" }
    return redact(s)
  }

  func serverError(_ op: BulkOperation, _ r: Reply) -> BulkError {
    var outcome = OperationOutcome.decode(r.body)
    if var o = outcome {
      for i in o.issue.indices {
        o.issue[i].diagnostics = o.issue[i].diagnostics.map(redact)
        let text = o.issue[i].details?.text.map(redact)
        o.issue[i].details?.text = text
      }
      outcome = o
    }
    return .server(operation: op, status: r.status, outcome: outcome, body: outcome == nil ? bodyText(r) : nil)
  }

  /// Sends a request to the FHIR server and collects a bounded body. Handles one token renewal
  /// on 401 (C10) and redirects (C46).
  func exchange(
    _ op: BulkOperation, method: HTTPMethod, url: String, accept: String, extra: [(String, String)] = [],
    body: Data? = nil, contentType: String? = nil
  ) async throws -> Reply {
    let (response, finalURL) = try await send(
      op, method: method, url: url, accept: accept, extra: extra, body: body, contentType: contentType)
    let collected: ByteBuffer
    do {
      collected = try await response.body.collect(upTo: Self.smallBodyLimit)
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      throw BulkError.network(operation: op, url: url, message: "reading the response: \(Self.describe(error))")
    }
    let decoded = try Self.decodeSmallBody(Data(collected.readableBytesView), headers: response.headers, op: op)
    return Reply(status: Int(response.status.code), headers: response.headers, body: decoded, url: finalURL)
  }

  /// Sends one request with the server's headers (only where credentials may go) and its access token, renewing the
  /// token once when the server answers 401 (C10). The response's body is the caller's to read (a 401 that led to a
  /// renewal is drained here).
  func send(
    _ op: BulkOperation, method: HTTPMethod, url: String, accept: String, extra: [(String, String)] = [],
    body: Data? = nil, contentType: String? = nil
  ) async throws -> (HTTPClientResponse, String) {
    var tok = try await token(forceRenew: false, for: op)
    var renewed = false
    let mayCarryCredentials = endpoint.tokenPolicy.allows(url)
    while true {
      var headers = HTTPHeaders()
      headers.add(name: "Accept", value: accept)
      if mayCarryCredentials { for (k, v) in endpoint.extraHeaders { headers.add(name: k, value: v) } }
      for (k, v) in extra { headers.add(name: k, value: v) }
      if let contentType { headers.add(name: "Content-Type", value: contentType) }
      let (response, finalURL) = try await perform(
        op, method: method, url: url, headers: headers, token: tok, body: body,
        timeout: Self.requestTimeout)
      if response.status.code == 401, endpoint.auth != nil, !renewed {
        _ = try? await response.body.collect(upTo: Self.smallBodyLimit)
        renewed = true
        tok = try await token(forceRenew: true, for: op)
        emit(.retry(reason: "\(op.rawValue) answered HTTP 401; renewed the access token", after: .zero))
        continue
      }
      return (response, finalURL)
    }
  }

  /// Executes one request, following redirects itself: at most `maxRedirects`, and the
  /// `Authorization` header is never sent to another origin (C12, C46).
  func perform(
    _ op: BulkOperation, method: HTTPMethod, url: String, headers: HTTPHeaders, token: String?,
    body: Data?, timeout: TimeAmount
  ) async throws -> (HTTPClientResponse, String) {
    var current = url
    var method = method
    var body = body
    var headers = headers
    var sendToken = token != nil
    let firstOrigin = URLText.origin(url)
    let policy = endpoint.tokenPolicy
    var hops = 0
    while true {
      // The one place a token is attached: it goes only where the policy allows (C12).
      if sendToken, token != nil, !policy.allows(current) {
        throw BulkError.tokenOriginRefused(
          operation: op, host: URLText.hostPort(current) ?? "an unusable URL",
          server: URLText.hostPort(endpoint.baseURL) ?? endpoint.baseURL)
      }
      var req = HTTPClientRequest(url: current)
      req.method = method
      req.headers = headers
      req.headers.replaceOrAdd(name: "User-Agent", value: endpoint.userAgent)
      if sendToken, let token { req.headers.replaceOrAdd(name: "Authorization", value: "Bearer " + token) }
      if let body { req.body = .bytes(ByteBuffer(bytes: body)) }
      let response: HTTPClientResponse
      do {
        response = try await http.execute(req, timeout: timeout)
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        throw BulkError.network(operation: op, url: current, message: Self.describe(error))
      }
      let code = response.status.code
      guard [301, 302, 303, 307, 308].contains(code), let location = response.headers.first(name: "Location")
      else { return (response, current) }
      hops += 1
      guard hops <= downloadPolicy.maxRedirects else {
        throw BulkError.protocolViolation(operation: op, detail: "more than \(downloadPolicy.maxRedirects) redirects from \(url)")
      }
      guard let next = URLText.resolve(location, against: current) else {
        throw BulkError.protocolViolation(operation: op, detail: "redirect to an unusable Location '\(location)'")
      }
      _ = try? await response.body.collect(upTo: 1 << 20)
      if URLText.origin(next) != firstOrigin {
        sendToken = false
        headers.remove(name: "Authorization")
        headers.remove(name: "Cookie")
        for (k, _) in endpoint.extraHeaders { headers.remove(name: k) }
      }
      if code == 303 || ((code == 301 || code == 302) && method == .POST) {
        method = .GET
        body = nil
        headers.remove(name: "Content-Type")
      }
      current = next
    }
  }

  /// Status, manifest and error bodies: decoded when the server gzipped them anyway (only when
  /// the bytes really are gzip, so a body the HTTP client already decoded is left alone).
  static func decodeSmallBody(_ data: Data, headers: HTTPHeaders, op: BulkOperation) throws -> Data {
    let encoding = (headers.first(name: "Content-Encoding") ?? "").lowercased()
    guard encoding.contains("gzip") || encoding.contains("deflate"), data.count >= 2,
      data[data.startIndex] == 0x1F || data[data.startIndex] == 0x78
    else { return data }
    var inflater = GzipInflater()
    var out = Data()
    do {
      try data.withUnsafeBytes { p in
        try inflater.inflate(p) { chunk in
          out.append(contentsOf: chunk)
          if out.count > smallBodyLimit { throw BulkError.protocolViolation(operation: op, detail: "a compressed response larger than \(smallBodyLimit >> 20) MiB") }
        }
      }
      try inflater.finish()
    } catch let e as BulkError {
      throw e
    } catch {
      return data
    }
    return out
  }

  /// One short line for a transport error: what happened, never a raw NIO/AHC dump.
  static func describe(_ error: any Error) -> String {
    if let e = error as? HTTPClientError {
      switch e {
      case .remoteConnectionClosed: return "the server closed the connection"
      case .readTimeout: return "no data for too long (read timeout)"
      case .connectTimeout: return "connection timed out"
      case .deadlineExceeded: return "no response in time"
      case .bodyLengthMismatch: return "body shorter than Content-Length"
      case .tlsHandshakeTimeout: return "TLS handshake timed out"
      case .getConnectionFromPoolTimeout: return "no connection became available in time"
      case .cancelled: return "cancelled"
      default: return oneLine(String(describing: e))
      }
    }
    if let e = error as? IOError { return describe(errno: e.errnoCode) }
    if let e = error as? ChannelError {
      switch e {
      case .connectTimeout: return "connection timed out"
      case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed: return "the connection was closed"
      default: return oneLine(String(describing: e))
      }
    }
    let typeName = String(reflecting: type(of: error))
    if typeName.hasPrefix("NIOSSL.") { return "TLS failure: " + tlsReason(String(describing: error)) }
    if typeName.hasSuffix("NIOConnectionError") {
      // NIOPosix's connection error: DNS failures and the per-address connect errors.
      var dns = false
      var first: String?
      for child in Mirror(reflecting: error).children {
        switch child.label {
        case "dnsAError", "dnsAAAAError":
          let m = Mirror(reflecting: child.value)
          if m.displayStyle == .optional, !m.children.isEmpty { dns = true }
        case "connectionErrors":
          for failure in Mirror(reflecting: child.value).children {
            for part in Mirror(reflecting: failure.value).children where part.label == "error" {
              if first == nil, let inner = part.value as? any Error { first = describe(inner) }
            }
          }
        default: break
        }
      }
      if let first { return first }
      if dns { return "the host name could not be resolved" }
      return "cannot connect"
    }
    if typeName.contains("SocketAddressError") || typeName.contains("GetaddrinfoError") {
      return "the host name could not be resolved"
    }
    return oneLine(String(describing: error))
  }

  static func describe(errno code: Int32) -> String {
    switch code {
    case ECONNREFUSED: return "connection refused"
    case ECONNRESET: return "connection reset by the server"
    case ETIMEDOUT: return "connection timed out"
    case EHOSTUNREACH: return "host unreachable"
    case ENETUNREACH: return "network unreachable"
    case EPIPE: return "the connection was closed"
    default: return oneLine(String(cString: strerror(code)))
    }
  }

  /// The BoringSSL reason (e.g. CERTIFICATE_VERIFY_FAILED) or a short form of the NIOSSL error.
  static func tlsReason(_ text: String) -> String {
    if text.contains("failedToValidateHostname") || text.lowercased().contains("hostname") {
      return "the certificate does not match the host name"
    }
    var reasons: [String] = []
    var current = ""
    for ch in text + " " {
      if ch.isUppercase || ch == "_" || (ch.isNumber && !current.isEmpty) {
        current.append(ch)
      } else {
        if current.count >= 6 && current.contains("_") { reasons.append(current) }
        current = ""
      }
    }
    if let r = reasons.last {
      switch r {
      case "CERTIFICATE_VERIFY_FAILED": return "the server's certificate is not trusted (CERTIFICATE_VERIFY_FAILED)"
      case "WRONG_VERSION_NUMBER": return "the server does not speak TLS on this port (WRONG_VERSION_NUMBER)"
      default: return r
      }
    }
    return oneLine(text)
  }

  static func oneLine(_ text: String, max: Int = 200) -> String {
    var s = text.split(whereSeparator: \.isNewline).joined(separator: " ")
    if s.count > max { s = String(s.prefix(max)) + "…" }
    return s
  }
}
