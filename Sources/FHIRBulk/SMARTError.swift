// Errors of SMART Backend Services authorization (C1–C11). One line each; never the access
// token, the client assertion or key material.
import Foundation

public enum SMARTError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The private key file cannot be used.
  case key(path: String, reason: String)
  /// `/.well-known/smart-configuration` could not be read or lacks `token_endpoint` (C1).
  case discovery(url: String, reason: String)
  /// The token endpoint refused the client (RFC 6749 §5.2: invalid_client, invalid_scope, …) (C11).
  case tokenRejected(error: String, description: String?, status: Int)
  /// The token endpoint answered something that is not a usable token response (C7).
  case tokenResponse(url: String, reason: String)
  /// The token endpoint could not be reached.
  case network(url: String, message: String)
  /// A plain `http://` token endpoint on a non-loopback host without the insecure-HTTP switch (C6).
  case insecureTokenURL(String)
  /// The granted scopes don't cover the types of the export (C7).
  case scopeNotGranted(types: [String], granted: String)
  /// The assertion could not be signed.
  case signing(String)
  /// A manifest with `requiresAccessToken: true` points at files on other hosts (C12).
  case foreignOrigin(origins: [String], server: String)

  /// One line, with control characters from server text escaped (`TerminalText`).
  public var description: String { TerminalText.escape(rawDescription) }

  private var rawDescription: String {
    switch self {
    case .key(let path, let reason):
      return "private key \(path) cannot be used: \(reason)"
    case .discovery(let url, let reason):
      return "SMART discovery failed at \(url): \(reason); check the server URL or pass --token-url"
    case .tokenRejected(let error, let description, let status):
      let why = description.map { ": \($0)" } ?? ""
      return "the token endpoint refused the request (HTTP \(status), \(error)\(why)); \(Self.advice(error))"
    case .tokenResponse(let url, let reason):
      return "the token endpoint \(url) gave an unusable answer: \(reason)"
    case .network(let url, let message):
      return "cannot reach the token endpoint \(url) (\(message)); check the network and retry"
    case .insecureTokenURL(let url):
      return "refusing to send a client assertion to \(url) over plain HTTP; use https (or allow insecure HTTP for development)"
    case .scopeNotGranted(let types, let granted):
      let g = granted.isEmpty ? "no scope" : "'\(granted)'"
      return "scope not granted: the token covers \(g), which does not allow reading \(types.joined(separator: ", ")); ask the server's operators to allow these types, or export fewer types"
    case .signing(let reason):
      return "cannot sign the client assertion: \(reason)"
    case .foreignOrigin(let origins, let server):
      let hosts = origins.map { URLComponents(string: $0)?.host ?? $0 }
      return "refusing to send the access token to \(origins.joined(separator: ", ")): the manifest puts files there with requiresAccessToken, but the server is \(server); if that host belongs to the server, allow it with --allow-origin \(hosts.first ?? "HOST")"
    }
  }

  /// True for errors a retry cannot fix (configuration or registration problems).
  public var isFatal: Bool {
    switch self {
    case .network: return false
    case .tokenResponse: return false
    default: return true
    }
  }

  private static func advice(_ error: String) -> String {
    switch error {
    case "invalid_client": return "check the client id, the key and its kid against the JWKS registered with the server"
    case "invalid_scope": return "check the requested scope (--scope) against what the server allows"
    case "invalid_grant": return "check the machine's clock and the key registration"
    case "unauthorized_client": return "the client is not allowed to use client_credentials"
    case "unsupported_grant_type": return "the server does not support SMART Backend Services (client_credentials)"
    default: return "check the client registration"
    }
  }
}
