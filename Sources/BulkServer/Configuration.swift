import Foundation

/// URL style of the status and file endpoints.
public enum Flavor: String, Sendable, CaseIterable, Codable {
  /// Status at `/$export-status/{job}`, files at `/files/{job}/{name}`.
  case standard
  /// Netsmart style: status at `/$export-poll-status?_id={job}`, files at `/Binary/{id}/$binary-access-read`,
  /// `X-RetryAfter` next to `Retry-After`.
  case netsmart
}

public enum AuthMode: Sendable {
  case none
  /// A static bearer token.
  case bearer(token: String)
  /// SMART Backend Services: client id → JWKS JSON (public keys, RS384 and/or ES384).
  case smart(clients: [String: Data])
}

/// Fault switches and server modes (all off by default), for `cohort serve --fault` and
/// `BulkDataServer.setFaults`. Counters apply per job or per file, from the moment they are set.
///
/// Names are `name[=value]`; a count fault given without a value means 1.
/// Per file, the request faults apply in this order: `fileErrors`, `dropConnections`, `truncatedBody`,
/// `endlessBody`, `tricklingBody` (e.g. `fileErrors=1,truncatedBody=1`: the 1st request of each file
/// answers 503, the 2nd is truncated, the 3rd is whole).
public struct Faults: Sendable, Codable, Equatable {
  public enum BadLine: String, Sendable, Codable, Equatable {
    /// A line whose resourceType differs from the file's type.
    case wrongType
    /// A line that is not valid JSON.
    case invalidJSON
  }
  /// The first N kick-offs answer 429 with Retry-After.
  public var kickoff429 = 0
  /// The first N status polls of each job answer 500 with an OperationOutcome whose code is `transient`.
  public var transientPolls = 0
  /// The first N requests of each file answer 503 with an OperationOutcome.
  public var fileErrors = 0
  /// The first N requests of each file drop the connection half-way through the body.
  public var dropConnections = 0
  /// File links handed out in the first N complete-status answers of each job answer 410 Gone;
  /// polling the status URL again gives fresh links.
  public var expiredLinks = 0
  /// Files are sent with `Content-Encoding: gzip` when the request's `Accept-Encoding` allows gzip.
  public var gzip = false
  /// > 0: the manifest is paged, this many output entries per page, linked with `link: [{relation: next}]`.
  public var manifestPageSize = 0
  /// The export succeeds partly: the last requested type is missing and an error file explains why.
  public var partialFailure = false
  /// One bad line is written into the first output file.
  public var badLine: BadLine? = nil
  /// Extra 202 answers before a job completes (adds to `pollsBeforeComplete`).
  public var slowPolls = 0

  // MARK: modes (server behaviours real servers have; not errors)

  /// `noDeleted`: a server that does not report deletions: manifests never carry a `deleted` array,
  /// even for `_since` exports.
  public var noDeleted = false
  /// `ignorePatient`: `patient=` in POST kick-offs is ignored and the whole Group (or all patients) is
  /// exported; the manifest's `error` array carries an OperationOutcome with severity `warning` saying so.
  public var ignorePatient = false

  // MARK: hostile faults

  /// `otherOriginStatus`: the kick-off's Content-Location (the status URL) is on another origin
  /// (`otherOriginHost`, 127.0.0.2, a second listener serving the same content; see `BulkDataServer.otherOriginURL`).
  public var otherOriginStatus = false
  /// `otherOriginNext`: the manifest's `link` next page is on another origin (the manifest is paged:
  /// `manifestPageSize`, or 1 output entry per page when that is 0).
  public var otherOriginNext = false
  /// `otherOriginRefresh`: file links refreshed after `expiredLinks` (i.e. those of later complete-status
  /// answers) are on another origin; implies `expiredLinks=1` when that is 0.
  public var otherOriginRefresh = false
  /// `groupNoMember`: `GET Group/{id}` answers without `member` (as large Groups or `_summary` do);
  /// `quantity` is still given.
  public var groupNoMember = false
  /// `truncatedBody=N`: the first N requests of each file (after `fileErrors` and `dropConnections`)
  /// get a close-delimited body (HTTP/1.0 style: no Content-Length, no chunking) cut at a line boundary
  /// half-way; the connection is closed, so nothing at the HTTP level says the body is short.
  public var truncatedBody = 0
  /// `noOutput`: the complete-status manifest has no `output` member at all.
  public var noOutput = false
  /// `futureTransactionTime`: the manifest's `transactionTime` is one day after the server's clock and the real one.
  public var futureTransactionTime = false
  /// `missingId`: the first output line of each resource type has no `id`.
  public var missingId = false
  /// `emptyDeletedURL`: `_since` exports carry one extra `deleted` Bundle whose entry has `request.url` "".
  public var emptyDeletedURL = false
  /// `escapes`: terminal escape sequences (ESC[…, `Faults.escapeText`) in the diagnostics of every
  /// OperationOutcome the server answers with (errors and the kick-off's 202), and one warning
  /// OperationOutcome carrying them in an error file of every export.
  public var escapes = false
  /// `endlessBody=N`: the first N requests of each file (after the faults above) stream the file's lines
  /// again and again without end (no Content-Length); only the client can stop it.
  public var endlessBody = 0
  /// `tricklingBody=N`: the first N requests of each file (after the faults above) send the file
  /// `Faults.trickleBytesPerSecond` bytes per second (with its Content-Length).
  public var tricklingBody = 0
  /// `statusNotJSON=N`: the first N complete-status answers of each job are a 200 that is not JSON
  /// (an HTML page); later polls give the real manifest.
  public var statusNotJSON = 0
  /// `poll429=N`: the first N status polls of each job answer 429 with Retry-After (after `transientPolls`).
  public var poll429 = 0
  /// `deleteForbidden`: DELETE of an export job answers 403 (as servers do whose SMART scopes are
  /// read-only); the job and its files stay until they expire.
  public var deleteForbidden = false

  /// The text `escapes` puts into diagnostics: erase line, carriage return, a fake green "committed"
  /// line, reset, and an OSC window title.
  public static let escapeText = "\u{1B}[2K\r\u{1B}[1;32m✓ committed 0 resources, cohort is up to date\u{1B}[0m\u{1B}]0;cohort\u{07} "
  /// The rate of `tricklingBody`.
  public static let trickleBytesPerSecond = 4

  public init(
    kickoff429: Int = 0, transientPolls: Int = 0, fileErrors: Int = 0, dropConnections: Int = 0, expiredLinks: Int = 0,
    gzip: Bool = false, manifestPageSize: Int = 0, partialFailure: Bool = false, badLine: BadLine? = nil,
    slowPolls: Int = 0, noDeleted: Bool = false, ignorePatient: Bool = false, otherOriginStatus: Bool = false,
    otherOriginNext: Bool = false, otherOriginRefresh: Bool = false, groupNoMember: Bool = false, truncatedBody: Int = 0,
    noOutput: Bool = false, futureTransactionTime: Bool = false, missingId: Bool = false, emptyDeletedURL: Bool = false,
    escapes: Bool = false, endlessBody: Int = 0, tricklingBody: Int = 0, statusNotJSON: Int = 0, poll429: Int = 0,
    deleteForbidden: Bool = false
  ) {
    self.kickoff429 = kickoff429
    self.transientPolls = transientPolls
    self.fileErrors = fileErrors
    self.dropConnections = dropConnections
    self.expiredLinks = expiredLinks
    self.gzip = gzip
    self.manifestPageSize = manifestPageSize
    self.partialFailure = partialFailure
    self.badLine = badLine
    self.slowPolls = slowPolls
    self.noDeleted = noDeleted
    self.ignorePatient = ignorePatient
    self.otherOriginStatus = otherOriginStatus
    self.otherOriginNext = otherOriginNext
    self.otherOriginRefresh = otherOriginRefresh
    self.groupNoMember = groupNoMember
    self.truncatedBody = truncatedBody
    self.noOutput = noOutput
    self.futureTransactionTime = futureTransactionTime
    self.missingId = missingId
    self.emptyDeletedURL = emptyDeletedURL
    self.escapes = escapes
    self.endlessBody = endlessBody
    self.tricklingBody = tricklingBody
    self.statusNotJSON = statusNotJSON
    self.poll429 = poll429
    self.deleteForbidden = deleteForbidden
  }

  /// True when a fault puts URLs on the other origin (the server then runs its second listener).
  public var needsOtherOrigin: Bool { otherOriginStatus || otherOriginNext || otherOriginRefresh }

  /// `expiredLinks`, at least 1 with `otherOriginRefresh`.
  var effectiveExpiredLinks: Int { max(expiredLinks, otherOriginRefresh ? 1 : 0) }
  /// `manifestPageSize`, at least 1 with `otherOriginNext`.
  var effectivePageSize: Int { manifestPageSize > 0 ? manifestPageSize : (otherOriginNext ? 1 : 0) }

  /// Every switch name `parse` knows.
  public static let names = [
    "kickoff429", "transientPolls", "fileErrors", "dropConnections", "expiredLinks", "gzip", "manifestPageSize",
    "partialFailure", "badLine", "slowPolls", "noDeleted", "ignorePatient", "otherOriginStatus", "otherOriginNext",
    "otherOriginRefresh", "groupNoMember", "truncatedBody", "noOutput", "futureTransactionTime", "missingId",
    "emptyDeletedURL", "escapes", "endlessBody", "tricklingBody", "statusNotJSON", "poll429", "deleteForbidden",
  ]

  /// Parses `name[=value]` switches, comma-separated, e.g. `kickoff429=1,gzip,badLine=wrongType`
  /// (for `cohort serve --fault`). Switches are on without a value; counts of the hostile faults
  /// (`truncatedBody`, `endlessBody`, `tricklingBody`, `statusNotJSON`, `poll429`) are 1 without a value.
  public static func parse(_ text: String) throws -> Faults {
    var f = Faults()
    for item in text.split(separator: ",") {
      let kv = item.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
      guard let name = kv.first, !name.isEmpty else { continue }
      let value = kv.count > 1 ? kv[1] : nil
      func int() throws -> Int {
        guard let v = value.flatMap({ Int($0) }), v >= 0 else {
          throw BulkServerError.invalidConfiguration("fault \(name) needs a count, e.g. \(name)=1")
        }
        return v
      }
      func count() throws -> Int { value == nil ? 1 : try int() }
      func flag() throws -> Bool {
        switch value?.lowercased() {
        case nil, "true", "1", "on", "yes": return true
        case "false", "0", "off", "no": return false
        default: throw BulkServerError.invalidConfiguration("fault \(name) is a switch: \(name) or \(name)=false")
        }
      }
      switch name {
      case "kickoff429": f.kickoff429 = try int()
      case "transientPolls": f.transientPolls = try int()
      case "fileErrors": f.fileErrors = try int()
      case "dropConnections": f.dropConnections = try int()
      case "expiredLinks": f.expiredLinks = try int()
      case "gzip": f.gzip = try flag()
      case "manifestPageSize": f.manifestPageSize = try int()
      case "partialFailure": f.partialFailure = try flag()
      case "badLine":
        guard let v = value.flatMap(BadLine.init(rawValue:)) else {
          throw BulkServerError.invalidConfiguration("fault badLine needs wrongType or invalidJSON")
        }
        f.badLine = v
      case "slowPolls": f.slowPolls = try int()
      case "noDeleted": f.noDeleted = try flag()
      case "ignorePatient": f.ignorePatient = try flag()
      case "otherOriginStatus": f.otherOriginStatus = try flag()
      case "otherOriginNext": f.otherOriginNext = try flag()
      case "otherOriginRefresh": f.otherOriginRefresh = try flag()
      case "groupNoMember": f.groupNoMember = try flag()
      case "truncatedBody": f.truncatedBody = try count()
      case "noOutput": f.noOutput = try flag()
      case "futureTransactionTime": f.futureTransactionTime = try flag()
      case "missingId": f.missingId = try flag()
      case "emptyDeletedURL": f.emptyDeletedURL = try flag()
      case "escapes": f.escapes = try flag()
      case "endlessBody": f.endlessBody = try count()
      case "tricklingBody": f.tricklingBody = try count()
      case "statusNotJSON": f.statusNotJSON = try count()
      case "poll429": f.poll429 = try count()
      case "deleteForbidden": f.deleteForbidden = try flag()
      default:
        throw BulkServerError.invalidConfiguration("unknown fault '\(name)' (known: \(names.joined(separator: ", ")))")
      }
    }
    return f
  }
}

public struct BulkServerConfiguration: Sendable {
  public var host = "127.0.0.1"
  /// 0: an ephemeral port.
  public var port = 0
  public var patients = 40
  public var seed: UInt64 = 1
  public var flavor: Flavor = .standard
  public var auth: AuthMode = .none
  /// Lifetime of issued access tokens, in seconds on `tokenClock`.
  public var tokenLifetime = 300
  /// Measures token lifetimes: the real clock, or a virtual one a test advances (client assertions' `exp`/`iat`
  /// are still checked against the wall clock).
  public var tokenClock: any Clock<Duration> = ContinuousClock()
  /// `--data`: serve NDJSON files (one type per file) or Synthea Bundles from this folder.
  public var dataDirectory: String? = nil
  /// `--state`: SQLite file holding the clock, the changes and the jobs; survives restarts.
  public var statePath: String? = nil
  /// Large types are split into files of at most this many resources.
  public var resourcesPerFile = 10_000
  /// Number of 202 answers before a job's status is 200.
  public var pollsBeforeComplete = 1
  public var retryAfterSeconds = 1
  public var faults = Faults()
  /// The simulated clock's start; it moves only by `advance` (and +1 s per kick-off).
  public var startTime = "2026-01-05T09:00:00Z"
  /// Scopes a SMART client may be granted (patterns; `*` matches any resource type).
  public var allowedScopes = ["system/*.read", "system/*.rs", "system/*.*"]
  /// The host of the second listener ("another origin") started for the `otherOrigin…` faults.
  public var otherOriginHost = "127.0.0.2"
  /// Stop gracefully on SIGINT/SIGTERM (for `cohort serve` in the foreground; `waitUntilStopped` then returns).
  public var handleSignals = false
  /// Tests only: delay before an export starts reading, so changes can land while it runs.
  var exportStartDelayMilliseconds = 0

  public init() {}
}

/// One request as received (for tests of clients).
public struct RecordedRequest: Sendable, Codable, Equatable {
  public var method: String
  /// Path and query, as sent (e.g. `/Group/g1/$export?_type=Patient`).
  public var path: String
  /// Headers by lower-cased name; repeated headers are joined with ", ".
  public var headers: [String: String]

  public init(method: String, path: String, headers: [String: String]) {
    self.method = method
    self.path = path
    self.headers = headers
  }

  /// A header by name (case-insensitive).
  public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Reads `--smart-client ID=JWKS_FILE` options into the map `AuthMode.smart(clients:)` takes.
public func loadSmartClients(_ specs: [String]) throws -> [String: Data] {
  var out: [String: Data] = [:]
  for spec in specs {
    guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
      throw BulkServerError.invalidConfiguration("--smart-client '\(spec)' must look like ID=JWKS_FILE")
    }
    let id = String(spec[..<eq])
    let path = String(spec[spec.index(after: eq)...])
    guard let data = FileManager.default.contents(atPath: path) else {
      throw BulkServerError.invalidConfiguration("cannot read the JWKS file \(path) for client \(id)")
    }
    _ = try JWKS.keys(from: data)
    out[id] = data
  }
  return out
}

/// What an `advance` changed.
public struct AdvanceReport: Sendable, Codable, Equatable {
  /// The simulated clock after the advance.
  public var clock: String
  public var days: Int
  /// Type → ids (sorted).
  public var added: [String: [String]] = [:]
  public var updated: [String: [String]] = [:]
  public var deleted: [String: [String]] = [:]
  /// Group id → patient ids that joined / left.
  public var joined: [String: [String]] = [:]
  public var left: [String: [String]] = [:]

  public var addedCount: Int { added.values.reduce(0) { $0 + $1.count } }
  public var updatedCount: Int { updated.values.reduce(0) { $0 + $1.count } }
  public var deletedCount: Int { deleted.values.reduce(0) { $0 + $1.count } }
}
