import CohortBasics
import CohortStore
import Foundation

/// What `report COHORT` shows, gathered from the store: the cohort's definition, every export, counts per
/// type and membership per snapshot, the last diff and the watermarks. Only counts leave this type:
/// patient ids are used to count joiners and leavers and are never stored in it.
public struct CohortReport: Sendable {
  public struct Export: Sendable, Equatable {
    public var seq: Int
    public var kind: String
    public var startedAt: String
    public var finishedAt: String?
    /// Wall-clock seconds from start to finish (nil while unfinished).
    public var seconds: Double?
    /// committed, failed, cancelled, partial… (the phase while unfinished).
    public var outcome: String
    public var committed: Bool
    public var since: String?
    public var types: String?
    public var transactionTime: String?
    public var files: Int
    public var resources: Int
    public var bytes: Int64
    public var serverSoftware: String?
    public var error: String?
  }

  public struct Snapshot: Sendable, Equatable {
    public var seq: Int
    public var kind: String
    public var transactionTime: String?
    /// Resources per type in the cohort's state at this snapshot.
    public var counts: [String: Int]
    public var members: Int
    /// Patients who joined / left since the previous snapshot (nil for the first).
    public var joined: Int?
    public var left: Int?
    public var total: Int { counts.values.reduce(0, +) }
  }

  public struct DiffRow: Sendable, Equatable {
    public var type: String
    public var added: Int
    public var changed: Int
    public var removed: Int
    public var unchanged: Int
  }

  public struct LastDiff: Sendable, Equatable {
    public var from: Int
    public var to: Int
    public var rows: [DiffRow]
  }

  public struct Watermark: Sendable, Equatable {
    public var type: String
    public var transactionTime: String
    public var snapshot: Int?
  }

  public var cohort: CohortRecord
  /// The server's base URL (without any user:password part).
  public var serverURL: String?
  public var exports: [Export]
  public var snapshots: [Snapshot]
  /// Every resource type seen in any snapshot, sorted.
  public var types: [String]
  public var lastDiff: LastDiff?
  public var watermarks: [Watermark]
  public var generatedAt: String

  /// Gathers the report of one cohort (`pinned`: a frozen replay's newest snapshot per cohort).
  public static func build(store: Store, cohort name: String, pinned: [String: Int]? = nil, now: String = isoNow())
    throws -> CohortReport
  {
    let cohort = try store.cohort(named: name)
    let server = try? store.server(named: cohort.server)
    let limit = pinned?[name]
    let all = try store.exports(cohort: name).filter { limit == nil || $0.seq <= limit! }
    let exports = all.map { e -> Export in
      var seconds: Double?
      if let end = e.finishedAt, let a = parseInstant(e.startedAt), let b = parseInstant(end) {
        seconds = max(0, b.timeIntervalSince(a))
      }
      return Export(
        seq: e.seq, kind: e.kind, startedAt: e.startedAt, finishedAt: e.finishedAt, seconds: seconds,
        outcome: e.outcome ?? e.phase.rawValue, committed: e.phase == .committed, since: e.since, types: e.types,
        transactionTime: e.transactionTime, files: e.files, resources: e.resources, bytes: e.bytes,
        serverSoftware: e.serverSoftware, error: e.error)
    }
    var snapshots: [Snapshot] = []
    var previous: Set<String>?
    var types = Set<String>()
    let committed = all.filter { $0.phase == .committed }
    for snap in committed {
      let counts = try store.counts(cohort: name, at: snap.id!)
      types.formUnion(counts.keys)
      let members = Set(try store.members(cohort: name, at: snap.id!))
      snapshots.append(
        Snapshot(
          seq: snap.seq, kind: snap.kind, transactionTime: snap.transactionTime, counts: counts, members: members.count,
          joined: previous.map { members.subtracting($0).count }, left: previous.map { $0.subtracting(members).count }))
      previous = members
    }
    var lastDiff: LastDiff?
    if committed.count >= 2 {
      let a = committed[committed.count - 2]
      let b = committed[committed.count - 1]
      let diff = try store.diff(cohort: name, from: a.id!, to: b.id!, type: nil)
      lastDiff = LastDiff(
        from: a.seq, to: b.seq,
        rows: diff.types.map { t in
          DiffRow(
            type: t, added: diff.added[t]?.count ?? 0, changed: diff.changed[t]?.count ?? 0,
            removed: diff.removed[t]?.count ?? 0, unchanged: diff.unchanged[t] ?? 0)
        })
    }
    let seqs = Dictionary(uniqueKeysWithValues: all.map { ($0.id!, $0.seq) })
    let watermarks = try store.watermarks(cohort: name).map {
      Watermark(type: $0.resourceType, transactionTime: $0.transactionTime, snapshot: seqs[$0.exportID])
    }
    return CohortReport(
      cohort: cohort, serverURL: server.map { withoutCredentials($0.baseURL) }, exports: exports, snapshots: snapshots,
      types: types.sorted(), lastDiff: lastDiff, watermarks: watermarks, generatedAt: now)
  }

  static func withoutCredentials(_ url: String) -> String {
    guard var components = URLComponents(string: url), components.user != nil || components.password != nil else {
      return url
    }
    components.user = nil
    components.password = nil
    return components.string ?? url
  }
}
