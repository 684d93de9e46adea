import Foundation
import GRDB
import Synchronization

final class CancelFlag: Sendable {
  private let flag = Mutex(false)
  func cancel() { flag.withLock { $0 = true } }
  var isCancelled: Bool { flag.withLock { $0 } }
}

enum JobPhase: Sendable {
  case running
  case complete([ExportFile])
  case failed(String)
}

struct JobRuntime: Sendable {
  var id: Int
  var phase: JobPhase
  var transactionTime: Int
  var request: String
  var requiresToken: Bool
  var since: Int?
  var types: [String]
  var scopeTypes: Set<String>? = nil
  var transientServed = 0
  var throttledServed = 0
  var notJSONServed = 0
  var pendingServed = 0
  var manifestsServed = 0
  var cancel = CancelFlag()
  var directory: String
}

struct IssuedToken: Sendable {
  /// On the token clock (`TokenClock.now`).
  var expires: Duration
  var scopes: [String]
}

/// The configuration's token clock read as durations since the server started (instants of an
/// `any Clock<Duration>` have no common type).
struct TokenClock: Sendable {
  private let elapsed: @Sendable () -> Duration
  init(_ clock: any Clock<Duration>) { elapsed = Self.reader(clock) }
  private static func reader<C: Clock<Duration>>(_ clock: C) -> @Sendable () -> Duration {
    let origin = clock.now
    return { origin.duration(to: clock.now) }
  }
  var now: Duration { elapsed() }
}

/// Mutable server state: the clock, jobs, fault counters and tokens. Kick-offs and advances
/// are serialized here, so an export's transactionTime never falls inside an advance.
actor ServerState {
  let dataset: Dataset
  let filesRoot: String
  private(set) var clock: Int
  private var jobCounter: Int
  var faults: Faults
  private var kickoff429Served = 0
  var jobs: [Int: JobRuntime] = [:]
  private var fileRequests: [String: Int] = [:]
  private var tokens: [String: IssuedToken] = [:]
  nonisolated let tokenClock: TokenClock
  private var jtis: [String: Int] = [:]
  private var advancing = false
  private var waiters: [CheckedContinuation<Void, Never>] = []

  init(
    dataset: Dataset, filesRoot: String, clock: Int, jobCounter: Int, faults: Faults, jobs: [Int: JobRuntime],
    tokenClock: any Clock<Duration>
  ) {
    self.tokenClock = TokenClock(tokenClock)
    self.dataset = dataset
    self.filesRoot = filesRoot
    self.clock = clock
    self.jobCounter = jobCounter
    self.faults = faults
    self.jobs = jobs
  }

  func setFaults(_ f: Faults) {
    faults = f
    kickoff429Served = 0
    fileRequests = [:]
    for id in jobs.keys {
      jobs[id]?.transientServed = 0
      jobs[id]?.throttledServed = 0
      jobs[id]?.notJSONServed = 0
    }
  }

  /// True when this kick-off must be answered 429.
  func takeKickoff429() -> Bool {
    if kickoff429Served < faults.kickoff429 {
      kickoff429Served += 1
      return true
    }
    return false
  }

  private func waitForAdvance() async {
    while advancing {
      await withCheckedContinuation { waiters.append($0) }
    }
  }

  /// Assigns the next job id and transactionTime (the clock ticks by one second per kick-off).
  func beginJob(request: String, requiresToken: Bool, since: Int?, types: [String]) async throws -> JobRuntime {
    await waitForAdvance()
    clock += 1
    jobCounter += 1
    let id = jobCounter
    let t = clock
    let dir = filesRoot + "/job-\(id)"
    try? FileManager.default.removeItem(atPath: dir)
    do {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    } catch {
      throw BulkServerError.io(path: dir, reason: "\(error)")
    }
    // A synchronous write: no suspension between assigning the time and recording it.
    try ServerState.recordJob(dataset.pool, id: id, time: t, request: request, requiresToken: requiresToken, since: since)
    let job = JobRuntime(
      id: id, phase: .running, transactionTime: t, request: request, requiresToken: requiresToken, since: since,
      types: types, directory: dir)
    jobs[id] = job
    return job
  }

  static func recordJob(_ pool: DatabasePool, id: Int, time t: Int, request: String, requiresToken: Bool, since: Int?) throws {
    try pool.write { db in
      try Dataset.setMeta(db, "clock", String(t))
      try Dataset.setMeta(db, "jobCounter", String(id))
      try db.execute(
        sql: "INSERT OR REPLACE INTO jobs(id, state, transaction_time, request, requires_token, since, files, error) VALUES (?, 'running', ?, ?, ?, ?, NULL, NULL)",
        arguments: [id, t, request, requiresToken ? 1 : 0, since])
    }
  }

  static func syncWrite(_ pool: DatabasePool, _ sql: String, _ arguments: StatementArguments) {
    try? pool.write { db in try db.execute(sql: sql, arguments: arguments) }
  }

  func finishJob(_ id: Int, _ phase: JobPhase) {
    guard jobs[id] != nil else { return }
    jobs[id]?.phase = phase
    let filesJSON: String?
    let error: String?
    let state: String
    switch phase {
    case .running: return
    case .complete(let files):
      state = "complete"
      filesJSON = (try? JSONEncoder().encode(files)).map { String(decoding: $0, as: UTF8.self) }
      error = nil
    case .failed(let why):
      state = "failed"
      filesJSON = nil
      error = why
    }
    ServerState.syncWrite(dataset.pool, "UPDATE jobs SET state = ?, files = ?, error = ? WHERE id = ?", [state, filesJSON, error, id])
  }

  func deleteJob(_ id: Int) -> Bool {
    guard let job = jobs.removeValue(forKey: id) else { return false }
    job.cancel.cancel()
    try? FileManager.default.removeItem(atPath: job.directory)
    ServerState.syncWrite(dataset.pool, "DELETE FROM jobs WHERE id = ?", [id])
    return true
  }

  func job(_ id: Int) -> JobRuntime? { jobs[id] }

  enum PollAnswer {
    case transient
    case throttled
    case pending(poll: Int, of: Int)
    case ready(JobRuntime)
    case gone
  }

  /// Counts a status request and says what to answer (before waiting for the job's files).
  func poll(_ id: Int, pollsBeforeComplete: Int) -> PollAnswer {
    guard var job = jobs[id] else { return .gone }
    defer { jobs[id] = job }
    if job.transientServed < faults.transientPolls {
      job.transientServed += 1
      return .transient
    }
    if job.throttledServed < faults.poll429 {
      job.throttledServed += 1
      return .throttled
    }
    let needed = pollsBeforeComplete + faults.slowPolls
    if job.pendingServed < needed {
      job.pendingServed += 1
      return .pending(poll: job.pendingServed, of: needed + 1)
    }
    return .ready(job)
  }

  /// True when this complete-status answer must be a non-JSON 200 (`statusNotJSON`).
  func takeNotJSON(_ id: Int) -> Bool {
    guard let job = jobs[id], job.notJSONServed < faults.statusNotJSON else { return false }
    jobs[id]?.notJSONServed += 1
    return true
  }

  func countManifest(_ id: Int) -> Int {
    jobs[id]?.manifestsServed += 1
    return jobs[id]?.manifestsServed ?? 0
  }

  /// Counts a request for one file; returns the number of earlier requests.
  func countFileRequest(_ key: String) -> Int {
    let n = fileRequests[key] ?? 0
    fileRequests[key] = n + 1
    return n
  }

  // MARK: advance

  func advance(days: Int, seed: UInt64, rate: Double? = nil) async throws -> AdvanceReport {
    await waitForAdvance()
    advancing = true
    defer {
      advancing = false
      let w = waiters
      waiters = []
      for c in w { c.resume() }
    }
    let dataset = self.dataset
    let report = try await dataset.pool.write { db in try dataset.advance(db, days: days, seed: seed, rate: rate) }
    clock = Instant.parse(report.clock) ?? clock
    return report
  }

  // MARK: tokens

  func issueToken(scopes: [String], lifetime: Int) -> String {
    var rng = SystemRandomNumberGenerator()
    let token = (0..<4).map { _ in String(rng.next(), radix: 16).leftPad(16) }.joined()
    let now = tokenClock.now
    tokens = tokens.filter { $0.value.expires > now }
    tokens[token] = IssuedToken(expires: now + .seconds(lifetime), scopes: scopes)
    return token
  }

  func lookupToken(_ token: String) -> IssuedToken? { tokens[token] }

  /// Records a jti; false when it was already used (and has not expired).
  func useJTI(_ jti: String, exp: Int) -> Bool {
    let now = Int(Date().timeIntervalSince1970)
    jtis = jtis.filter { $0.value >= now - 60 }
    if jtis[jti] != nil { return false }
    jtis[jti] = exp
    return true
  }
}
