import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// Dropping a connection mid-file (fault): thrown from the body writer after part of the file.
struct SimulatedDrop: Error {}

final class RequestLog: Sendable {
  private let entries = Mutex<[RecordedRequest]>([])
  func append(_ r: RecordedRequest) { entries.withLock { $0.append(r) } }
  var all: [RecordedRequest] { entries.withLock { $0 } }
}

/// Everything a request handler needs; shared by all requests.
final class ServerCore: Sendable {
  let config: BulkServerConfiguration
  let state: ServerState
  let dataset: Dataset
  let types: [String]
  let log = RequestLog()
  /// Requests received by the other-origin listener (the `otherOrigin…` faults).
  let otherLog = RequestLog()
  let smartClients: [String: [RegisteredKey]]
  private let base = Mutex<String>("")
  private let otherBase = Mutex<String?>(nil)

  init(config: BulkServerConfiguration, state: ServerState, dataset: Dataset, types: [String], smartClients: [String: [RegisteredKey]]) {
    self.config = config
    self.state = state
    self.dataset = dataset
    self.types = types
    self.smartClients = smartClients
  }

  var baseURL: String {
    get { base.withLock { $0 } }
    set { base.withLock { $0 = newValue } }
  }
  /// The other origin's base URL, once its listener runs.
  var otherBaseURL: String? {
    get { otherBase.withLock { $0 } }
    set { otherBase.withLock { $0 = newValue } }
  }
  /// Where the `otherOrigin…` faults point: the second listener, or a closed port when it could not start.
  var otherOriginBase: String { otherBaseURL ?? "http://\(config.otherOriginHost):9" }
  var tokenURL: String { baseURL + "/auth/token" }
  var authEnabled: Bool {
    if case .none = config.auth { return false }
    return true
  }

  func statusURL(_ job: Int, base: String? = nil) -> String {
    let baseURL = base ?? self.baseURL
    return switch config.flavor {
    case .standard: "\(baseURL)/$export-status/\(job)"
    case .netsmart: "\(baseURL)/$export-poll-status?_id=\(job)"
    }
  }

  static func binaryID(job: Int, name: String) -> String {
    let stem = name.hasSuffix(".ndjson") ? String(name.dropLast(7)) : name
    return "\(job)-" + stem.replacingOccurrences(of: ".", with: "-")
  }

  func fileURL(job: Int, name: String, generation: Int?, base: String? = nil) -> String {
    let baseURL = base ?? self.baseURL
    let v = generation.map { "?v=\($0)" } ?? ""
    switch config.flavor {
    case .standard: return "\(baseURL)/files/\(job)/\(URLTools.percentEncode(name))\(v)"
    case .netsmart: return "\(baseURL)/Binary/\(ServerCore.binaryID(job: job, name: name))/$binary-access-read\(v)"
    }
  }
}

struct Reply {
  var status: Int
  var headers: [(String, String)] = []
  var body: ResponseBody = .init()

  static func json(_ status: Int, _ value: JSON, contentType: String = "application/fhir+json", headers: [(String, String)] = [])
    -> Reply
  {
    let bytes = value.serialized()
    return Reply(
      status: status, headers: [("Content-Type", contentType)] + headers,
      body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
  }

  static func error(_ e: RequestError, headers: [(String, String)] = []) -> Reply {
    json(e.status, OperationOutcome.make(code: e.code, diagnostics: e.diagnostics), headers: headers)
  }

  var response: Response {
    var fields = HTTPFields()
    for (k, v) in headers {
      if let name = HTTPField.Name(k) { fields.append(HTTPField(name: name, value: v)) }
    }
    return Response(status: HTTPResponse.Status(code: status), headers: fields, body: body)
  }
}

struct BulkResponder: HTTPResponder {
  typealias Context = BasicRequestContext
  let core: ServerCore
  /// Where this listener records requests (`core.log`, or `core.otherLog` on the other origin).
  let log: RequestLog

  func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
    var headers: [String: String] = [:]
    for f in request.headers {
      let name = f.name.canonicalName.lowercased()
      headers[name] = headers[name].map { $0 + ", " + f.value } ?? f.value
    }
    log.append(RecordedRequest(method: request.method.rawValue, path: request.uri.string, headers: headers))
    var request = request
    // Echo X-Request-ID; the Netsmart flavor also answers X-Correlation-Id (C72).
    var echo: [(String, String)] = []
    if let id = request.headers[HTTPField.Name("X-Request-ID")!] {
      echo.append(("X-Request-ID", id))
      if core.config.flavor == .netsmart { echo.append(("X-Correlation-Id", id)) }
    }
    var response = await reply(&request)
    for (k, v) in echo {
      if let name = HTTPField.Name(k) { response.headers[name] = v }
    }
    return response
  }

  func reply(_ request: inout Request) async -> Response {
    do {
      return try await route(&request).response
    } catch let e as RequestError {
      let e = await hostile(e)
      return Reply.error(e, headers: e.status == 401 ? [("WWW-Authenticate", "Bearer")] : []).response
    } catch let e as RequestErrorWithHeaders {
      var reply = Reply.error(await hostile(e.error), headers: e.headers)
      if let s = e.status { reply.status = s }
      return reply.response
    } catch let e as TokenError {
      return Reply.json(e.status, e.json, contentType: "application/json", headers: [("Cache-Control", "no-store")]).response
    } catch {
      return Reply.error(await hostile(.server("internal error: \(error)"))).response
    }
  }

  /// The `escapes` fault: terminal escape sequences at the start of the diagnostics.
  func hostile(_ e: RequestError) async -> RequestError {
    await core.state.faults.escapes ? e.prefixed(Faults.escapeText) : e
  }

  // MARK: routing

  func route(_ request: inout Request) async throws -> Reply {
    let raw = request.uri.string
    let pathPart = String(raw.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    let query = raw.contains("?") ? String(raw[raw.index(after: raw.firstIndex(of: "?")!)...]) : nil
    let segments = pathPart.split(separator: "/").map { URLTools.percentDecode(String($0)) }
    let items = URLTools.queryItems(query)
    let method = request.method

    func only(_ allowed: HTTPRequest.Method...) throws(RequestError) {
      guard allowed.contains(method) else {
        throw .methodNotAllowed("\(method.rawValue) is not allowed on \(pathPart) (use \(allowed.map(\.rawValue).joined(separator: " or ")))")
      }
    }

    switch segments.count {
    case 1 where segments[0] == "metadata":
      try only(.get)
      return Reply.json(200, capabilityStatement())
    case 2 where segments[0] == ".well-known" && segments[1] == "smart-configuration":
      try only(.get)
      guard case .smart = core.config.auth else { throw RequestError.notFound("this server does not use SMART authorization") }
      return Reply.json(200, smartConfiguration(), contentType: "application/json")
    case 2 where segments[0] == "auth" && segments[1] == "token":
      try only(.post)
      return try await token(&request)
    case 2 where segments[0] == "$admin" && segments[1] == "advance":
      try only(.post)
      let days = items.first { $0.0 == "days" }.map(\.1) ?? "1"
      guard let n = Int(days), (1...3650).contains(n) else { throw RequestError.badRequest("days must be a whole number from 1 to 3650") }
      var rate: Double?
      if let text = items.first(where: { $0.0 == "rate" })?.1 {
        guard let r = Double(text), r > 0, r <= 1 else {
          throw RequestError.badRequest("rate must be a number above 0 and at most 1 (the fraction of the resources to change)")
        }
        rate = r
      }
      let report = try await core.state.advance(days: n, seed: core.dataset.generator.seed, rate: rate)
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      return Reply(
        status: 200, headers: [("Content-Type", "application/json")],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(report))))
    case 1 where segments[0] == "$export":
      try only(.get, .post)
      return try await kickoff(&request, level: .system, items: items)
    case 2 where segments[0] == "Patient" && segments[1] == "$export":
      try only(.get, .post)
      return try await kickoff(&request, level: .patient, items: items)
    case 3 where segments[0] == "Group" && segments[2] == "$export":
      try only(.get, .post)
      guard let g = GroupKind(rawValue: segments[1]) else { throw RequestError.notFound(unknownGroup(segments[1])) }
      return try await kickoff(&request, level: .group(g), items: items)
    case 2 where segments[0] == "Group":
      try only(.get)
      try await authorize(request)
      guard let g = GroupKind(rawValue: segments[1]) else { throw RequestError.notFound(unknownGroup(segments[1])) }
      return try await groupRead(g)
    case 1 where segments[0] == "Group":
      try only(.get)
      try await authorize(request)
      return groupSearch(items)
    case 2 where segments[0] == "$export-status" && core.config.flavor == .standard:
      try only(.get, .delete)
      return try await status(request, jobText: segments[1], items: items)
    case 1 where segments[0] == "$export-poll-status" && core.config.flavor == .netsmart:
      try only(.get, .delete)
      guard let id = items.first(where: { $0.0 == "_id" })?.1 else {
        throw RequestError.badRequest("$export-poll-status needs an _id parameter")
      }
      return try await status(request, jobText: id, items: items)
    case 3 where segments[0] == "files" && core.config.flavor == .standard:
      try only(.get)
      return try await file(request, jobText: segments[1], name: segments[2], items: items)
    case 3 where segments[0] == "Binary" && segments[2] == "$binary-access-read" && core.config.flavor == .netsmart:
      try only(.get)
      let binary = segments[1]
      guard let dash = binary.firstIndex(of: "-") else { throw RequestError.notFound("no Binary '\(binary)'") }
      let jobText = String(binary[..<dash])
      guard let id = Int(jobText), let job = await core.state.job(id), case .complete(let files) = job.phase,
        let f = files.first(where: { ServerCore.binaryID(job: id, name: $0.name) == binary })
      else { throw RequestError.notFound("no Binary '\(binary)' (the export may have been deleted)") }
      return try await file(request, jobText: jobText, name: f.name, items: items)
    default:
      throw RequestError.notFound("unknown path \(pathPart); see \(core.baseURL)/metadata")
    }
  }

  func unknownGroup(_ id: String) -> String {
    "Group '\(id)' is not known (known: \(GroupKind.allCases.map(\.rawValue).joined(separator: ", ")))"
  }

  // MARK: auth

  func bearer(_ request: Request) -> String? {
    guard let value = request.headers[.authorization] else { return nil }
    let parts = value.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
    return String(parts[1]).trimmingCharacters(in: .whitespaces)
  }

  /// Checks the access token; returns the scopes (nil: everything).
  @discardableResult
  func authorize(_ request: Request) async throws -> [String]? {
    switch core.config.auth {
    case .none: return nil
    case .bearer(let expected):
      guard let token = bearer(request) else { throw RequestError.unauthorized("missing Authorization: Bearer token") }
      guard token == expected else { throw RequestError.unauthorized("the access token is not valid") }
      return nil
    case .smart:
      guard let token = bearer(request) else { throw RequestError.unauthorized("missing Authorization: Bearer token") }
      guard let issued = await core.state.lookupToken(token) else {
        throw RequestError.unauthorized("the access token is not valid")
      }
      guard issued.expires > core.state.tokenClock.now else {
        throw RequestError.unauthorized("the access token has expired; request a new one")
      }
      return issued.scopes
    }
  }

  func token(_ request: inout Request) async throws -> Reply {
    guard case .smart = core.config.auth else { throw RequestError.notFound("this server does not issue tokens") }
    let body: ByteBuffer
    do { body = try await request.collectBody(upTo: 1 << 20) } catch {
      throw TokenError(error: "invalid_request", description: "the token request body could not be read (at most 1 MB)")
    }
    let form = Dictionary(
      URLTools.queryItems(String(buffer: body)), uniquingKeysWith: { a, _ in a })
    guard form["grant_type"] == "client_credentials" else {
      throw TokenError(error: "unsupported_grant_type", description: "grant_type must be client_credentials")
    }
    guard form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" else {
      throw TokenError(
        error: "invalid_request", description: "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    }
    guard let assertion = form["client_assertion"], !assertion.isEmpty else {
      throw TokenError(error: "invalid_request", description: "client_assertion is missing")
    }
    let now = Int(Date().timeIntervalSince1970)
    let verified = try ClientAssertion.verify(assertion, clients: core.smartClients, tokenURL: core.tokenURL, now: now)
    guard await core.state.useJTI(verified.jti, exp: verified.exp) else {
      throw TokenError(error: "invalid_grant", description: "client_assertion jti was already used")
    }
    let requested = (form["scope"] ?? "").split(separator: " ").map(String.init)
    guard !requested.isEmpty else { throw TokenError(error: "invalid_scope", description: "no scope was requested") }
    let granted = ClientAssertion.grant(requested: requested, allowed: core.config.allowedScopes)
    guard !granted.isEmpty else {
      throw TokenError(
        error: "invalid_scope",
        description: "none of the requested scopes (\(requested.joined(separator: " "))) is allowed; allowed: \(core.config.allowedScopes.joined(separator: " "))")
    }
    let token = await core.state.issueToken(scopes: granted, lifetime: core.config.tokenLifetime)
    return Reply.json(
      200,
      .object([
        ("access_token", .string(token)), ("token_type", .string("bearer")), ("expires_in", .int(core.config.tokenLifetime)),
        ("scope", .string(granted.joined(separator: " "))),
      ]), contentType: "application/json", headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
  }

  // MARK: kick-off

  func kickoff(_ request: inout Request, level: ExportLevel, items: [(String, String)]) async throws -> Reply {
    let scopes = try await authorize(request)
    if let accept = request.headers[.accept], !accept.isEmpty {
      let ok = accept.split(separator: ",").contains { part in
        let v = part.split(separator: ";")[0].trimmingCharacters(in: .whitespaces).lowercased()
        return v == "application/fhir+json" || v == "application/json" || v == "*/*" || v == "application/*"
      }
      guard ok else { throw RequestError.badRequest("Accept must be application/fhir+json (got '\(accept)')") }
    }
    let prefer = request.headers[HTTPField.Name("Prefer")!] ?? ""
    guard prefer.lowercased().contains("respond-async") else {
      throw RequestError.badRequest("the kick-off needs the header Prefer: respond-async")
    }
    let lenient = prefer.lowercased().contains("handling=lenient")
    if await core.state.takeKickoff429() {
      let wait = String(core.config.retryAfterSeconds)
      var h = [("Retry-After", wait)]
      if core.config.flavor == .netsmart { h.append(("X-RetryAfter", wait)) }
      throw RequestErrorWithHeaders.make(.tooManyRequests("an export is already running; retry later", retryAfter: core.config.retryAfterSeconds), h)
    }
    var params = items
    let isPost = request.method == .post
    if isPost {
      let body: ByteBuffer
      do { body = try await request.collectBody(upTo: 4 << 20) } catch {
        throw RequestError.badRequest("the POST body could not be read (at most 4 MB): \(error)")
      }
      if body.readableBytes > 0 {
        params += try parametersBody(Array(buffer: body))
      }
    }
    let clock = await core.state.clock
    var p = try ExportParameters.parse(
      level: level, items: params, isPost: isPost, lenient: lenient, knownTypes: core.types, now: clock)
    let faults = await core.state.faults
    if faults.ignorePatient, let ids = p.patients {
      p.patients = nil
      p.warnings.append(
        "the patient parameter was ignored (\(ids.count) patient reference\(ids.count == 1 ? "" : "s")): this server does not support patient= and exported every patient of the request")
    }
    if let scopes, let readable = ClientAssertion.readableTypes(scopes) {
      let explicit = params.contains { $0.0 == "_type" }
      let denied = p.types.filter { !readable.contains($0) }
      if explicit && !denied.isEmpty {
        throw RequestError.forbidden("the access token's scopes do not cover \(denied.joined(separator: ", "))")
      }
      p.types = p.types.filter { readable.contains($0) }
      guard !p.types.isEmpty else { throw RequestError.forbidden("the access token's scopes cover no exported resource type") }
    }
    // `request` in the manifest: the kick-off URL without POST parameters.
    let requestURL = core.baseURL + request.uri.string
    let job = try await core.state.beginJob(
      request: requestURL, requiresToken: core.authEnabled, since: p.since, types: p.types)
    let dataset = core.dataset
    let content = ContentFaults(faults)
    let perFile = core.config.resourcesPerFile
    let state = core.state
    let frozen = p
    let cancel = job.cancel
    let delay = core.config.exportStartDelayMilliseconds
    Task.detached {
      do {
        if delay > 0 { try await Task.sleep(nanoseconds: UInt64(delay) * 1_000_000) }
        let files = try await dataset.pool.read { db in
          try ExportWriter.run(
            db, dataset: dataset, params: frozen, transactionTime: job.transactionTime, directory: job.directory,
            resourcesPerFile: perFile, faults: content, isCancelled: { cancel.isCancelled })
        }
        await state.finishJob(job.id, .complete(ExportWriter.ordered(files, types: frozen.types)))
      } catch {
        await state.finishJob(job.id, .failed("export failed: \(error)"))
      }
    }
    let outcome = OperationOutcome.make(
      severity: "information", code: "informational",
      diagnostics: (faults.escapes ? Faults.escapeText : "") + "export job \(job.id) accepted; poll the Content-Location URL")
    let location = faults.otherOriginStatus ? core.statusURL(job.id, base: core.otherOriginBase) : core.statusURL(job.id)
    return Reply.json(202, outcome, headers: [("Content-Location", location)])
  }

  /// Reads a Parameters resource into (name, value) pairs.
  func parametersBody(_ bytes: [UInt8]) throws(RequestError) -> [(String, String)] {
    let json: JSON
    do { json = try JSON.parse(bytes) } catch { throw .badRequest("the POST body is not JSON: \(error)") }
    guard json["resourceType"]?.stringValue == "Parameters" else {
      throw .badRequest("the POST body must be a FHIR Parameters resource")
    }
    var out: [(String, String)] = []
    for p in json["parameter"]?.arrayValue ?? [] {
      guard let name = p["name"]?.stringValue else { throw .badRequest("a Parameters entry has no name") }
      var value: String? = nil
      for (k, v) in p.objectValue ?? [] where k.hasPrefix("value") {
        if k == "valueReference" {
          value = v["reference"]?.stringValue
        } else if let s = v.stringValue {
          value = s
        } else if case .bool(let b) = v {
          value = b ? "true" : "false"
        } else if case .number(let n) = v {
          value = n
        }
      }
      guard let value else { throw .badRequest("Parameters entry '\(name)' has no usable value[x]") }
      out.append((name, value))
    }
    return out
  }

  // MARK: status

  func status(_ request: Request, jobText: String, items: [(String, String)]) async throws -> Reply {
    guard let id = Int(jobText), let job = await core.state.job(id) else {
      throw RequestError.notFound("no export job '\(jobText)' (it was deleted, or never existed)")
    }
    if job.requiresToken || core.authEnabled { try await authorize(request) }
    if request.method == .delete {
      if await core.state.faults.deleteForbidden {
        throw RequestError.forbidden("this client may not delete export jobs; they expire after an hour")
      }
      _ = await core.state.deleteJob(id)
      return Reply.json(
        202, OperationOutcome.make(severity: "information", code: "informational", diagnostics: "export job \(id) deleted"))
    }
    let page = items.first { $0.0 == "page" }.flatMap { Int($0.1) } ?? 1
    var retry = [("Retry-After", String(core.config.retryAfterSeconds))]
    if core.config.flavor == .netsmart { retry.append(("X-RetryAfter", String(core.config.retryAfterSeconds))) }
    if page == 1 {
      switch await core.state.poll(id, pollsBeforeComplete: core.config.pollsBeforeComplete) {
      case .gone: throw RequestError.notFound("no export job '\(jobText)'")
      case .transient:
        throw RequestErrorWithHeaders.make(.transient("temporary failure while checking the export; retry"), retry)
      case .throttled:
        throw RequestErrorWithHeaders.make(
          .tooManyRequests("too many status requests; wait as Retry-After says", retryAfter: core.config.retryAfterSeconds), retry)
      case .pending(let n, let of):
        return Reply(status: 202, headers: [("X-Progress", "in progress (step \(n) of \(of))")] + retry)
      case .ready: break
      }
    }
    // Wait (briefly) for the files; long exports keep answering 202.
    var current = job
    let deadline = Date().addingTimeInterval(5)
    while true {
      guard let j = await core.state.job(id) else { throw RequestError.notFound("no export job '\(jobText)'") }
      current = j
      if case .running = j.phase, Date() < deadline {
        try await Task.sleep(nanoseconds: 5_000_000)
        continue
      }
      break
    }
    switch current.phase {
    case .running:
      return Reply(status: 202, headers: [("X-Progress", "writing files")] + retry)
    case .failed(let why):
      throw RequestError.server(why)
    case .complete(let files):
      if page == 1, await core.state.takeNotJSON(id) {
        let html = "<html><head><title>Service Unavailable</title></head><body><h1>Please try again</h1></body></html>\n"
        return Reply(
          status: 200, headers: [("Content-Type", "text/html; charset=utf-8")],
          body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
      }
      let generation = page == 1 ? await core.state.countManifest(id) : max(1, current.manifestsServed)
      let faults = await core.state.faults
      // The files stay until the job is deleted; tell caches the manifest is good for an hour.
      let expires = HTTPDate.format(Date().addingTimeInterval(3600))
      return Reply.json(
        200, manifest(current, files: files, page: page, generation: generation, faults: faults), contentType: "application/json",
        headers: [("Expires", expires)])
    }
  }

  func manifest(_ job: JobRuntime, files: [ExportFile], page: Int, generation: Int, faults: Faults) -> JSON {
    let expired = faults.effectiveExpiredLinks
    let gen: Int? = expired > 0 ? generation : nil
    // otherOriginRefresh: the links of refreshed manifests (after the expired ones) are on the other origin.
    let fileBase: String? = faults.otherOriginRefresh && generation > expired ? core.otherOriginBase : nil
    func entry(_ f: ExportFile) -> JSON {
      .object([
        ("type", .string(f.type)), ("url", .string(core.fileURL(job: job.id, name: f.name, generation: gen, base: fileBase))),
        ("count", .int(f.count)),
      ])
    }
    var outputs = files.filter { $0.kind == "output" }
    var isLast = true
    let size = faults.effectivePageSize
    if size > 0 {
      let pages = max(1, (outputs.count + size - 1) / size)
      let start = min(outputs.count, (page - 1) * size)
      outputs = Array(outputs[start..<min(outputs.count, start + size)])
      isLast = page >= pages
    }
    // The fault's time is a day after both the server's (virtual) clock and the real one: in the future for any client.
    let transactionTime =
      faults.futureTransactionTime
      ? max(job.transactionTime, Int(Date().timeIntervalSince1970)) + 86400 : job.transactionTime
    var members: [(String, JSON)] = [
      ("transactionTime", .string(Instant.format(transactionTime))),
      ("request", .string(job.request)),
      ("requiresAccessToken", .bool(job.requiresToken)),
    ]
    if !faults.noOutput { members.append(("output", .array(outputs.map(entry)))) }
    if job.since != nil && !faults.noDeleted {
      members.append(("deleted", .array(isLast ? files.filter { $0.kind == "deleted" }.map(entry) : [])))
    }
    members.append(("error", .array(isLast ? files.filter { $0.kind == "error" }.map(entry) : [])))
    if !isLast {
      let sep = core.config.flavor == .netsmart ? "&" : "?"
      let base = faults.otherOriginNext ? core.otherOriginBase : nil
      members.append(
        ("link", .array([.object([("relation", .string("next")), ("url", .string(core.statusURL(job.id, base: base) + "\(sep)page=\(page + 1)"))])])))
    }
    return .object(members)
  }

  // MARK: files

  func file(_ request: Request, jobText: String, name: String, items: [(String, String)]) async throws -> Reply {
    guard let id = Int(jobText), let job = await core.state.job(id) else {
      throw RequestError.notFound("no export job '\(jobText)' (it was deleted, or never existed)")
    }
    guard case .complete(let files) = job.phase, let f = files.first(where: { $0.name == name }) else {
      throw RequestError.notFound("export job \(jobText) has no file '\(name)'")
    }
    if job.requiresToken { try await authorize(request) }
    let faults = await core.state.faults
    let expired = faults.effectiveExpiredLinks
    if expired > 0 {
      let v = items.first { $0.0 == "v" }.flatMap { Int($0.1) } ?? 0
      if v <= expired {
        throw RequestError.gone("this file link has expired; poll the status URL again for fresh links")
      }
    }
    let earlier = await core.state.countFileRequest("\(id)/\(name)")
    if earlier < faults.fileErrors {
      throw RequestErrorWithHeaders.make(.transient("temporary failure reading \(name); retry"), [("Retry-After", "1")], status: 503)
    }
    // Which request fault (if any) this request gets: the counts apply one after the other.
    var bound = faults.fileErrors
    func next(_ n: Int) -> Bool {
      defer { bound += n }
      return earlier >= bound && earlier < bound + n
    }
    let drop = next(faults.dropConnections)
    let truncate = next(faults.truncatedBody)
    let endless = next(faults.endlessBody)
    let trickle = next(faults.tricklingBody)
    let path = job.directory + "/" + f.name
    let size = f.bytes
    if truncate { return truncatedFile(path: path, size: size) }
    if endless { return endlessFile(path: path) }
    if trickle { return tricklingFile(path: path, size: size) }
    let gzip = faults.gzip && HTTPNegotiation.acceptsGzip(request.headers[.acceptEncoding])
    var headers = [("Content-Type", "application/fhir+ndjson"), ("Vary", "Accept-Encoding")]
    if gzip { headers.append(("Content-Encoding", "gzip")) }
    let body = ResponseBody(contentLength: gzip ? nil : size) { writer in
      let fd = open(path, O_RDONLY)
      guard fd >= 0 else { throw BulkServerError.io(path: path, reason: String(cString: strerror(errno))) }
      defer { close(fd) }
      let compressor = gzip ? try GzipStream() : nil
      var sent = 0
      var chunk = [UInt8](repeating: 0, count: 256 * 1024)
      while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw BulkServerError.io(path: path, reason: String(cString: strerror(errno))) }
        var piece = Array(chunk[0..<max(n, 0)])
        if drop && sent + piece.count >= size / 2 {
          piece = Array(piece.prefix(max(0, size / 2 - sent)))
          if let compressor { piece = compressor.compress(piece, finish: false) }
          if !piece.isEmpty { try await writer.write(ByteBuffer(bytes: piece)) }
          throw SimulatedDrop()
        }
        sent += piece.count
        if let compressor { piece = compressor.compress(piece, finish: n == 0) }
        if !piece.isEmpty { try await writer.write(ByteBuffer(bytes: piece)) }
        if n == 0 { break }
      }
      try await writer.finish(nil)
    }
    return Reply(status: 200, headers: headers, body: body)
  }

  /// `truncatedBody`: an HTTP/1.0-style body (no Content-Length, no chunking, ended by closing the
  /// connection) holding the whole lines of the file's first half.
  func truncatedFile(path: String, size: Int) -> Reply {
    let headers = [
      ("Content-Type", "application/fhir+ndjson"), ("Vary", "Accept-Encoding"), (CloseDelimited.marker, "1"),
    ]
    let body = ResponseBody(contentLength: nil) { writer in
      guard let input = FileHandle(forReadingAtPath: path) else { throw BulkServerError.io(path: path, reason: "cannot open") }
      defer { try? input.close() }
      let data = try input.read(upToCount: max(1, size / 2)) ?? Data()
      var bytes = [UInt8](data)
      if let lastNewline = bytes.lastIndex(of: 0x0A) {
        bytes = Array(bytes[...lastNewline])
      } else {
        bytes = []
      }
      if !bytes.isEmpty { try await writer.write(ByteBuffer(bytes: bytes)) }
      throw SimulatedDrop()  // closes the connection: the client sees the end of a close-delimited body
    }
    return Reply(status: 200, headers: headers, body: body)
  }

  /// `endlessBody`: the file's lines again and again, chunked, until the client goes away.
  func endlessFile(path: String) -> Reply {
    let body = ResponseBody(contentLength: nil) { writer in
      var chunk = [UInt8](repeating: 0, count: 64 * 1024)
      while true {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw BulkServerError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        while true {
          try Task.checkCancellation()
          let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
          if n < 0 { throw BulkServerError.io(path: path, reason: String(cString: strerror(errno))) }
          if n == 0 { break }
          try await writer.write(ByteBuffer(bytes: chunk[0..<n]))
        }
      }
    }
    return Reply(status: 200, headers: [("Content-Type", "application/fhir+ndjson"), ("Vary", "Accept-Encoding")], body: body)
  }

  /// `tricklingBody`: the whole file (with its Content-Length), `Faults.trickleBytesPerSecond` bytes per second.
  func tricklingFile(path: String, size: Int) -> Reply {
    let body = ResponseBody(contentLength: size) { writer in
      guard let input = FileHandle(forReadingAtPath: path) else { throw BulkServerError.io(path: path, reason: "cannot open") }
      defer { try? input.close() }
      let perTick = max(1, Faults.trickleBytesPerSecond / 4)
      while let piece = try input.read(upToCount: perTick), !piece.isEmpty {
        try await writer.write(ByteBuffer(bytes: piece))
        try await Task.sleep(nanoseconds: 250_000_000)
      }
      try await writer.finish(nil)
    }
    return Reply(status: 200, headers: [("Content-Type", "application/fhir+ndjson"), ("Vary", "Accept-Encoding")], body: body)
  }

  // MARK: Group

  /// The Group with its members at the current clock. Members are streamed through a temporary
  /// file, so a Group of 100,000 patients costs no more memory than one of 40.
  func groupRead(_ g: GroupKind) async throws -> Reply {
    let dataset = core.dataset
    let noMember = await core.state.faults.groupNoMember
    let clock = await core.state.clock
    let path = core.state.filesRoot + "/group-\(UUID().uuidString).part"
    let count = try await dataset.pool.read { db -> Int in
      guard FileManager.default.createFile(atPath: path, contents: nil), let out = FileHandle(forWritingAtPath: path) else {
        throw BulkServerError.io(path: path, reason: "cannot create a temporary file")
      }
      defer { try? out.close() }
      var n = 0
      var buffer: [UInt8] = []
      try dataset.forEachPatient(db, at: clock, includeSupporting: false) { _, merged in
        guard g.contains(merged), let pid = merged.patientID else { return }
        if n > 0 { buffer.append(UInt8(ascii: ",")) }
        JSON.object([("entity", .object([("reference", .string("Patient/" + pid))]))]).write(to: &buffer)
        n += 1
        if buffer.count > 1 << 16 {
          try out.write(contentsOf: buffer)
          buffer.removeAll(keepingCapacity: true)
        }
      }
      try out.write(contentsOf: buffer)
      return n
    }
    let head = JSON.object([
      ("resourceType", .string("Group")),
      ("id", .string(g.rawValue)),
      ("meta", .object([("versionId", .string("1")), ("lastUpdated", .string(Instant.format(clock)))])),
      ("identifier", .array([.object([("system", .string("urn:cohort:group")), ("value", .string(g.rawValue))])])),
      ("active", .bool(true)),
      ("type", .string("person")),
      ("actual", .bool(true)),
      ("name", .string(g.name)),
      ("quantity", .int(count)),
    ]).serialized()
    // `{…,"quantity":N` + `,"member":[` + members + `]}`
    if noMember {
      // groupNoMember: the Group as large Groups or `_summary` reads give it (quantity, no member).
      try? FileManager.default.removeItem(atPath: path)
      return Reply(status: 200, headers: [("Content-Type", "application/fhir+json")], body: ResponseBody(byteBuffer: ByteBuffer(bytes: head)))
    }
    let prefix = Array(head.dropLast()) + Array(#","member":["#.utf8)
    let suffix = Array("]}".utf8)
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    let body = ResponseBody(contentLength: prefix.count + size + suffix.count) { writer in
      defer { try? FileManager.default.removeItem(atPath: path) }
      try await writer.write(ByteBuffer(bytes: prefix))
      if let input = FileHandle(forReadingAtPath: path) {
        defer { try? input.close() }
        while let chunk = try input.read(upToCount: 1 << 18), !chunk.isEmpty {
          try await writer.write(ByteBuffer(bytes: chunk))
        }
      }
      try await writer.write(ByteBuffer(bytes: suffix))
      try await writer.finish(nil)
    }
    return Reply(status: 200, headers: [("Content-Type", "application/fhir+json")], body: body)
  }

  func groupSearch(_ items: [(String, String)]) -> Reply {
    var groups = GroupKind.allCases
    for (k, v) in items {
      switch k {
      case "_id": groups = groups.filter { v.split(separator: ",").contains(Substring($0.rawValue)) }
      case "name": groups = groups.filter { $0.name.lowercased().contains(v.lowercased()) || $0.rawValue.contains(v.lowercased()) }
      case "identifier":
        let value = v.split(separator: "|").last.map(String.init) ?? v
        groups = groups.filter { $0.rawValue == value }
      default: continue
      }
    }
    let entries: [JSON] = groups.map { g in
      .object([
        ("fullUrl", .string("\(core.baseURL)/Group/\(g.rawValue)")),
        (
          "resource",
          .object([
            ("resourceType", .string("Group")), ("id", .string(g.rawValue)),
            ("identifier", .array([.object([("system", .string("urn:cohort:group")), ("value", .string(g.rawValue))])])),
            ("type", .string("person")), ("actual", .bool(true)), ("name", .string(g.name)),
          ])
        ),
        ("search", .object([("mode", .string("match"))])),
      ])
    }
    return Reply.json(
      200,
      .object([("resourceType", .string("Bundle")), ("type", .string("searchset")), ("total", .int(entries.count)), ("entry", .array(entries))]))
  }

  // MARK: discovery

  func capabilityStatement() -> JSON {
    let exportOps: [JSON] = [
      .object([("name", .string("export")), ("definition", .string("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"))])
    ]
    let params = ["_type", "_since", "_until", "_outputFormat", "_typeFilter", "_elements", "patient"]
    let searchParams: [JSON] = Filters.supportedParameters.map { .object([("name", .string($0)), ("type", .string($0 == "date" || $0 == "_lastUpdated" ? "date" : "token"))]) }
    var resources: [JSON] = []
    // No empty arrays (FHIR JSON forbids them): types without interactions have no `interaction`.
    for t in core.types where t != "Group" {
      var r: [(String, JSON)] = [("type", .string(t))]
      r.append(("searchParam", .array(searchParams)))
      if t == "Patient" {
        r.append(("operation", .array([.object([("name", .string("export")), ("definition", .string("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"))])])))
      }
      resources.append(.object(r))
    }
    resources.append(
      .object([
        ("type", .string("Group")),
        ("interaction", .array([.object([("code", .string("read"))]), .object([("code", .string("search-type"))])])),
        ("operation", .array([.object([("name", .string("export")), ("definition", .string("http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"))])])),
      ]))
    var security: [(String, JSON)] = []
    if case .smart = core.config.auth {
      security = [
        ("service", .array([Generator.concept("http://terminology.hl7.org/CodeSystem/restful-security-service", "SMART-on-FHIR", "SMART-on-FHIR")])),
        (
          "extension",
          .array([
            .object([
              ("url", .string("http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris")),
              ("extension", .array([.object([("url", .string("token")), ("valueUri", .string(core.tokenURL))])])),
            ])
          ])
        ),
      ]
    }
    var rest: [(String, JSON)] = [("mode", .string("server"))]
    if !security.isEmpty { rest.append(("security", .object(security))) }
    rest.append(("resource", .array(resources)))
    rest.append(("operation", .array(exportOps)))
    return .object([
      ("resourceType", .string("CapabilityStatement")),
      ("status", .string("active")),
      ("date", .string(core.config.startTime)),
      ("kind", .string("instance")),
      ("software", .object([("name", .string(BulkDataServer.softwareName)), ("version", .string(BulkDataServer.version))])),
      ("implementation", .object([("description", .string("cohort BulkServer (\(core.config.flavor.rawValue) flavor)")), ("url", .string(core.baseURL))])),
      ("fhirVersion", .string("4.0.1")),
      ("format", .array([.string("json")])),
      ("instantiates", .array([.string("http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data")])),
      (
        "extension",
        .array([
          .object([
            ("url", .string("http://hl7.org/fhir/uv/bulkdata/StructureDefinition/export-parameters")),
            ("valueString", .string(params.joined(separator: ","))),
          ])
        ])
      ),
      ("rest", .array([.object(rest)])),
    ])
  }

  func smartConfiguration() -> JSON {
    .object([
      ("token_endpoint", .string(core.tokenURL)),
      ("token_endpoint_auth_methods_supported", .array([.string("private_key_jwt")])),
      ("token_endpoint_auth_signing_alg_values_supported", .array([.string("RS384"), .string("ES384")])),
      ("grant_types_supported", .array([.string("client_credentials")])),
      ("scopes_supported", .array(core.config.allowedScopes.map { .string($0) })),
      ("capabilities", .array([.string("client-confidential-asymmetric"), .string("permission-v1"), .string("permission-v2")])),
    ])
  }
}

/// A request error carrying extra headers (Retry-After) and optionally another status.
struct RequestErrorWithHeaders: Error {
  var error: RequestError
  var headers: [(String, String)]
  var status: Int?
  static func make(_ e: RequestError, _ h: [(String, String)], status: Int? = nil) -> RequestErrorWithHeaders {
    RequestErrorWithHeaders(error: e, headers: h, status: status)
  }
}
