import CohortStore
import FHIRBulk
import Foundation

/// Builds protocol clients for registered servers (auth from the server's settings).
public struct ClientFactory: Sendable {
  public var environment: [String: String]
  public var userAgent = "cohort/0.1 (FHIR Bulk Data client)"
  /// Where SMART discovery and token warnings go (the shell prints them).
  public var warn: @Sendable (String) -> Void = { _ in }
  public var pollPolicy = PollPolicy()
  public var downloadPolicy = DownloadPolicy()

  public init(environment: [String: String]) { self.environment = environment }

  public func tokenProvider(for server: ServerRecord) throws -> (any AccessTokenProvider)? {
    switch server.authKind {
    case .none:
      return nil
    case .bearer:
      if let env = server.tokenEnv {
        guard let token = environment[env], !token.isEmpty else {
          throw ExportError.missingToken(
            "server '\(server.name)' takes its bearer token from the environment variable \(env), which is not set; export it and try again")
        }
        return StaticTokenProvider(token)
      }
      if let file = server.tokenFile {
        guard let data = FileManager.default.contents(atPath: file),
          let token = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty
        else {
          throw ExportError.missingToken("server '\(server.name)' reads its bearer token from \(file), which is missing or empty")
        }
        return StaticTokenProvider(token)
      }
      throw ExportError.missingToken("server '\(server.name)' has --auth bearer but no token source")
    case .smart:
      // SMART Backend Services: the key by path, loaded when a client is built (never stored in the workspace).
      guard let clientID = server.clientID, let keyPath = server.keyPath else {
        throw KitError.invalidArgument("server '\(server.name)' uses --auth smart but has no --client-id/--key")
      }
      let key = try SMARTKey.load(
        path: keyPath, algorithm: server.keyAlg.flatMap(SMARTAlgorithm.init(name:)), kid: server.keyID)
      return SMARTTokenProvider(
        baseURL: server.baseURL, clientID: clientID, key: key, scope: server.scope, tokenURL: server.tokenURL,
        warn: warn)
    }
  }

  public func client(for server: ServerRecord, events: @escaping @Sendable (BulkEvent) -> Void) throws -> BulkClient {
    let endpoint = BulkEndpoint(
      baseURL: server.baseURL, kickoffMethod: server.kickoffMethod == "post" ? .post : .get,
      auth: try tokenProvider(for: server), userAgent: userAgent)
    return BulkClient(
      endpoint: endpoint, httpClient: BulkClient.sharedHTTPClient(connectTimeoutSeconds: Self.connectTimeout(for: server)),
      pollPolicy: pollPolicy, downloadPolicy: downloadPolicy, events: events)
  }

  /// The server's connect timeout in seconds (`server add|set --connect-timeout`; 5 s if not set).
  public static func connectTimeout(for server: ServerRecord) -> Double {
    server.connectTimeout ?? BulkClient.defaultConnectTimeoutSeconds
  }
}
