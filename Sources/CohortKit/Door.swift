import CohortStore
import FHIRBulk
import Foundation

// CohortKit is the only door: the shell imports CohortKit (never CohortStore) and works through the workspace's
// typed methods below. The store's records it renders are plain Codable values, vended here under their own names.
public typealias AuthKind = CohortStore.AuthKind
public typealias ServerRecord = CohortStore.ServerRecord
public typealias CohortRecord = CohortStore.CohortRecord
public typealias ExportPhase = CohortStore.ExportPhase
public typealias ExportRecord = CohortStore.ExportRecord
public typealias WatermarkRecord = CohortStore.WatermarkRecord
public typealias ResourceVersion = CohortStore.ResourceVersion
public typealias SnapshotDiff = CohortStore.SnapshotDiff

extension Workspace {
  /// Opens the workspace's store; with `create`, makes the workspace first if there is none (`onCreate` is told its
  /// path). Every method below opens it without creating (no workspace: `KitError.noWorkspace`).
  @discardableResult
  public func open(create: Bool, onCreate: (String) -> Void = { _ in }) throws -> Workspace {
    _ = try store(create: create, onCreate: onCreate)
    return self
  }

  private var opened: Store { get throws { try store(create: false) } }

  // MARK: Registry

  public func servers() throws -> [ServerRecord] { try opened.servers() }
  public func server(named name: String) throws -> ServerRecord { try opened.server(named: name) }
  public func addServer(_ server: ServerRecord) throws { try opened.addServer(server) }
  public func updateServer(_ server: ServerRecord) throws { try opened.updateServer(server) }
  public func removeServer(named name: String) throws { try opened.removeServer(named: name) }
  public func renameServer(_ old: String, to new: String) throws { try opened.renameServer(old, to: new) }

  public func cohorts() throws -> [CohortRecord] { try opened.cohorts() }
  public func cohort(named name: String) throws -> CohortRecord { try opened.cohort(named: name) }
  public func addCohort(_ cohort: CohortRecord) throws { try opened.addCohort(cohort) }

  /// `cohort set`: changes the definition; returns the updated cohort and the watermarks it reset.
  public func setDefinition(cohort name: String, types: [String]?, typeFilters: [String]?, elements: [String]?)
    throws -> (cohort: CohortRecord, reset: [String])
  {
    try Registry.setDefinition(cohort: name, types: types, typeFilters: typeFilters, elements: elements, store: opened)
  }

  public func removeCohort(_ name: String, force: Bool) throws {
    try Registry.removeCohort(name, force: force, workspace: self, store: opened)
  }

  public func renameCohort(_ old: String, to new: String) throws {
    try Registry.renameCohort(old, to: new, workspace: self, store: opened)
  }

  // MARK: Exports, snapshots and the index

  /// Every export of a cohort (nil: of all cohorts), oldest first, failed and cancelled ones included.
  public func exports(cohort: String?) throws -> [ExportRecord] { try opened.exports(cohort: cohort) }
  /// Committed snapshots of a cohort, oldest first.
  public func snapshots(cohort: String) throws -> [ExportRecord] { try opened.snapshots(cohort: cohort) }
  public func watermarks(cohort: String) throws -> [WatermarkRecord] { try opened.watermarks(cohort: cohort) }
  /// Resources per type at a snapshot.
  public func counts(cohort: String, at exportID: Int64) throws -> [String: Int] {
    try opened.counts(cohort: cohort, at: exportID)
  }
  /// Per type, each patient's resource count at a snapshot (no patient ids).
  public func perPatientCounts(cohort: String, at exportID: Int64) throws -> [String: [Int]] {
    try opened.perPatientCounts(cohort: cohort, at: exportID)
  }
  public func members(cohort: String, at exportID: Int64) throws -> [String] {
    try opened.members(cohort: cohort, at: exportID)
  }
  public func diff(cohort: String, from a: Int64, to b: Int64, type: String?) throws -> SnapshotDiff {
    try opened.diff(cohort: cohort, from: a, to: b, type: type)
  }

  // MARK: Workflows bound to this workspace

  /// Snapshot references, summary and show (`pinned`: a frozen replay's newest snapshot per cohort).
  public func snapshotReader(pinned: [String: Int]? = nil) throws -> Snapshots {
    Snapshots(store: try opened, workspace: self, pinned: pinned)
  }

  public func report(cohort: String, pinned: [String: Int]? = nil) throws -> CohortReport {
    try CohortReport.build(store: opened, cohort: cohort, pinned: pinned)
  }

  public func exporter(
    factory: ClientFactory, events: @escaping @Sendable (BulkEvent) -> Void, note: @escaping @Sendable (String) -> Void
  ) throws -> Exporter {
    Exporter(workspace: self, store: try opened, factory: factory, events: events, note: note)
  }

  /// A run record's servers and exports: every export after `afterExportID` of the cohorts the run touched.
  public func collect(_ record: inout RunRecord, afterExportID: Int64) throws {
    try record.collect(store: opened, workspace: self, afterExportID: afterExportID)
  }

  public func runView(
    _ spec: ViewSpec, cohort: String, at exportID: Int64, workers: Int? = nil, onRow: (ViewRow) throws -> Void
  ) throws -> ViewRunStats {
    try ViewRunner.run(spec, store: opened, workspace: self, cohort: cohort, at: exportID, workers: workers, onRow: onRow)
  }

  public func materializeView(_ spec: ViewSpec, name: String, cohort: String, snapshot: ExportRecord) throws
    -> MaterializedView
  {
    try ViewAnalysis.materialize(spec, name: name, store: opened, workspace: self, cohort: cohort, snapshot: snapshot)
  }

  public func diffView(_ spec: ViewSpec, cohort: String, from a: Int64, to b: Int64) throws
    -> (added: [ViewRow], removed: [ViewRow])
  {
    try ViewAnalysis.diff(spec, store: opened, workspace: self, cohort: cohort, from: a, to: b)
  }
}
