// Every failure is one line: what failed, why (server diagnostics verbatim), what to do.
// No error text ever contains the access token.

/// What the client was doing when the server answered with an error.
public enum BulkOperation: String, Sendable, Codable {
  case capabilities = "capability check"
  case kickoff = "kick-off"
  case status = "status poll"
  case manifestPage = "manifest page"
  case delete = "job delete"
  case download = "file download"
  case groupRead = "Group read"
}

/// A limit of `DownloadPolicy` that a download crossed.
public enum DownloadLimit: Sendable, Equatable {
  /// Bytes received on the wire (compressed when the server compresses).
  case fileBytes(Int64)
  /// Bytes written after decompression.
  case decompressedBytes(Int64)
  /// Decompressed ÷ compressed bytes (a gzip bomb).
  case compressionRatio(Int)
  /// The whole file took longer than this.
  case duration(seconds: Int)
  /// No byte arrived for this long.
  case stall(seconds: Int)

  var text: String {
    switch self {
    case .fileBytes(let n): return "the maximum file size of \(ByteText.format(n)) (DownloadPolicy.maxFileBytes)"
    case .decompressedBytes(let n):
      return "the maximum decompressed size of \(ByteText.format(n)) (DownloadPolicy.maxDecompressedBytes)"
    case .compressionRatio(let r): return "the maximum compression ratio of \(r):1, a sign of a gzip bomb (DownloadPolicy.maxCompressionRatio)"
    case .duration(let s): return "the maximum download time of \(s) s per file (DownloadPolicy.maxDuration)"
    case .stall(let s): return "the stall timeout: no data for \(s) s (DownloadPolicy.stallTimeout)"
    }
  }
}

enum ByteText {
  static func format(_ n: Int64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024 && i < units.count - 1 {
      v /= 1024
      i += 1
    }
    return i == 0 ? "\(n) bytes" : String(format: "%.1f", v) + " " + units[i]
  }
}

/// What kind of failure an error is, for the caller to decide what to do with the job.
public enum FailureClass: Sendable, Equatable {
  /// Bad parameters or an export the server does not declare: fix the command.
  case usage
  /// The server said no (4xx, a non-transient OperationOutcome, a job that is gone): its issue codes
  /// and diagnostics (already escaped for the terminal).
  case refused(status: Int?, codes: [String], diagnostics: [String])
  /// Network or transient server trouble: resumable.
  case network
  /// Bad data from the server (invalid manifest, a file that fails verification, a limit crossed by
  /// size): deterministic, so not resumable.
  case data
  /// Local disk or file system trouble (disk full …): resumable after freeing space.
  case localIO
  /// The access token would have gone to an origin it may not go to.
  case policy
  /// The user interrupted.
  case cancelled

  /// True for network and local I/O failures: the same job may be resumed.
  public var isResumable: Bool {
    switch self {
    case .network, .localIO: return true
    default: return false
    }
  }

  /// The class of any error: `BulkError`'s own, `CancellationError` → `.cancelled`, SMART errors
  /// → `.network` when retryable else `.refused`; anything else `.localIO`.
  public static func of(_ error: any Error) -> FailureClass {
    if let e = error as? BulkError { return e.failureClass }
    if error is CancellationError { return .cancelled }
    if let e = error as? SMARTError {
      switch e {
      case .foreignOrigin: return .policy
      case .insecureTokenURL, .key, .signing: return .usage
      default: return e.isFatal ? .refused(status: nil, codes: [], diagnostics: [TerminalText.escape(e.description)]) : .network
      }
    }
    return .localIO
  }

  /// Sort order for picking the most decisive of several failures (lower is more decisive).
  var rank: Int {
    switch self {
    case .cancelled: return 0
    case .policy: return 1
    case .usage: return 2
    case .data: return 3
    case .localIO: return 4
    case .refused: return 5
    case .network: return 6
    }
  }
}

public indirect enum BulkError: Error, CustomStringConvertible, Sendable, Equatable {
  /// A parameter was refused locally; nothing was sent.
  case invalidParameter(name: String, value: String, reason: String)
  /// The server does not declare what the export needs (capability check).
  case notSupported(what: String, server: String)
  /// The server answered with an error status. `outcome` carries the issue codes to match on.
  case server(operation: BulkOperation, status: Int, outcome: OperationOutcome?, body: String?)
  /// A response that breaks the protocol (202 without Content-Location, an unexpected 2xx, …).
  case protocolViolation(operation: BulkOperation, detail: String)
  /// The status URL answered 404/410: the job was deleted or expired (C35).
  case jobGone(statusURL: String)
  /// Polling went on longer than the policy allows.
  case jobTimeout(seconds: Int)
  /// The manifest could not be read, or would write outside the export folder.
  case invalidManifest(String)
  /// A downloaded file failed verification (C44); the temporary file was removed.
  case invalidFile(url: String, type: String, reason: String)
  /// Network failure (connection refused, reset, timeout …).
  case network(operation: BulkOperation, url: String, message: String)
  /// Local file system failure.
  case io(path: String, message: String)
  /// The token provider failed.
  case auth(String)
  /// Some files could not be downloaded (the others were). `first` is the most decisive failure
  /// (a non-resumable one when there is one); its class is this error's class.
  case downloadsFailed(failed: Int, total: Int, first: BulkError)
  /// The access token would go to `host`, which is neither the FHIR server's origin, its token
  /// endpoint's, nor an origin allowed for this server. Nothing was sent.
  case tokenOriginRefused(operation: BulkOperation, host: String, server: String)
  /// A file's content is wrong in a way a retry cannot fix (`file` is the relative path or URL;
  /// `line` is 1-based when known).
  case dataFault(file: String, line: Int?, reason: String)
  /// A download crossed one of `DownloadPolicy`'s limits; the partial file was removed.
  case limitExceeded(url: String, limit: DownloadLimit)

  /// One line, with control characters from server text escaped (`TerminalText`).
  public var description: String { TerminalText.escape(rawDescription) }

  private var rawDescription: String {
    switch self {
    case .invalidParameter(let name, let value, let reason):
      return "invalid \(name) '\(value)': \(reason); nothing was sent to the server"
    case .notSupported(let what, let server):
      return "\(server) does not support \(what) according to its CapabilityStatement; change the export or the server"
    case .server(let op, let status, let outcome, let body):
      var why = ""
      if let outcome, !outcome.issue.isEmpty {
        why = outcome.summary
      } else if let body, !body.isEmpty {
        why = body
      } else {
        why = "no details"
      }
      return "\(op.rawValue) failed: HTTP \(status) (\(why)); \(Self.advice(op, status, outcome))"
    case .protocolViolation(let op, let detail):
      return "\(op.rawValue) failed: \(detail); the server does not follow the Bulk Data IG"
    case .jobGone(let url):
      return "export job is gone (status URL \(url) answered 404): it was deleted or expired; run the export again"
    case .jobTimeout(let seconds):
      return "export job did not finish within \(seconds) s; resume later or raise the job timeout"
    case .invalidManifest(let why):
      return "manifest refused: \(why)"
    case .invalidFile(let url, let type, let reason):
      return "file \(url) (\(type)) failed verification: \(reason); the file was not kept"
    case .network(let op, let url, let message):
      return "\(op.rawValue) failed: \(URLText.hostPort(url) ?? "the server") (\(message)); check the network and retry"
    case .io(let path, let message):
      return "cannot write \(path): \(message)"
    case .auth(let message):
      return "authorization failed: \(message); check the server's credentials"
    case .downloadsFailed(let failed, let total, let first):
      let tail = first.isResumable ? "run the export again to resume" : "the export cannot complete from this job"
      return "\(failed) of \(total) files failed to download (first: \(first.rawDescription)); \(tail)"
    case .tokenOriginRefused(let op, let host, let server):
      return "\(op.rawValue) refused: the access token would go to \(host), which is not the FHIR server (\(server)), its token endpoint, or an origin allowed for this server; nothing was sent. If \(host) belongs to the server, allow it with --allow-origin \(host)"
    case .dataFault(let file, let line, let reason):
      return "the server sent bad data: \(file)\(line.map { " line \($0)" } ?? ""): \(reason); this job cannot be completed, export again or report it to the server's operators"
    case .limitExceeded(let url, let limit):
      return "file download stopped: \(URLText.hostPort(url) ?? url) crossed \(limit.text); the partial file was removed. Raise the limit for this server if the file is genuine"
    }
  }

  private static func advice(_ op: BulkOperation, _ status: Int, _ outcome: OperationOutcome?) -> String {
    switch status {
    case 400: return op == .kickoff ? "check the export parameters" : "the server refused the request"
    case 401: return "the access token was refused; check the credentials"
    case 401 where op == .delete, 403 where op == .delete:
      // Harmless after a completed export: servers with read-only (SMART) scopes refuse DELETE.
      return "the server does not let this client delete export jobs (common with read-only SMART scopes); its files expire on the server's own schedule"
    case 403: return op == .kickoff || op == .status || op == .groupRead
      ? "the token's scopes or the Group are not permitted" : "the server refused access; check the token's scopes"
    case 404:
      return op == .kickoff ? "the Group or endpoint does not exist; check the cohort's Group id" : "not found"
    case 410: return "the link expired; run the export again"
    case 429: return "the server is busy with another export; wait and retry"
    case 500...599:
      return (outcome?.isTransient ?? false) || [502, 503, 504].contains(status)
        ? "a transient server error; retry later" : "the server failed; retry later or contact its operators"
    default: return "see the server's message"
    }
  }

  /// Worth retrying: transient OperationOutcome codes, 429, bare 502/503/504, network errors (C34, C48).
  public var isTransient: Bool {
    switch self {
    case .server(_, let status, let outcome, _):
      if let outcome, outcome.isTransient { return true }
      if status == 429 { return true }
      return [502, 503, 504].contains(status) && (outcome == nil || outcome?.issue.isEmpty == true)
    case .network: return true
    default: return false
    }
  }

  /// What kind of failure this is (see `FailureClass`).
  public var failureClass: FailureClass {
    switch self {
    case .invalidParameter, .notSupported: return .usage
    case .server(_, let status, let outcome, let body):
      if isTransient { return .network }
      if (500...599).contains(status) && (outcome == nil || outcome?.issue.isEmpty == true) { return .network }
      var diagnostics = outcome?.issue.compactMap(\.message) ?? []
      if diagnostics.isEmpty, let body { diagnostics = [body] }
      return .refused(status: status, codes: outcome?.codes ?? [], diagnostics: diagnostics.map(TerminalText.escape))
    case .protocolViolation, .invalidManifest, .invalidFile, .dataFault: return .data
    case .jobGone: return .refused(status: 404, codes: [], diagnostics: [])
    case .jobTimeout, .network: return .network
    case .io: return .localIO
    case .auth(let m): return .refused(status: nil, codes: [], diagnostics: [TerminalText.escape(m)])
    case .downloadsFailed(_, _, let first): return first.failureClass
    case .tokenOriginRefused: return .policy
    case .limitExceeded(_, let limit):
      switch limit {
      case .duration, .stall: return .network
      default: return .data
      }
    }
  }

  /// Worth resuming the same job later (network trouble, local disk trouble).
  public var isResumable: Bool { failureClass.isResumable }

  /// The job is gone (C35).
  public var isJobGone: Bool {
    if case .jobGone = self { return true }
    return false
  }

  /// OperationOutcome issue codes carried by a server error.
  public var issueCodes: [String] {
    if case .server(_, _, let outcome, _) = self { return outcome?.codes ?? [] }
    return []
  }

  /// The HTTP status of a server error.
  public var httpStatus: Int? {
    if case .server(_, let status, _, _) = self { return status }
    return nil
  }
}
