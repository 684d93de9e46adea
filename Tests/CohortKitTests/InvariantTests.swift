import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// The invariant as an executable model: after any sequence of exports — full, incremental, `--type` subsets,
/// side exports, interrupted-then-resumed, reconcile — interleaved with the server's clinic days (creates,
/// updates, deletes, joiners, leavers), the cohort's state (Type/id#hash and members) equals what a fresh full
/// export of its definition returns at that moment. The seed is printed; `COHORT_MODEL_SEED=N` replays it and
/// `COHORT_MODEL_STEPS=5000` runs the long version.
@Suite("The cohort's state is the truth (model)")
struct InvariantTests {
  static var steps: Int { Int(ProcessInfo.processInfo.environment["COHORT_MODEL_STEPS"] ?? "") ?? 60 }
  /// Steps per episode: each episode is a fresh server and workspace. The built-in server's clinic grows every
  /// simulated day (a new patient, visits), so one endless scenario costs O(steps²); episodes keep the long run
  /// O(steps) while each still interleaves hundreds of exports with the server's changes.
  static var episodeSteps: Int { Int(ProcessInfo.processInfo.environment["COHORT_MODEL_EPISODE"] ?? "") ?? 250 }
  /// The seed given (`COHORT_MODEL_SEED`) or a random one.
  static let rawSeed: UInt64 = {
    if let text = ProcessInfo.processInfo.environment["COHORT_MODEL_SEED"], let seed = UInt64(text) { return seed }
    return UInt64.random(in: 1...UInt64(Int32.max))
  }()

  enum Flavour: String, CaseIterable, Sendable {
    case standard, noDeleted, ignoresPatient
  }

  @Test("random scenarios against the built-in server", arguments: Flavour.allCases)
  func randomScenario(flavour: Flavour) async throws {
    if let only = ProcessInfo.processInfo.environment["COHORT_MODEL_FLAVOUR"], only != flavour.rawValue { return }
    let salt = UInt64(Flavour.allCases.firstIndex(of: flavour)!) * 7919
    var remaining = Self.steps
    var episode: UInt64 = 0
    while remaining > 0 {
      let steps = min(remaining, Self.episodeSteps)
      // Replaying one episode alone: COHORT_MODEL_SEED=raw (printed) with its flavour and step count.
      let raw = Self.rawSeed &+ episode &* 104_729
      print(
        "model (\(flavour.rawValue)): seed \(raw &+ salt), \(steps) steps — replay with COHORT_MODEL_SEED=\(raw) COHORT_MODEL_FLAVOUR=\(flavour.rawValue) COHORT_MODEL_STEPS=\(steps)"
      )
      try await runEpisode(flavour: flavour, seed: raw &+ salt, steps: steps)
      remaining -= steps
      episode += 1
    }
  }

  func runEpisode(flavour: Flavour, seed: UInt64, steps: Int) async throws {
    var rng = ModelRNG(seed: seed)
    try await withFixture({ config in
      config.patients = 12
      config.resourcesPerFile = 25
      config.pollsBeforeComplete = 0
      config.seed = seed
      switch flavour {
      case .standard: break
      case .noDeleted: config.faults.noDeleted = true
      case .ignoresPatient: config.faults.ignorePatient = true
      }
    }) { f in
      let allTypes = ["Patient", "Encounter", "Condition", "Observation"]
      let definition: [String]? = rng.chance(0.3) ? nil : allTypes
      let group = rng.chance(0.5) ? "diabetes-patients" : "all-patients"
      try f.addCohort("c", group: group, types: definition?.joined(separator: ","))
      var model = Model(definition: definition, flavour: flavour)
      var controls = 0

      func compare(_ step: Int, _ action: String, types checked: [String]?) async throws {
        controls += 1
        let name = "ctl\(controls)"
        try f.addCohort(name, group: group, types: definition?.joined(separator: ","))
        _ = try await f.export(name)
        let truth = try f.latestState(name)
        let state = try f.latestState("c")
        func only(_ set: Set<String>) -> Set<String> {
          guard let checked else { return set }
          return set.filter { checked.contains(String($0.prefix { $0 != "/" })) }
        }
        let context = "seed \(seed) step \(step) (\(action))"
        if model.deletionsMayLinger {
          let missing = only(truth).subtracting(only(state))
          #expect(missing.isEmpty, "\(context): missing \(missing.sorted().prefix(5))")
        } else {
          let missing = only(truth).subtracting(only(state))
          let extra = only(state).subtracting(only(truth))
          var detail = ""
          for item in extra.sorted().prefix(3) {
            let ref = item.prefix { $0 != "#" }.split(separator: "/")
            let versions = try f.store.locate(cohort: "c", type: String(ref[0]), id: String(ref[1]), at: nil)
            detail += " \(item): " + versions.map { "[\($0.validFrom)..\($0.validTo.map(String.init) ?? "") \($0.file)]" }.joined()
          }
          #expect(missing.isEmpty && extra.isEmpty, "\(context): missing \(missing.sorted().prefix(5)), extra \(extra.sorted().prefix(5))\(detail)")
        }
        if checked == nil {
          #expect(try f.store.currentMembers(cohort: "c") == f.store.currentMembers(cohort: name), "\(context): members")
        }
        if ProcessInfo.processInfo.environment["COHORT_MODEL_TRACE"] != nil {
          print("  members after step \(step): \(try f.store.currentMembers(cohort: "c").sorted())")
        }
        try f.store.removeCohort(named: name)
      }

      _ = try await f.export("c")
      try await compare(0, "first full export", types: nil)
      for step in 1...steps {
        let roll = rng.below(100)
        var options = ExportOptions()
        let action: String
        switch roll {
        case 0..<30:
          let days = 1 + rng.below(2)
          let report = try await f.server.advance(days: days)
          if ProcessInfo.processInfo.environment["COHORT_MODEL_TRACE"] != nil {
            print("step \(step) advance \(days): +\(report.addedCount) ~\(report.updatedCount) -\(report.deletedCount) joined \(report.joined[group] ?? []) left \(report.left[group] ?? []) deleted \(report.deleted)")
          }
          continue
        case 30..<42:
          action = "full"
          options.full = true
        case 42..<70:
          action = "incremental"
          options.incremental = true
        case 70..<80:
          let subset = rng.subset(of: definition ?? allTypes)
          action = "incremental --type \(subset.joined(separator: ","))"
          options.incremental = true
          options.types = subset
        case 80..<85:
          let subset = rng.subset(of: definition ?? allTypes)
          action = "full --type \(subset.joined(separator: ","))"
          options.types = subset
        case 85..<90:
          // A side export changes nothing: state and watermarks stay as they were.
          let before = try f.latestState("c")
          let marks = try f.store.watermarks(cohort: "c")
          options.typeFilters = ["Observation?code=http://loinc.org|4548-4"]
          options.incremental = rng.chance(0.5)
          let out = try await f.export("c", options)
          #expect(out.export.side, "seed \(seed) step \(step): a filtered export is a side export")
          #expect(try f.latestState("c") == before, "seed \(seed) step \(step): a side export changed the state")
          #expect(try f.store.watermarks(cohort: "c") == marks, "seed \(seed) step \(step): a side export moved watermarks")
          continue
        case 90..<95:
          action = "interrupted incremental, then resumed"
          options.incremental = true
          let seen = Box(0)
          let stopAt = 1 + rng.below(6)
          let task = Box<Task<ExportOutcome, any Error>?>(nil)
          let exporter = f.exporter(onEvent: { event in
            if seen.mutate({ $0 += 1; return $0 }) == stopAt { task.value?.cancel() }
          })
          let interrupted = options
          let running = Task { try await exporter.export(cohortName: "c", options: interrupted) }
          task.value = running
          if seen.value >= stopAt { running.cancel() }
          do {
            _ = try await running.value
          } catch let error as ExportError {
            guard case .interrupted = error else { throw error }
            _ = try await f.export("c")
          }
          model.exported(options)
          try await compare(step, action, types: nil)
          continue
        default:
          if flavour == .noDeleted || rng.chance(0.3) {
            action = "reconcile"
            options.reconcile = true
          } else {
            action = "incremental"
            options.incremental = true
          }
        }
        let out = try await f.export("c", options)
        if ProcessInfo.processInfo.environment["COHORT_MODEL_TRACE"] != nil {
          print("step \(step) \(action): +\(out.ingest.added) ~\(out.ingest.changed) -\(out.ingest.removed) joined \(out.ingest.joined) left \(out.ingest.left) jobs \(out.jobs.map { "\($0.role.rawValue):\($0.types ?? "*")@\($0.since ?? "full")" })")
        }
        model.exported(options)
        let checked = options.types.isEmpty ? nil : options.types
        try await compare(step, action, types: checked)
      }
    }
  }
}

/// What the model knows beyond the server: whether deletions may linger (a server that never reports them,
/// since the last full export or reconcile).
struct Model {
  var definition: [String]?
  var flavour: InvariantTests.Flavour
  var deletionsMayLinger = false

  mutating func exported(_ options: ExportOptions) {
    guard flavour == .noDeleted else { return }
    let everyType = options.types.isEmpty
    let fullPull = !options.incremental && options.since == nil && !options.reconcile
    deletionsMayLinger = !(everyType && (fullPull || options.reconcile))
  }
}

/// SplitMix64: small, seeded, reproducible.
struct ModelRNG {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
  mutating func chance(_ p: Double) -> Bool { Double(next() % 10_000) / 10_000 < p }
  mutating func subset(of items: [String]) -> [String] {
    var out = items.filter { _ in chance(0.5) }
    if out.isEmpty { out = [items[below(items.count)]] }
    return out
  }
}
