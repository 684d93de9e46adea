import BulkServer
@_spi(Store) import CohortKit
import CohortStore
import FHIRBulk
import CohortTestSupport
import Foundation
import Testing

/// One test's world: its own BulkDataServer on 127.0.0.1:0, a temporary workspace with the server
/// registered as `local`, and a client factory with fast policies (nothing waits real seconds).
final class Fixture: Sendable {
  let dir: String
  let server: BulkDataServer
  let workspace: Workspace
  let store: Store
  let factory: ClientFactory
  let config: BulkServerConfiguration
  let notes = Box<[String]>([])
  let events = Box<[BulkEvent]>([])
  let serverName = "local"

  private init(
    dir: String, server: BulkDataServer, workspace: Workspace, store: Store, factory: ClientFactory,
    config: BulkServerConfiguration
  ) {
    self.config = config
    self.dir = dir
    self.server = server
    self.workspace = workspace
    self.store = store
    self.factory = factory
  }

  static func start(
    downloadAttempts: Int = 3,
    _ configure: (inout BulkServerConfiguration) -> Void = { _ in }
  ) async throws -> Fixture {
    var config = BulkServerConfiguration()
    config.host = "127.0.0.1"
    config.port = 0
    config.patients = 30
    config.resourcesPerFile = 200
    configure(&config)
    let dir = NSTemporaryDirectory() + "cohortkit-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let server = try await BulkDataServer.start(config)
    do {
      let workspace = Workspace(location: WorkspaceLocation(path: dir + "/Cohorts", source: .option))
      let store = try workspace.store(create: true)
      try store.addServer(ServerRecord(name: "local", baseURL: server.baseURL))
      var factory = ClientFactory(environment: [:])
      factory.pollPolicy = .fast()
      factory.downloadPolicy = .fast(maxAttempts: downloadAttempts)
      return Fixture(dir: dir, server: server, workspace: workspace, store: store, factory: factory, config: config)
    } catch {
      await server.stop()
      try? FileManager.default.removeItem(atPath: dir)
      throw error
    }
  }

  func stop() async {
    await server.stop()
    try? FileManager.default.removeItem(atPath: dir)
  }

  @discardableResult
  func addCohort(_ name: String, group: String = "diabetes-patients", types: String? = nil) throws -> CohortRecord {
    let cohort = CohortRecord(name: name, server: serverName, groupID: group, defaultTypes: types)
    try store.addCohort(cohort)
    return cohort
  }

  /// An exporter whose notes and events are recorded; `onEvent` sees every event as it happens.
  func exporter(onEvent: (@Sendable (BulkEvent) -> Void)? = nil) -> Exporter {
    let notes = self.notes
    let events = self.events
    return Exporter(
      workspace: workspace, store: store, factory: factory,
      events: { event in
        events.mutate { $0.append(event) }
        onEvent?(event)
      },
      note: { text in notes.mutate { $0.append(text) } })
  }

  func export(_ cohort: String, _ options: ExportOptions = ExportOptions()) async throws -> ExportOutcome {
    try await exporter().export(cohortName: cohort, options: options)
  }

  func incremental(_ cohort: String) async throws -> ExportOutcome {
    var options = ExportOptions()
    options.incremental = true
    return try await export(cohort, options)
  }

  // MARK: Request log

  var requests: [RecordedRequest] { get async { await server.requestLog } }

  /// Kick-off requests (`…/$export`, GET or POST), oldest first.
  func kickoffs() async -> [RecordedRequest] {
    await requests.filter { $0.pathOnly.hasSuffix("/$export") }
  }

  // MARK: Workspace contents

  func cohortFolder(_ cohort: String) -> String { workspace.cohortFolder(cohort) }

  /// Every file (relative path) under a cohort's folder.
  func filesOnDisk(_ cohort: String) -> [String] {
    let root = cohortFolder(cohort)
    guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
    var out: [String] = []
    while let rel = walker.nextObject() as? String {
      var isDir: ObjCBool = false
      if FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue { out.append(rel) }
    }
    return out.sorted()
  }

  /// Temporary download files left behind anywhere in the workspace.
  func partFiles() -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: workspace.path) else { return [] }
    var out: [String] = []
    while let rel = walker.nextObject() as? String {
      if rel.hasSuffix(".part") { out.append(rel) }
    }
    return out
  }

  /// The `transactionTime` text of an export's saved manifest.json, exactly as written.
  func manifestTransactionTime(_ outcome: ExportOutcome) throws -> String {
    let data = try Data(contentsOf: URL(fileURLWithPath: outcome.folder + "/manifest.json"))
    guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
      let time = object["transactionTime"] as? String
    else { throw TestFailure("manifest.json of \(outcome.folder) has no transactionTime") }
    return time
  }

  // MARK: Cohort state from the index

  /// The state of a cohort at a snapshot: `Type/id#hash` of every resource valid there.
  func state(_ cohort: String, at exportID: Int64) throws -> Set<String> {
    try indexState(store, cohort: cohort, at: exportID)
  }

  /// The state at the latest snapshot of a cohort.
  func latestState(_ cohort: String) throws -> Set<String> { try latestIndexState(store, cohort: cohort) }

  /// The raw JSON of a resource at a snapshot, parsed.
  func resource(_ cohort: String, _ reference: String, at snapshot: Int) throws -> [String: Any] {
    let snaps = Snapshots(store: store, workspace: workspace)
    guard let (_, data) = try snaps.show(cohort: cohort, reference: reference, at: String(snapshot), allVersions: false).first,
      let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { throw TestFailure("\(reference) not readable in \(cohort) at #\(snapshot)") }
    return object
  }
}

/// The state of a cohort at a snapshot: `Type/id#hash` of every resource valid there.
func indexState(_ store: Store, cohort: String, at exportID: Int64) throws -> Set<String> {
  try store.stateFingerprint(cohort: cohort, at: exportID)
}

/// The state at the latest snapshot of a cohort.
func latestIndexState(_ store: Store, cohort: String) throws -> Set<String> {
  guard let last = try store.snapshots(cohort: cohort).last, let id = last.id else {
    throw TestFailure("cohort \(cohort) has no snapshot")
  }
  return try indexState(store, cohort: cohort, at: id)
}

extension RecordedRequest {
  /// The path without its query.
  var pathOnly: String { String(path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]) }

  /// Query items, percent-decoded (`+` is NOT turned into a space: FHIR instants must arrive intact).
  var query: [(name: String, value: String)] {
    guard let q = path.firstIndex(of: "?") else { return [] }
    return path[path.index(after: q)...].split(separator: "&").map { pair in
      let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      let name = String(kv[0]).removingPercentEncoding ?? String(kv[0])
      let value = kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
      return (name, value)
    }
  }

  func parameter(_ name: String) -> String? { query.first { $0.name == name }?.value }
}

/// Joins a dictionary of id lists into `Type/id` strings.
func references(_ byType: [String: [String]]) -> Set<String> {
  Set(byType.flatMap { type, ids in ids.map { "\(type)/\($0)" } })
}

/// `Type/id` of each `Type/id#hash` entry.
func keys(_ state: Set<String>) -> Set<String> {
  Set(state.map { String($0.split(separator: "#")[0]) })
}

/// The Patient id a resource belongs to (its own id for a Patient), from subject/patient/beneficiary.
func patientOf(_ resource: [String: Any]) -> String? {
  if resource["resourceType"] as? String == "Patient" { return resource["id"] as? String }
  for field in ["subject", "patient", "beneficiary"] {
    if let ref = (resource[field] as? [String: Any])?["reference"] as? String, ref.hasPrefix("Patient/") {
      return String(ref.dropFirst("Patient/".count))
    }
  }
  return nil
}

/// Runs `body` with a fresh fixture and always stops its server and removes its folder.
func withFixture(
  downloadAttempts: Int = 3, _ configure: (inout BulkServerConfiguration) -> Void = { _ in },
  _ body: (Fixture) async throws -> Void
) async throws {
  let fixture = try await Fixture.start(downloadAttempts: downloadAttempts, configure)
  do {
    try await body(fixture)
  } catch {
    await fixture.stop()
    throw error
  }
  await fixture.stop()
}
