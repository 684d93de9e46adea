import CohortBasics
import Foundation
import GRDB

/// How cohort authenticates to a server. Secrets are never stored: only where to find them.
public enum AuthKind: String, Codable, Sendable, CaseIterable {
  case none, bearer, smart
}

/// A named FHIR server.
public struct ServerRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
  public static let databaseTableName = "servers"
  public var name: String
  public var baseURL: String
  public var authKind: AuthKind
  /// Name of the environment variable that holds a bearer token (never the token).
  public var tokenEnv: String?
  /// Path of a file that holds a bearer token (never the token).
  public var tokenFile: String?
  /// SMART Backend Services settings; the key is referenced by path only.
  public var clientID: String?
  public var keyPath: String?
  public var keyAlg: String?
  public var keyID: String?
  public var scope: String?
  public var tokenURL: String?
  /// `get` (default) or `post`.
  public var kickoffMethod: String
  /// Seconds to wait for a connection to the server (v9); nil = the default (5 s).
  public var connectTimeout: Double?
  public var createdAt: String

  public init(
    name: String, baseURL: String, authKind: AuthKind = .none, tokenEnv: String? = nil,
    tokenFile: String? = nil, clientID: String? = nil, keyPath: String? = nil, keyAlg: String? = nil,
    keyID: String? = nil, scope: String? = nil, tokenURL: String? = nil, kickoffMethod: String = "get",
    connectTimeout: Double? = nil, createdAt: String = isoNow()
  ) {
    self.name = name
    self.baseURL = baseURL
    self.authKind = authKind
    self.tokenEnv = tokenEnv
    self.tokenFile = tokenFile
    self.clientID = clientID
    self.keyPath = keyPath
    self.keyAlg = keyAlg
    self.keyID = keyID
    self.scope = scope
    self.tokenURL = tokenURL
    self.kickoffMethod = kickoffMethod
    self.connectTimeout = connectTimeout
    self.createdAt = createdAt
  }

  enum CodingKeys: String, CodingKey {
    case name
    case baseURL = "base_url"
    case authKind = "auth_kind"
    case tokenEnv = "token_env"
    case tokenFile = "token_file"
    case clientID = "client_id"
    case keyPath = "key_path"
    case keyAlg = "key_alg"
    case keyID = "key_id"
    case scope
    case tokenURL = "token_url"
    case kickoffMethod = "kickoff_method"
    case connectTimeout = "connect_timeout"
    case createdAt = "created_at"
  }
}

/// A named cohort: a FHIR Group on a named server.
public struct CohortRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
  public static let databaseTableName = "cohorts"
  public var name: String
  public var server: String
  public var groupID: String
  /// Comma-separated default `_type` list, or nil for "everything the server offers".
  public var defaultTypes: String?
  public var note: String?
  public var createdAt: String
  /// The definition's `_typeFilter` queries as a JSON array of strings (nil: none).
  public var typeFiltersJSON: String?
  /// The definition's `_elements`, comma-separated (nil: whole resources).
  public var elementsList: String?

  public init(
    name: String, server: String, groupID: String, defaultTypes: String? = nil, note: String? = nil,
    createdAt: String = isoNow(), typeFilters: [String] = [], elements: [String] = []
  ) {
    self.name = name
    self.server = server
    self.groupID = groupID
    self.defaultTypes = defaultTypes
    self.note = note
    self.createdAt = createdAt
    self.typeFilters = typeFilters
    self.elements = elements
  }

  public var types: [String] {
    (defaultTypes ?? "").split(separator: ",").map { String($0) }.filter { !$0.isEmpty }
  }

  /// The definition's `_typeFilter` queries (`Type?query`).
  public var typeFilters: [String] {
    get {
      guard let text = typeFiltersJSON, let data = text.data(using: .utf8),
        let list = try? JSONDecoder().decode([String].self, from: data)
      else { return [] }
      return list
    }
    set {
      typeFiltersJSON =
        newValue.isEmpty ? nil : String(decoding: (try? JSONEncoder().encode(newValue)) ?? Data("[]".utf8), as: UTF8.self)
    }
  }

  /// The definition's `_elements`.
  public var elements: [String] {
    get { (elementsList ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty } }
    set { elementsList = newValue.isEmpty ? nil : newValue.joined(separator: ",") }
  }

  enum CodingKeys: String, CodingKey {
    case name, server
    case groupID = "group_id"
    case defaultTypes = "default_types"
    case note
    case createdAt = "created_at"
    case typeFiltersJSON = "type_filters"
    case elementsList = "elements"
  }
}

/// The phases of an export job, saved at every step so that a crash resumes the same server job.
public enum ExportPhase: String, Codable, Sendable, CaseIterable {
  case requested, accepted, complete, downloading, committed, failed, cancelled

  /// A job in one of these phases may still be open on the server.
  public var isOpen: Bool { [.requested, .accepted, .complete, .downloading].contains(self) }
}

/// One export job (committed ones are the cohort's snapshots).
public struct ExportRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "exports"
  public var id: Int64?
  public var cohort: String
  /// 1, 2, 3… per cohort; the folder name is this number with four digits.
  public var seq: Int
  /// `full` or `incremental`.
  public var kind: String
  public var since: String?
  public var until: String?
  public var types: String?
  /// The effective export parameters as JSON (no secrets).
  public var paramsJSON: String
  public var kickoffURL: String?
  public var kickoffMethod: String
  public var statusURL: String?
  public var phase: ExportPhase
  public var transactionTime: String?
  public var manifestJSON: String?
  public var startedAt: String
  public var finishedAt: String?
  public var error: String?
  /// ok, partial, failed, cancelled (nil while open).
  public var outcome: String?
  public var files: Int
  public var resources: Int
  public var bytes: Int64
  public var serverSoftware: String?
  /// A side export (`--type-filter`, `--elements`, types outside the definition, or a `--since` that would leave
  /// a gap): kept and readable, but it moves no watermark and changes no current state.
  public var side: Bool = false
  /// `reported` when every job's manifest carried a `deleted` array, `not reported` when one did not.
  public var deletions: String?
  /// A one-line explanation shown in `history` (why a side export, what was reconciled…).
  public var note: String?

  public init(
    cohort: String, seq: Int, kind: String, since: String?, until: String?, types: String?,
    paramsJSON: String, kickoffMethod: String, startedAt: String = isoNow()
  ) {
    self.cohort = cohort
    self.seq = seq
    self.kind = kind
    self.since = since
    self.until = until
    self.types = types
    self.paramsJSON = paramsJSON
    self.kickoffMethod = kickoffMethod
    self.phase = .requested
    self.startedAt = startedAt
    self.files = 0
    self.resources = 0
    self.bytes = 0
  }

  /// The export's folder name inside the cohort's folder.
  public var folderName: String { String(format: "%04d", seq) }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

  enum CodingKeys: String, CodingKey {
    case id, cohort, seq, kind, since, until, types
    case paramsJSON = "params_json"
    case kickoffURL = "kickoff_url"
    case kickoffMethod = "kickoff_method"
    case statusURL = "status_url"
    case phase
    case transactionTime = "transaction_time"
    case manifestJSON = "manifest_json"
    case startedAt = "started_at"
    case finishedAt = "finished_at"
    case error, outcome, files, resources, bytes
    case serverSoftware = "server_software"
    case side, deletions, note
  }
}

/// A downloaded and verified file of an export.
public struct FileRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
  public static let databaseTableName = "files"
  public var exportID: Int64
  /// The server job the file came from (nil for files recorded before v4).
  public var jobID: Int64?
  /// output, deleted, error
  public var kind: String
  public var type: String
  public var url: String
  /// Path relative to the workspace folder.
  public var path: String
  public var bytes: Int64
  public var lines: Int
  public var sha256: String

  public init(
    exportID: Int64, jobID: Int64? = nil, kind: String, type: String, url: String, path: String, bytes: Int64,
    lines: Int, sha256: String
  ) {
    self.exportID = exportID
    self.jobID = jobID
    self.kind = kind
    self.type = type
    self.url = url
    self.path = path
    self.bytes = bytes
    self.lines = lines
    self.sha256 = sha256
  }

  enum CodingKeys: String, CodingKey {
    case exportID = "export_id"
    case jobID = "job_id"
    case kind, type, url, path, bytes, lines, sha256
  }
}

/// The watermark of one resource type of a cohort: the manifest `transactionTime`, verbatim.
public struct WatermarkRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
  public static let databaseTableName = "watermarks"
  public var cohort: String
  public var resourceType: String
  public var transactionTime: String
  public var exportID: Int64
  /// The request shape the watermark belongs to (the type's filters and elements in the cohort's definition):
  /// a watermark is only used for a request of the same shape.
  public var shape: String

  public init(cohort: String, resourceType: String, transactionTime: String, exportID: Int64, shape: String = "") {
    self.cohort = cohort
    self.resourceType = resourceType
    self.transactionTime = transactionTime
    self.exportID = exportID
    self.shape = shape
  }

  enum CodingKeys: String, CodingKey {
    case cohort
    case resourceType = "resource_type"
    case transactionTime = "transaction_time"
    case exportID = "export_id"
    case shape
  }
}

