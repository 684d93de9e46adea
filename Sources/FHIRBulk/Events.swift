// Engine events: the client emits them, reporters render them. No event carries a token.

/// A file that was downloaded, verified and renamed into place.
public struct DownloadedFile: Sendable, Equatable {
  public var kind: FileKind
  public var type: String
  public var url: String
  /// Absolute path of the final file.
  public var path: String
  /// Path relative to the export folder (`Type.N.ndjson`, `deleted/…`, `error/…`).
  public var relativePath: String
  /// Decoded bytes written to disk.
  public var bytes: Int64
  /// Non-blank NDJSON lines (resources).
  public var lines: Int
  /// Lower-case hex SHA-256 of the file as written.
  public var sha256: String
  /// The manifest's `count`, if it gave one (C42).
  public var expectedCount: Int?
  /// Attempts it took (1 = first try).
  public var attempts: Int
  public var seconds: Double
}

public struct KickoffRecord: Sendable, Equatable {
  public var url: String
  public var method: KickoffMethod
  public var status: Int
  public var statusURL: String?
  /// The error body (already free of the token), when status ≥ 400.
  public var errorBody: String?
  public var parameters: [String: String]
  public var softwareName: String?
  public var softwareVersion: String?
  public var softwareReleaseDate: String?
  public var fhirVersion: String?
}

public struct ManifestSummary: Sendable, Equatable {
  public var transactionTime: String
  public var outputFiles: Int
  public var deletedFiles: Int
  public var errorFiles: Int
  public var pages: Int
  /// Sum of the `count`s given (nil if any item had none).
  public var resources: Int?

  public init(_ m: Manifest) {
    transactionTime = m.transactionTime
    outputFiles = m.output.count
    deletedFiles = m.deleted?.count ?? 0
    errorFiles = m.error.count
    pages = m.pages
    let counts = m.output.map(\.count)
    resources = counts.contains { $0 == nil } ? nil : counts.reduce(0) { $0 + ($1 ?? 0) }
  }
}

public struct ExportTotals: Sendable, Equatable {
  public var files: Int
  public var resources: Int
  public var bytes: Int64
  public var seconds: Double
}

public enum BulkEvent: Sendable, Equatable {
  case kickoff(KickoffRecord)
  /// A 202 from the status URL: X-Progress verbatim (C29), the raw Retry-After, and the wait chosen.
  case statusProgress(xProgress: String?, retryAfter: String?, nextPoll: Duration)
  /// Something will be tried again after `after`.
  case retry(reason: String, after: Duration)
  case statusComplete(transactionTime: String)
  case manifestComplete(ManifestSummary)
  case downloadRequest(url: String, kind: FileKind, type: String)
  /// Bytes received so far for one file (emitted every few MB, for rates).
  case downloadProgress(url: String, bytes: Int64)
  case downloadComplete(DownloadedFile)
  case downloadError(url: String, message: String)
  case warning(String)
  /// An `information` issue of a server OperationOutcome (e.g. "export job accepted"): shown once, not as a warning.
  case information(String)
  case exportComplete(ExportTotals)
}
