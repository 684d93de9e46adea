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

/// Fault switches (all off by default). Counters apply per job or per file, from the moment they are set.
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
  /// Files are sent with `Content-Encoding: gzip` when the request has `Accept-Encoding: gzip`.
  public var gzip = false
  /// > 0: the manifest is paged, this many output entries per page, linked with `link: [{relation: next}]`.
  public var manifestPageSize = 0
  /// The export succeeds partly: the last requested type is missing and an error file explains why.
  public var partialFailure = false
  /// One bad line is written into the first output file.
  public var badLine: BadLine? = nil
  /// Extra 202 answers before a job completes (adds to `pollsBeforeComplete`).
  public var slowPolls = 0

  public init(
    kickoff429: Int = 0, transientPolls: Int = 0, fileErrors: Int = 0, dropConnections: Int = 0, expiredLinks: Int = 0,
    gzip: Bool = false, manifestPageSize: Int = 0, partialFailure: Bool = false, badLine: BadLine? = nil,
    slowPolls: Int = 0
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
  }

  /// Parses `name[=value]` switches, comma-separated, e.g. `kickoff429=1,gzip,badLine=wrongType`
  /// (for `cohort serve --fault`).
  public static func parse(_ text: String) throws -> Faults {
    var f = Faults()
    for item in text.split(separator: ",") {
      let kv = item.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
      let name = kv[0]
      let value = kv.count > 1 ? kv[1] : nil
      func int() throws -> Int {
        guard let v = value.flatMap({ Int($0) }), v >= 0 else {
          throw BulkServerError.invalidConfiguration("fault \(name) needs a count, e.g. \(name)=1")
        }
        return v
      }
      switch name {
      case "kickoff429": f.kickoff429 = try int()
      case "transientPolls": f.transientPolls = try int()
      case "fileErrors": f.fileErrors = try int()
      case "dropConnections": f.dropConnections = try int()
      case "expiredLinks": f.expiredLinks = try int()
      case "gzip": f.gzip = value.map { $0 != "false" && $0 != "0" } ?? true
      case "manifestPageSize": f.manifestPageSize = try int()
      case "partialFailure": f.partialFailure = value.map { $0 != "false" && $0 != "0" } ?? true
      case "badLine":
        guard let v = value.flatMap(BadLine.init(rawValue:)) else {
          throw BulkServerError.invalidConfiguration("fault badLine needs wrongType or invalidJSON")
        }
        f.badLine = v
      case "slowPolls": f.slowPolls = try int()
      default:
        throw BulkServerError.invalidConfiguration(
          "unknown fault '\(name)' (known: kickoff429, transientPolls, fileErrors, dropConnections, expiredLinks, gzip, manifestPageSize, partialFailure, badLine, slowPolls)"
        )
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
  /// Lifetime of issued access tokens, in seconds (wall clock).
  public var tokenLifetime = 300
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
