import CohortStore
import Foundation
import NDJSON

/// Read-side workflows: snapshots, summary, diff, history, show.
public struct Snapshots: Sendable {
  @_spi(Store) public let store: Store
  public let workspace: Workspace
  /// Replays of a recorded run: per cohort, the newest snapshot that existed at that point.
  public var pinned: [String: Int]?
  public init(store: Store, workspace: Workspace, pinned: [String: Int]? = nil) {
    self.store = store
    self.workspace = workspace
    self.pinned = pinned
  }

  /// Committed snapshots, newest last (limited by `pinned`).
  public func snapshots(cohort: String) throws -> [ExportRecord] {
    let all = try store.snapshots(cohort: cohort)
    guard let limit = pinned?[cohort] else { return all }
    return all.filter { $0.seq <= limit }
  }

  /// A snapshot by its number (`3`, `#3`), `latest`, `previous`, or a negative offset (`-1` = previous).
  public func resolve(cohort: String, _ reference: String?) throws -> ExportRecord {
    _ = try store.cohort(named: cohort)
    let snaps = try snapshots(cohort: cohort)
    guard !snaps.isEmpty else {
      throw KitError.failed("cohort '\(cohort)' has no snapshots yet; run `export \(cohort)` first")
    }
    let text = (reference ?? "latest").trimmingCharacters(in: CharacterSet(charactersIn: "#"))
    switch text {
    case "latest", "last": return snaps[snaps.count - 1]
    case "previous", "prev":
      guard snaps.count >= 2 else { throw KitError.failed("cohort '\(cohort)' has only one snapshot") }
      return snaps[snaps.count - 2]
    default:
      if let n = Int(text), n < 0, snaps.count + n - 1 >= 0 { return snaps[snaps.count + n - 1] }
      if let n = Int(text), let snap = snaps.first(where: { $0.seq == n }) { return snap }
      throw KitError.invalidArgument(
        "no snapshot '\(reference ?? "")' of \(cohort) (snapshots: \(snaps.map { String($0.seq) }.joined(separator: ", ")); also latest, previous)")
    }
  }

  public struct SummaryRow: Sendable, Equatable {
    public var type: String
    public var count: Int
    public var change: Int?
  }

  /// Resources per type at a snapshot, with the change since the previous snapshot.
  public func summary(cohort: String, at reference: String?) throws -> (snapshot: ExportRecord, rows: [SummaryRow]) {
    let snap = try resolve(cohort: cohort, reference)
    let counts = try store.counts(cohort: cohort, at: snap.id!)
    let snaps = try snapshots(cohort: cohort)
    var previous: [String: Int]?
    if let index = snaps.firstIndex(where: { $0.id == snap.id }), index > 0 {
      previous = try store.counts(cohort: cohort, at: snaps[index - 1].id!)
    }
    let types = Set(counts.keys).union(previous?.keys ?? [:].keys).sorted()
    let rows = types.map { t in
      SummaryRow(type: t, count: counts[t] ?? 0, change: previous.map { (counts[t] ?? 0) - ($0[t] ?? 0) })
    }
    return (snap, rows)
  }

  /// The JSON of a resource at a snapshot (or all its versions).
  public func show(cohort: String, reference: String, at: String?, allVersions: Bool) throws -> [(ResourceVersion, Data)] {
    let parts = reference.split(separator: "/")
    guard parts.count == 2 else {
      throw KitError.invalidArgument("expected Type/id, e.g. Patient/123, not '\(reference)'")
    }
    let exportID: Int64? = allVersions ? nil : try resolve(cohort: cohort, at).id
    let versions = try store.locate(cohort: cohort, type: String(parts[0]), id: String(parts[1]), at: exportID)
    guard !versions.isEmpty else {
      throw KitError.failed("\(reference) is not in cohort \(cohort)\(allVersions ? "" : " at that snapshot")")
    }
    return try versions.map { version in
      let path = workspace.cohortFolder(cohort) + "/" + version.file
      guard FileManager.default.fileExists(atPath: path) else {
        throw KitError.failed("the file \(path) holding \(reference) is missing; run `verify` or export again")
      }
      return (version, try NDJSONFile.readLine(path: path, offset: version.offset, length: version.length))
    }
  }
}
