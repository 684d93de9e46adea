// The auth seam: bearer tokens now, SMART Backend Services later (C12, C10).

/// Supplies the access token sent as `Authorization: Bearer …` on kick-off, status, DELETE and
/// (when the manifest says `requiresAccessToken`) file requests.
public protocol AccessTokenProvider: Sendable {
  /// Returns a token. `forceRenew` is true after a 401: renew once, and the caller retries once (C10).
  func token(forceRenew: Bool) async throws -> String
  /// The token endpoint's URL, when known: its origin may receive the token too (nil by default).
  var tokenEndpoint: String? { get }
}

extension AccessTokenProvider {
  public var tokenEndpoint: String? { nil }
}

/// A fixed bearer token (from a file or an environment variable). It cannot be renewed, so a
/// second 401 is fatal.
public struct StaticTokenProvider: AccessTokenProvider {
  private let value: String
  public init(_ token: String) { self.value = token }
  public func token(forceRenew: Bool) async throws -> String { value }
}
