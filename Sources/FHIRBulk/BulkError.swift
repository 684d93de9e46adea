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
}

public enum BulkError: Error, CustomStringConvertible, Sendable, Equatable {
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
  /// Some files could not be downloaded (the others were).
  case downloadsFailed(failed: Int, total: Int, first: String)

  public var description: String {
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
      return "\(op.rawValue) failed: cannot reach \(url) (\(message)); check the network and retry"
    case .io(let path, let message):
      return "cannot write \(path): \(message)"
    case .auth(let message):
      return "authorization failed: \(message); check the server's credentials"
    case .downloadsFailed(let failed, let total, let first):
      return "\(failed) of \(total) files failed to download (first: \(first)); run the export again to resume"
    }
  }

  private static func advice(_ op: BulkOperation, _ status: Int, _ outcome: OperationOutcome?) -> String {
    switch status {
    case 400: return op == .kickoff ? "check the export parameters" : "the server refused the request"
    case 401: return "the access token was refused; check the credentials"
    case 403: return "the token's scopes or the Group are not permitted"
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
