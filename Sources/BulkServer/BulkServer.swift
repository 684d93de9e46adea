import Foundation
import GRDB
import Hummingbird
import HummingbirdCore
import Logging
import ServiceLifecycle
import UnixSignals
import NIOCore
import Synchronization

/// An embedded FHIR Bulk Data server with a deterministic synthetic population.
public final class BulkDataServer: Sendable {
  public static let softwareName = "cohort BulkServer"
  public static let version = "0.1.0"

  let core: ServerCore
  private let main: Listener
  /// The second listener ("another origin", `otherOriginHost`), started for the `otherOrigin…` faults.
  private let other = Mutex<Listener?>(nil)
  private let otherStart = OtherOriginStart()
  private let temporaryRoot: String?
  public let port: Int
  public let host: String

  /// The FHIR base URL (endpoints at the root), e.g. `http://127.0.0.1:PORT`.
  public var baseURL: String { core.baseURL }

  private init(core: ServerCore, main: Listener, temporaryRoot: String?, port: Int, host: String) {
    self.core = core
    self.main = main
    self.temporaryRoot = temporaryRoot
    self.port = port
    self.host = host
  }

  /// Opens (or creates) the state, then listens; returns once the socket is bound.
  public static func start(_ configuration: BulkServerConfiguration) async throws -> BulkDataServer {
    let scratch = Mutex<String?>(nil)
    do {
      return try await start(configuration, scratch: scratch)
    } catch {
      // Remove the temporary state of a server that never started.
      if let root = scratch.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: root) }
      throw error
    }
  }

  private static func start(_ configuration: BulkServerConfiguration, scratch: borrowing Mutex<String?>) async throws
    -> BulkDataServer
  {
    let config = configuration
    guard let start = Instant.parse(config.startTime) else {
      throw BulkServerError.invalidConfiguration("startTime '\(config.startTime)' is not a FHIR instant")
    }
    guard config.patients >= 1 else { throw BulkServerError.invalidConfiguration("patients must be at least 1") }
    guard config.resourcesPerFile >= 1 else { throw BulkServerError.invalidConfiguration("resourcesPerFile must be at least 1") }
    var smartClients: [String: [RegisteredKey]] = [:]
    if case .smart(let clients) = config.auth {
      guard !clients.isEmpty else { throw BulkServerError.invalidConfiguration("SMART auth needs at least one registered client") }
      for (id, jwks) in clients { smartClients[id] = try JWKS.keys(from: jwks) }
    }
    if case .bearer(let token) = config.auth, token.isEmpty {
      throw BulkServerError.invalidConfiguration("the bearer token is empty")
    }

    // State: the --state file, or a temporary one.
    var temporaryRoot: String? = nil
    let statePath: String
    let filesRoot: String
    if let path = config.statePath {
      statePath = path
      filesRoot = path + ".files"
    } else {
      let root = NSTemporaryDirectory() + "cohort-bulkserver-" + UUID().uuidString
      try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
      temporaryRoot = root
      scratch.withLock { $0 = root }
      statePath = root + "/state.sqlite"
      filesRoot = root + "/files"
    }
    try? FileManager.default.createDirectory(atPath: filesRoot, withIntermediateDirectories: true)
    let pool: DatabasePool
    do {
      pool = try DatabasePool(path: statePath)
      try Dataset.migrator.migrate(pool)
    } catch {
      throw BulkServerError.state(path: statePath, reason: "\(error)")
    }

    // First start: record the seed and population; later starts keep what the state says.
    let (seed, basePatients, imported, clock, jobCounter) = try await pool.write { db -> (UInt64, Int, Bool, Int, Int) in
      if try Dataset.meta(db, "seed") == nil {
        var patients = config.patients
        var imported = false
        if let dir = config.dataDirectory {
          patients = try DataImporter.importDirectory(dir, into: db, lastUpdated: start - 86400)
          imported = true
        }
        try Dataset.setMeta(db, "seed", String(config.seed))
        try Dataset.setMeta(db, "basePatients", String(patients))
        try Dataset.setMeta(db, "patientCount", String(patients))
        try Dataset.setMeta(db, "imported", imported ? "1" : "0")
        try Dataset.setMeta(db, "clock", String(start))
        try Dataset.setMeta(db, "startTime", String(start))
        try Dataset.setMeta(db, "day", "0")
        try Dataset.setMeta(db, "jobCounter", "0")
      }
      return (
        UInt64(try Dataset.meta(db, "seed") ?? "1") ?? 1, try Dataset.metaInt(db, "basePatients") ?? 0,
        try Dataset.meta(db, "imported") == "1", try Dataset.metaInt(db, "clock") ?? start,
        try Dataset.metaInt(db, "jobCounter") ?? 0
      )
    }
    let storedStart = try await pool.read { db in try Dataset.metaInt(db, "startTime") } ?? start
    let generator = Generator(seed: seed, startTime: storedStart)
    let dataset = Dataset(pool: pool, generator: generator, imported: imported, basePatients: basePatients)
    let types = try dataset.resourceTypes()

    // Jobs that survived a restart.
    let jobs = try await pool.read { db -> [Int: JobRuntime] in
      var out: [Int: JobRuntime] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT * FROM jobs") {
        let id: Int = row["id"]
        let state: String = row["state"]
        var phase = JobPhase.failed("the server restarted while this export was running; start a new export")
        if state == "complete", let text: String = row["files"],
          let files = try? JSONDecoder().decode([ExportFile].self, from: Data(text.utf8))
        {
          phase = .complete(files)
        } else if state == "failed" {
          phase = .failed(row["error"] ?? "export failed")
        }
        out[id] = JobRuntime(
          id: id, phase: phase, transactionTime: row["transaction_time"], request: row["request"],
          requiresToken: (row["requires_token"] as Int) != 0, since: row["since"], types: [], directory: filesRoot + "/job-\(id)")
        out[id]?.pendingServed = Int.max / 2
      }
      return out
    }

    let state = ServerState(dataset: dataset, filesRoot: filesRoot, clock: clock, jobCounter: jobCounter, faults: config.faults, jobs: jobs,
      tokenClock: config.tokenClock)
    let core = ServerCore(config: config, state: state, dataset: dataset, types: types, smartClients: smartClients)

    let signals: [UnixSignal] = config.handleSignals ? [.sigint, .sigterm] : []
    let main = try await Listener.start(
      responder: BulkResponder(core: core, log: core.log), host: config.host, port: config.port, signals: signals)
    let hostPart = config.host.contains(":") ? "[\(config.host)]" : config.host
    core.baseURL = "http://\(hostPart):\(main.port)"
    let server = BulkDataServer(core: core, main: main, temporaryRoot: temporaryRoot, port: main.port, host: config.host)
    if config.faults.needsOtherOrigin {
      do {
        try await server.startOtherOrigin()
      } catch {
        await server.stop()
        throw error
      }
    }
    return server
  }

  /// Starts the other-origin listener once (same content, its own request log).
  func startOtherOrigin() async throws {
    try await otherStart.run {
      if self.other.withLock({ $0 }) != nil { return }
      let host = self.core.config.otherOriginHost
      let listener = try await Listener.start(
        responder: BulkResponder(core: self.core, log: self.core.otherLog), host: host, port: 0, signals: [])
      let hostPart = host.contains(":") ? "[\(host)]" : host
      self.other.withLock { $0 = listener }
      self.core.otherBaseURL = "http://\(hostPart):\(listener.port)"
    }
  }

  /// Moves the simulated clock by `days` and changes the data (new visits, updates, deletions,
  /// patients joining and leaving Groups). Kick-offs wait while it runs. `rate` (0 < rate ≤ 1): about that
  /// fraction of the resources changes over the whole advance (default: ≈ 25 % in 7 days).
  public func advance(days: Int = 1, rate: Double? = nil) async throws -> AdvanceReport {
    guard days >= 1 else { throw BulkServerError.invalidConfiguration("advance needs at least 1 day") }
    if let rate, !(rate > 0 && rate <= 1) {
      throw BulkServerError.invalidConfiguration("the change rate must be above 0 and at most 1")
    }
    return try await core.state.advance(days: days, seed: core.dataset.generator.seed, rate: rate)
  }

  /// Sets the fault switches and modes (counters start again). An `otherOrigin…` fault starts the
  /// other-origin listener first; if it cannot listen (127.0.0.2 is not a loopback address on every
  /// system), those URLs point at a closed port of that host instead.
  public func setFaults(_ faults: Faults) async {
    if faults.needsOtherOrigin { try? await startOtherOrigin() }
    await core.state.setFaults(faults)
  }

  /// The other origin's base URL (`http://127.0.0.2:PORT`), once an `otherOrigin…` fault started its listener.
  public var otherOriginURL: String? { core.otherBaseURL }

  /// Every request the other origin received (method, path, headers), in order.
  public var otherOriginRequestLog: [RecordedRequest] { get async { core.otherLog.all } }

  /// The `Authorization` header of every request the other origin received that carried one.
  /// A client that keeps its token to the server's origin leaves this empty.
  public var otherOriginAuthorizationHeaders: [String] {
    get async { core.otherLog.all.compactMap { $0.header("Authorization") } }
  }

  /// The simulated clock, as a FHIR instant.
  public var clock: String { get async { Instant.format(await core.state.clock) } }

  public var requestLog: [RecordedRequest] { get async { core.log.all } }

  /// Stops listening and removes temporary state.
  public func stop() async {
    if let other = other.withLock({ $0 }) { await other.stop() }
    await main.stop()
    for job in await core.state.jobs.values { job.cancel.cancel() }
    if let temporaryRoot { try? FileManager.default.removeItem(atPath: temporaryRoot) }
  }

  /// Waits until the server stops (for `cohort serve` in the foreground).
  public func waitUntilStopped() async throws {
    do {
      try await main.runTask.value
    } catch is CancellationError {
    }
  }
}

/// One Hummingbird application listening on one address.
struct Listener: Sendable {
  let serviceGroup: ServiceGroup
  let runTask: Task<Void, any Error>
  let port: Int

  static func start(responder: BulkResponder, host: String, port: Int, signals: [UnixSignal]) async throws -> Listener {
    var logger = Logger(label: "cohort.BulkServer")
    logger.logLevel = .warning
    let started = StartSignal()
    let app = Application(
      responder: responder,
      server: .http1(configuration: HTTP1Channel.Configuration(additionalChannelHandlers: [CloseDelimited.Installer()])),
      configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
      onServerRunning: { channel in started.fire(.success(channel.localAddress?.port ?? 0)) },
      logger: logger)
    let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: signals, logger: logger))
    let runTask = Task {
      do {
        try await group.run()
        started.fire(.failure(BulkServerError.invalidConfiguration("the server stopped before it started listening")))
      } catch {
        started.fire(.failure(error))
        throw error
      }
    }
    do {
      let bound = try await started.wait()
      return Listener(serviceGroup: group, runTask: runTask, port: bound)
    } catch {
      runTask.cancel()
      throw BulkServerError.invalidConfiguration("cannot listen on \(host):\(port): \(error)")
    }
  }

  func stop() async {
    await serviceGroup.triggerGracefulShutdown()
    // Idle keep-alive connections (and endless bodies) can hold a graceful shutdown open; cut it short.
    let runTask = self.runTask
    let watchdog = Task {
      try await Task.sleep(nanoseconds: 2_000_000_000)
      runTask.cancel()
    }
    _ = try? await runTask.value
    watchdog.cancel()
  }
}

/// Runs the other-origin start once (callers at the same time share it; a failure can be retried).
actor OtherOriginStart {
  private var task: Task<Void, any Error>?

  func run(_ body: @escaping @Sendable () async throws -> Void) async throws {
    if let task { return try await task.value }
    let t = Task { try await body() }
    task = t
    do {
      try await t.value
    } catch {
      task = nil
      throw error
    }
  }
}

/// Resumed once, with the bound port or the failure.
final class StartSignal: Sendable {
  private let state = Mutex<(result: Result<Int, any Error>?, waiter: CheckedContinuation<Int, any Error>?)>((nil, nil))

  func fire(_ result: Result<Int, any Error>) {
    let waiter: CheckedContinuation<Int, any Error>? = state.withLock { s in
      if s.result != nil { return nil }
      s.result = result
      let w = s.waiter
      s.waiter = nil
      return w
    }
    waiter?.resume(with: result)
  }

  func wait() async throws -> Int {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<Int, any Error>) in
      let ready: Result<Int, any Error>? = state.withLock { s in
        if let r = s.result { return r }
        s.waiter = c
        return nil
      }
      if let ready { c.resume(with: ready) }
    }
  }
}

/// Figures from `BulkDataServer.benchmarkGenerate`.
public struct GenerationBenchmark: Sendable, Codable {
  public var patients: Int
  public var resources: Int
  public var bytes: Int
  public var seconds: Double
  public var resourcesPerSecond: Double { seconds > 0 ? Double(resources) / seconds : 0 }
  public var megabytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds / 1_000_000 : 0 }
}

extension BulkDataServer {
  /// Generates and serializes `patients` patients (no I/O) and reports the rate. Memory stays flat:
  /// one patient at a time, as in an export.
  public static func benchmarkGenerate(patients: Int, seed: UInt64 = 1, startTime: String = "2026-01-05T09:00:00Z")
    -> GenerationBenchmark
  {
    let generator = Generator(seed: seed, startTime: Instant.parse(startTime) ?? 0)
    let clock = ContinuousClock()
    var resources = 0
    var bytes = 0
    let elapsed = clock.measure {
      for i in 0..<patients {
        for r in generator.patient(i) {
          resources += 1
          bytes += r.bytes().count + 1
        }
      }
    }
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return GenerationBenchmark(patients: patients, resources: resources, bytes: bytes, seconds: seconds)
  }
}
