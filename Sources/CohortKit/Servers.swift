import CohortStore
import FHIRBulk
import Foundation
import NDJSON

// The server-facing workflows the shell calls (`server check`, `keygen`, key hygiene) and the IG vocabulary it
// needs (resource type names), so that the shell depends on CohortKit only for them.

extension ResourceTypes {
  /// Every FHIR R4 resource type name (completion, suggestions).
  public static var r4: [String] { FHIRResourceTypes.r4.sorted() }
}

/// What `server check NAME` found, field by field (typed, in the order it is printed).
public struct ServerCheckReport: Sendable, Codable, Equatable {
  public var server: String
  public var url: String
  public var auth: String
  /// SMART Backend Services (C1–C7): discovery and the token exchange; nil for other auth kinds.
  public var smart: SMART?
  /// For bearer tokens: a token is available (it is never shown).
  public var tokenAvailable: Bool?
  public var software: String
  public var fhirVersion: String?
  public var exportLevels: [String]
  public var resourceTypes: [String]
  /// Search parameters per type that `_typeFilter` may use, as declared.
  public var typeFilterParameters: [String: [String]]

  public struct SMART: Sendable, Codable, Equatable {
    public var tokenEndpoint: String
    public var tokenEndpointSource: String
    public var scopeRequested: String
    public var scopeGranted: String
    public var tokenLifetimeSeconds: Int
    public var signingAlgorithms: [String]
    /// The server's name and FHIR version as read with the token.
    public var server: String
    public var exportOperations: [String]
    public var resourceTypeCount: Int
    public var warnings: [String]
  }
}

/// `server check`: authorization first (SMART discovery and a token, or a bearer token's presence), then the
/// CapabilityStatement.
public enum ServerDiagnostics {
  public static func check(server: ServerRecord, factory: ClientFactory) async throws -> ServerCheckReport {
    let client = try factory.client(for: server, events: { _ in })
    var smart: ServerCheckReport.SMART?
    var tokenAvailable: Bool?
    if let provider = client.endpoint.auth as? SMARTTokenProvider {
      let r = try await provider.check(client: client)
      let sw = [r.capabilities.softwareName, r.capabilities.softwareVersion].compactMap { $0 }.joined(separator: " ")
      smart = ServerCheckReport.SMART(
        tokenEndpoint: r.configuration.tokenURL, tokenEndpointSource: r.configuration.source,
        scopeRequested: r.scopeRequested, scopeGranted: r.scopeGranted, tokenLifetimeSeconds: r.expiresIn,
        signingAlgorithms: r.configuration.signingAlgorithms,
        server: (sw.isEmpty ? "(unnamed)" : sw) + (r.capabilities.fhirVersion.map { ", FHIR \($0)" } ?? ""),
        exportOperations: r.capabilities.exportOperations.sorted(), resourceTypeCount: r.capabilities.resourceTypes.count,
        warnings: r.configuration.warnings)
    } else if let auth = client.endpoint.auth {
      _ = try await auth.token(forceRenew: false)
      tokenAvailable = true
    }
    let capability: CapabilitySummary
    do {
      capability = try await client.capabilities()
    } catch let error as BulkError {
      throw ExportError.bulk(error, exportSeq: nil, resumable: false, cohort: "")
    }
    return ServerCheckReport(
      server: server.name, url: server.baseURL, auth: server.authKind.rawValue, smart: smart, tokenAvailable: tokenAvailable,
      software: [capability.softwareName, capability.softwareVersion].compactMap { $0 }.joined(separator: " "),
      fhirVersion: capability.fhirVersion, exportLevels: capability.exportOperations.sorted(),
      resourceTypes: capability.resourceTypes.sorted(),
      typeFilterParameters: capability.searchParams.mapValues { $0.sorted() })
  }
}

/// SMART Backend Services keys: made here, kept by the user (never in the workspace).
public enum Keys {
  /// A new private key written to `path` (mode 0600, never overwritten); returns its kid and the public JWKS.
  public static func generate(algorithm name: String, path: String) throws -> (algorithm: String, kid: String, jwks: String) {
    guard let algorithm = SMARTAlgorithm(name: name) else {
      throw KitError.invalidArgument("--alg must be ES384 or RS384")
    }
    let (pem, key) = try SMARTKey.generate(algorithm)
    try SMARTKey.writePrivateKey(pem, to: path)
    return (algorithm.rawValue, key.kid, key.publicJWKS())
  }

  /// A warning when a private key file is readable by others, else nil.
  public static func permissionWarning(path: String) -> String? { SMARTKey.permissionWarning(path: path) }
}

extension Snapshots {
  /// `summary PATH`: resources per type in an NDJSON file or every `*.ndjson[.gz]` under a folder, no workspace
  /// needed. Each file is streamed (8 MB reads); one file per core at a time. Lines without a resourceType count
  /// under "(no resourceType)". A file that cannot be read fails the whole count, naming the file.
  public static func countByType(path: String) async throws -> [String: Int] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw KitError.invalidArgument("no such file or folder: \(path)")
    }
    var files: [String] = []
    if isDirectory.boolValue {
      let enumerator = FileManager.default.enumerator(atPath: path)
      while let name = enumerator?.nextObject() as? String {
        if name.hasSuffix(".ndjson") || name.hasSuffix(".ndjson.gz") { files.append(path + "/" + name) }
      }
      files.sort()
    } else {
      files = [path]
    }
    let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
    var counts: [String: Int] = [:]
    try await withThrowingTaskGroup(of: [String: Int].self) { group in
      var next = 0
      func add() {
        let file = files[next]
        next += 1
        group.addTask {
          try Task.checkCancellation()
          do {
            return try NDJSONFile.countByType(path: file)
          } catch {
            throw KitError.failed("\(file): \(error)")
          }
        }
      }
      while next < min(width, files.count) { add() }
      while let perType = try await group.next() {
        for (type, n) in perType { counts[type.isEmpty ? "(no resourceType)" : type, default: 0] += n }
        if next < files.count { add() }
      }
    }
    return counts
  }
}
