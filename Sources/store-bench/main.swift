// store-bench: the resource index at scale, without network or files.
//
//   swift run -c release store-bench [N]        (N resources, default 1000000)
//   COHORT_STORE_TRACE=1 …                      each commit step: time, CPU, SQLite memory, pages written
//   STORE_BENCH_ROUNDS=R                        incremental rounds (default 5; the goal is judged on their median)
//
// Stages N synthetic resources (13 per patient, 6 types) file by file, commits them into an empty cohort,
// re-exports them all with 1 % changed (full pull: re-baseline every type), then commits R incremental exports
// of 1 % changed resources each (a different 1 % every round), and times summary (counts at the last two
// snapshots) and diff. Each row ends with the phase's peak RSS (VmHWM, reset before each phase through
// /proc/self/clear_refs) and SQLite's own allocation high-water mark. The incremental commit is printed as a %
// of the full commits (CPU seconds: the figure to read on a shared machine), next to the goal of issues 10 and
// 12 (an incremental with 1 % changed at ≤ 5 % of the full export's time).
import CohortStore
import Foundation

let n = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
let perPatient = 13
let patients = max(1, n / perPatient)
let types = ["Patient", "Observation", "Condition", "Encounter", "MedicationRequest", "Procedure"]
let perFile = 50_000

let dir = NSTemporaryDirectory() + "store-bench-" + UUID().uuidString
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
let keep = ProcessInfo.processInfo.environment["STORE_BENCH_KEEP"] != nil
defer { if !keep { try? FileManager.default.removeItem(atPath: dir) } }
if keep { print("keeping \(dir)") }

// Experiments on the incremental commit: STORE_BENCH_SAVE=FILE saves the database after the full re-export,
// STORE_BENCH_FROM=FILE starts from a copy of it (same N) and runs only the incrementals and queries.
let saveTo = ProcessInfo.processInfo.environment["STORE_BENCH_SAVE"]
let from = ProcessInfo.processInfo.environment["STORE_BENCH_FROM"]
if let from {
  for suffix in ["", "-wal"] { try? FileManager.default.copyItem(atPath: from + suffix, toPath: dir + "/cohort.sqlite" + suffix) }
}
let store = try Store(path: dir + "/cohort.sqlite")
if from == nil {
  try store.addServer(ServerRecord(name: "s", baseURL: "https://bench.invalid/fhir"))
  try store.addCohort(CohortRecord(name: "c", server: "s", groupID: "g"))
}

let hexDigits = Array("0123456789abcdef".utf8)
func hex(_ a: UInt64, _ b: UInt64) -> String {
  var out = [UInt8](repeating: 0, count: 32)
  for i in 0..<16 {
    out[i] = hexDigits[Int((a >> (60 - 4 * UInt64(i))) & 15)]
    out[16 + i] = hexDigits[Int((b >> (60 - 4 * UInt64(i))) & 15)]
  }
  return String(decoding: out, as: UTF8.self)
}
func mix(_ x: UInt64) -> UInt64 {
  var z = x &+ 0x9E37_79B9_7F4A_7C15
  z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
  z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
  return z ^ (z >> 31)
}

let instants = (0..<12).map { m in (0..<28).map { d in String(format: "2024-%02d-%02dT10:00:00Z", 1 + m, 1 + d) } }
func lastUpdated(_ v: Int, _ i: Int) -> String { instants[v % 12][i % 28] }

/// Resource i: its type, id (scrambled, so files are not in key order) and patient.
func resource(_ i: Int) -> (type: String, id: String, patient: String) {
  let p = i % patients
  let k = i / patients
  let type = k == 0 ? "Patient" : types[1 + (k - 1) % (types.count - 1)]
  let id = k == 0 ? "p\(p)" : hex(mix(UInt64(i)), 0).prefix(16) + "-\(i)"
  return (type, id, "p\(p)")
}

/// Stages resources `indices` as export `exportID` (version v of each), in files of `perFile`.
func stage(_ exportID: Int64, _ seq: Int, _ indices: [Int], version: (Int) -> Int) throws -> Int {
  var staged = 0
  var start = 0
  var fileNo = 0
  while start < indices.count {
    let end = min(indices.count, start + perFile)
    let file = String(format: "%04d/output/part.%03d.ndjson", seq, fileNo)
    staged += try store.stage(exportID: exportID, file: file) { sink in
      for j in start..<end {
        let i = indices[j]
        let r = resource(i)
        let v = version(i)
        try sink(
          IndexEntry(
            type: r.type, id: r.id, versionId: String(v),
            lastUpdated: lastUpdated(v, i),
            hash: hex(mix(UInt64(i) &* 31 &+ UInt64(v)), UInt64(v)), patient: r.patient, file: file,
            offset: Int64(j - start) * 900, length: 900))
      }
    }
    start = end
    fileNo += 1
  }
  return staged
}

/// Process CPU time (user + system), to read the figures on a loaded machine.
func cpuSeconds() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
    + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
nonisolated(unsafe) var lastCPU = 0.0
func seconds(_ body: () throws -> Void) rethrows -> Double {
  let t = Date()
  let c = cpuSeconds()
  try body()
  lastCPU = cpuSeconds() - c
  return Date().timeIntervalSince(t)
}
func secondsAsync(_ body: () async throws -> Void) async rethrows -> Double {
  let t = Date()
  let c = cpuSeconds()
  try await body()
  lastCPU = cpuSeconds() - c
  return Date().timeIntervalSince(t)
}

/// A field of /proc/self/status in MB (VmHWM = peak RSS, VmRSS = now), nil when not on Linux.
func procStatusMB(_ field: String) -> Double? {
  guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
    let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
  else { return nil }
  guard let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
  return Double(kb) / 1024
}
/// Resets the peak RSS (VmHWM) to the current RSS, so that the next row shows its own phase's peak.
func resetPeak() {
  if let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
    handle.write(Data("5".utf8))
    try? handle.close()
  }
  Store.resetMemoryHighwater()
}

func newExport(_ kind: String) throws -> ExportRecord {
  try store.createExport(cohort: "c", kind: kind, since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get")
}
let members = (0..<patients).map { "p\($0)" }
let all = Array(0..<n)
// Every 100th resource changes (1 %).
let changedSet = Array(stride(from: 7, to: n, by: 100))

nonisolated(unsafe) var overallPeak = 0.0
func row(_ what: String, _ value: String, memory: Bool = true) {
  var peak = ""
  if memory, let mb = procStatusMB("VmHWM") {
    overallPeak = max(overallPeak, mb)
    peak = String(format: "  [peak RSS %.0f MB, SQLite %.0f MB]", mb, Store.memoryHighwaterMB)
  }
  print(
    what.padding(toLength: 46, withPad: " ", startingAt: 0) + String(format: " cpu %6.2f s  ", lastCPU) + value + peak)
  resetPeak()
}
func rate(_ count: Int, _ s: Double) -> String { String(format: "%.2f s  (%.0f k/s)", s, Double(count) / s / 1000) }

print("store-bench: N = \(n) resources, \(patients) patients, \(types.count) types")
resetPeak()

// 0. Generating the entries alone (the staging rate below includes it).
var sink = 0
let tGenerate = seconds {
  for i in 0..<n {
    let r = resource(i)
    let lu = lastUpdated(1, i)
    sink &+= r.id.utf8.count &+ hex(mix(UInt64(i) &* 31 &+ 1), 1).utf8.count &+ lu.utf8.count
  }
}
row("generate \(n) entries (no store)", rate(n, tGenerate))

var e1: ExportRecord!, e2: ExportRecord!
var staged = 0
var cpuStage1 = 0.0, tStage1 = 0.0, cpuCommit1 = 0.0, tCommit1 = 0.0, cpuCommit2 = 0.0, tCommit2 = 0.0
let trace = ProcessInfo.processInfo.environment["COHORT_STORE_TRACE"] != nil
if from != nil {
  let exports = try store.exports(cohort: "c")
  e1 = exports.first { $0.seq == 1 }
  e2 = exports.first { $0.seq == 2 }
  print("from \(from!): exports #1 and #2 committed")
} else {
  // 1. Full export into an empty cohort.
  e1 = try newExport("full")
  tStage1 = try seconds { staged = try stage(e1.id!, e1.seq, all) { _ in 1 } }
  cpuStage1 = lastCPU
  row("stage \(staged) (incl. generating entries)", rate(staged, tStage1))
  if ProcessInfo.processInfo.environment["STORE_BENCH_STOP"] != nil { exit(0) }
  var r1 = IngestResult()
  if trace { print("-- full commit") }
  tCommit1 = try await secondsAsync {
    r1 = try await store.commitExport(CommitPlan(export: e1, rebaselineTypes: Set(types), members: members))
  }
  cpuCommit1 = lastCPU
  row("commit full of \(n) into empty", rate(n, tCommit1) + "  added \(r1.added)")

  // 2. Full re-export, 1 % changed.
  e2 = try newExport("full")
  let changed = Set(changedSet)
  let tStage2 = try seconds { staged = try stage(e2.id!, e2.seq, all) { changed.contains($0) ? 2 : 1 } }
  row("stage \(staged) (re-export)", rate(staged, tStage2))
  var r2 = IngestResult()
  if trace { print("-- full re-export commit") }
  tCommit2 = try await secondsAsync {
    r2 = try await store.commitExport(CommitPlan(export: e2, rebaselineTypes: Set(types), members: members))
  }
  cpuCommit2 = lastCPU
  row("commit full re-export of \(n), 1 % changed", rate(n, tCommit2) + "  changed \(r2.changed), resent \(r2.resent)")
  if let saveTo {
    for suffix in ["", "-wal"] {
      try? FileManager.default.removeItem(atPath: saveTo + suffix)
      try? FileManager.default.copyItem(atPath: dir + "/cohort.sqlite" + suffix, toPath: saveTo + suffix)
    }
    print("saved \(saveTo)")
  }
}

// 3. Incrementals, 1 % changed each (a different 1 % each round; STORE_BENCH_ROUNDS, default 5): the goal is judged
// on the median round.
let rounds = max(1, Int(ProcessInfo.processInfo.environment["STORE_BENCH_ROUNDS"] ?? "") ?? 5)
var e3: ExportRecord!
var incremental: [(stageCPU: Double, stageWall: Double, cpu: Double, wall: Double)] = []
for round in 0..<rounds {
  let e = try newExport("incremental")
  if round == 0 { e3 = e }
  let indices = round == 0 ? changedSet : Array(stride(from: (7 + 10 * round) % 100, to: n, by: 100))
  let tStage = try seconds { staged = try stage(e.id!, e.seq, indices) { _ in 3 + round } }
  let cpuStage = lastCPU
  row("stage \(staged) (incremental \(round + 1))", rate(staged, tStage))
  var r = IngestResult()
  if trace { print("-- incremental commit \(round + 1)") }
  let t = try await secondsAsync {
    r = try await store.commitExport(CommitPlan(export: e, members: members))
  }
  incremental.append((cpuStage, tStage, lastCPU, t))
  row(
    "commit incremental \(round + 1) of \(indices.count) (1 %)",
    String(format: "%.3f s  changed \(r.changed), unchanged \(r.unchanged)", t))
}
func median(_ values: [Double]) -> Double {
  let v = values.sorted()
  return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
}
let cpuStage3 = median(incremental.map(\.stageCPU))
let tStage3 = median(incremental.map(\.stageWall))
let cpuCommit3 = median(incremental.map(\.cpu))
let tCommit3 = median(incremental.map(\.wall))
lastCPU = cpuCommit3
row("commit incremental, median of \(rounds)", String(format: "%.3f s", tCommit3), memory: false)

// The goal (issue 10 "done when", issue 12): an incremental with 1 % changed at ≤ 5 % of the full export's
// time. CPU seconds are the figure to read on a shared machine; wall seconds follow in brackets.
func percent(_ part: Double, _ whole: Double) -> String { String(format: "%.1f %%", 100 * part / whole) }
func judged(_ part: Double, _ whole: Double) -> String {
  let p = 100 * part / whole
  return p <= 5 ? "goal ≤ 5 %: met" : String(format: "goal ≤ 5 %%: NOT met (%.1f× off)", p / 5)
}
if from == nil {
  row(
    "incremental commit / full commit (into empty)",
    "\(percent(cpuCommit3, cpuCommit1)) of CPU (wall \(percent(tCommit3, tCommit1)))  \(judged(cpuCommit3, cpuCommit1))", memory: false)
  row(
    "incremental commit / full re-export commit",
    "\(percent(cpuCommit3, cpuCommit2)) of CPU (wall \(percent(tCommit3, tCommit2)))  \(judged(cpuCommit3, cpuCommit2))", memory: false)
  lastCPU = cpuStage3 + cpuCommit3
  row(
    "incremental stage+commit / full stage+commit",
    "\(percent(cpuStage3 + cpuCommit3, cpuStage1 + cpuCommit1)) of CPU (wall \(percent(tStage3 + tCommit3, tStage1 + tCommit1)))  \(judged(cpuStage3 + cpuCommit3, cpuStage1 + cpuCommit1))", memory: false)
}

// 4. Queries.
var total = 0
let tSummary = try seconds {
  total = try store.counts(cohort: "c", at: e3.id!).values.reduce(0, +)
  _ = try store.counts(cohort: "c", at: e2.id!)
}
row("summary (counts at the last two snapshots)", String(format: "%.3f s  (%d resources)", tSummary, total))
var d = SnapshotDiff()
let tDiff = try seconds { d = try store.diff(cohort: "c", from: e2.id!, to: e3.id!, type: nil) }
row("diff of the incremental", String(format: "%.3f s  (%d changed)", tDiff, d.changed.values.reduce(0) { $0 + $1.count }))
let tDiff2 = try seconds { d = try store.diff(cohort: "c", from: e1.id!, to: e3.id!, type: nil) }
row("diff first → last", String(format: "%.3f s  (%d changed)", tDiff2, d.changed.values.reduce(0) { $0 + $1.count }))
lastCPU = 0
let size = (try? FileManager.default.attributesOfItem(atPath: dir + "/cohort.sqlite")[.size] as? Int) ?? 0
row("database size", String(format: "%.0f MB (%.0f B/row)", Double(size) / 1e6, Double(size) / Double(n + n / 50)))
row("peak RSS (the largest phase's)", String(format: "%.0f MB", overallPeak), memory: false)
