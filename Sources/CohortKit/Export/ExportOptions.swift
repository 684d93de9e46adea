import CohortStore
import FHIRBulk
import Foundation

/// What the user asked `export` to do.
public struct ExportOptions: Sendable {
  public var types: [String] = []
  public var since: String?
  public var until: String?
  public var typeFilters: [String] = []
  public var elements: [String] = []
  public var outputFormat: String?
  public var incremental = false
  /// Explicitly full (re-baseline); the default when neither --incremental nor --since is given.
  public var full = false
  /// List the ids the server has (`_elements=id`) and remove from the state what it no longer has.
  public var reconcile = false
  public var resume = false
  public var parallel = 4
  public var acceptPartial = false
  /// Keep the folder of a failed or cancelled export (it is removed otherwise).
  public var keepFailed = false
  /// Other origins the token may be sent to (manifest file URLs on another host).
  public var allowOrigins: [String] = []
  public init() {}

  /// True when the options shape a new export (as opposed to a plain `export COHORT`, which resumes).
  public var shapesNewExport: Bool {
    !types.isEmpty || since != nil || until != nil || !typeFilters.isEmpty || !elements.isEmpty
      || outputFormat != nil || incremental || full || reconcile
  }
}

/// How an export ended.
public struct ExportOutcome: Sendable {
  public var export: ExportRecord
  public var ingest: IngestResult
  public var resumed: Bool
  public var files: Int
  public var resources: Int
  public var bytes: Int64
  public var partial: Bool
  public var folder: String
  /// One row per server job: role, types, _since, transactionTime.
  public var jobs: [JobRecord]
  /// `--reconcile`: the incremental snapshot committed before the listing, and what it changed.
  public var pulled: (seq: Int, ingest: IngestResult)?
}
