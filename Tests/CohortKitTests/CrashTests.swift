import CohortTestSupport
import BulkServer
import CohortKit
import CohortStore
import FHIRBulk
import Foundation
import Testing

/// Crash consistency with the real binary (issue 11): SIGKILL at many points of a full export and of an
/// incremental export with joiners — polling, downloading, the joiners' job, staging and commit — then
/// `export` again resumes; the result equals an uninterrupted run: the same state, every recorded file on
/// disk with its sha256, no temporary files, at most one open job, no second kick-off for a saved status URL.
@Suite("Crash consistency", .serialized)
struct CrashTests {
  struct Point: Sendable {
    var name: String
    var holds: @Sendable (Store, String) throws -> Bool
  }

  static func jobs(_ store: Store, _ cohort: String) throws -> [JobRecord] {
    guard let open = try store.openExport(cohort: cohort) else { return [] }
    return try store.jobs(exportID: open.id!)
  }

  static func files(_ store: Store, _ cohort: String) throws -> Int {
    guard let open = try store.openExport(cohort: cohort) else { return 0 }
    return try store.files(exportID: open.id!).count
  }

  static let points: [Point] = [
    Point(name: "planned") { s, c in try s.openExport(cohort: c) != nil },
    Point(name: "accepted (polling)") { s, c in try jobs(s, c).first?.phase == .accepted },
    Point(name: "manifest saved") { s, c in try jobs(s, c).first.map { $0.phase == .complete } ?? false },
    Point(name: "first file") { s, c in try files(s, c) >= 1 },
    Point(name: "third file") { s, c in try files(s, c) >= 3 },
    Point(name: "sixth file") { s, c in try files(s, c) >= 6 },
    Point(name: "main job downloaded") { s, c in try jobs(s, c).first?.phase == .downloaded },
    Point(name: "joiners' job planned") { s, c in try jobs(s, c).contains { $0.role == .joiners } },
    Point(name: "joiners' job accepted") { s, c in try jobs(s, c).contains { $0.role == .joiners && $0.phase == .accepted } },
    Point(name: "joiners' files") { s, c in
      guard let open = try s.openExport(cohort: c) else { return false }
      return try s.files(exportID: open.id!).contains { $0.path.contains("/joiners/") }
    },
    Point(name: "every job downloaded (staging, commit)") { s, c in
      let all = try jobs(s, c)
      return all.count >= 2 && all.allSatisfy { $0.phase == .downloaded }
    },
  ]

  @Test("SIGKILL at each point of a full and of an incremental export with joiners; export resumes to the uninterrupted result")
  func killEverywhere() async throws {
    guard FileManager.default.isExecutableFile(atPath: Binary.path) else {
      Issue.record("build the cohort binary first: swift build --build-tests (\(Binary.path))")
      return
    }
    try await withFixture({
      $0.pollsBeforeComplete = 2
      $0.resourcesPerFile = 6
      $0.patients = 30
    }) { f in
      let home = f.dir + "/binary"
      try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
      let workspace = home + "/Cohorts"
      let names = (0..<Self.points.count).map { "inc\($0)" }
      var setup = "server add srv \(f.server.baseURL); cohort add ref --server srv --group diabetes-patients"
      for name in names { setup += "; cohort add \(name) --server srv --group diabetes-patients; export \(name)" }
      for k in 0..<7 { setup += "; cohort add full\(k) --server srv --group diabetes-patients" }
      let prepared = try Binary.run(["-w", workspace, "-c", setup], cwd: home)
      try #require(prepared.status == 0, "setup failed: \(prepared.stderr)")
      let store = try Store(path: workspace + "/cohort.sqlite")
      var hits = 0
      var outputs: [String: String] = [:]

      func killAndResume(_ cohort: String, _ point: Point, arguments: [String]) async throws {
        let marker = await f.requests.count
        let run = try Binary.launch(["-w", workspace, "export", cohort, "--parallel", "1"] + arguments, cwd: home, tag: cohort)
        let seen = try await waitUntil(seconds: 30) { try point.holds(store, cohort) || !run.process.isRunning }
        if seen && run.process.isRunning {
          kill(run.process.processIdentifier, SIGKILL)
          hits += 1
        }
        run.process.waitUntilExit()
        let resumed = try Binary.run(["-w", workspace, "export", cohort], cwd: home)
        outputs[cohort] = "killed run:\n\(run.stderr)\nresumed run:\n\(resumed.stderr)"
        #expect(resumed.status == 0 || !run.process.isRunning, "\(cohort) at \(point.name): \(resumed.stderr)")
        #expect(try store.openExport(cohort: cohort) == nil, "\(cohort) at \(point.name): a job is still open")
        // A saved status URL is polled again, never kicked off twice: at most one GET kick-off per pull.
        let log = Array(await f.requests.dropFirst(marker))
        let saved = log.filter { $0.pathOnly.hasSuffix("/$export") && $0.method == "GET" }.count
        #expect(saved <= 2, "\(cohort) at \(point.name): \(saved) GET kick-offs")
      }

      // The full series: no server change, the reference is one uninterrupted full export.
      let fullPoints = Array(Self.points.prefix(7))
      for (k, point) in fullPoints.enumerated() {
        try await killAndResume("full\(k)", point, arguments: [])
      }
      let reference = try Binary.run(["-w", workspace, "export", "ref"], cwd: home)
      try #require(reference.status == 0, "\(reference.stderr)")
      let truth = try latestIndexState(store, cohort: "ref")
      for k in fullPoints.indices {
        let state = try latestIndexState(store, cohort: "full\(k)")
        let history = try store.exports(cohort: "full\(k)").map { "#\($0.seq) \($0.kind) \($0.outcome ?? $0.phase.rawValue) \($0.resources)" }
        #expect(
          state == truth,
          "full export killed at \(fullPoints[k].name): missing \(truth.subtracting(state).sorted().prefix(5)) (\(truth.subtracting(state).count)), extra \(state.subtracting(truth).sorted().prefix(5)) (\(state.subtracting(truth).count)); history: \(history)\n\(outputs["full\(k)"] ?? "")")
      }

      // The incremental series: the clinic moves on (joiners, leavers, deletions); the reference is a fresh
      // full export afterwards.
      _ = try await f.server.advance(days: 6)
      for (k, point) in Self.points.enumerated() {
        try await killAndResume(names[k], point, arguments: ["--incremental"])
      }
      let fresh = try Binary.run(["-w", workspace, "-c", "cohort add ref2 --server srv --group diabetes-patients; export ref2"], cwd: home)
      try #require(fresh.status == 0, "\(fresh.stderr)")
      let truth2 = try latestIndexState(store, cohort: "ref2")
      for (k, name) in names.enumerated() {
        let state = try latestIndexState(store, cohort: name)
        let history = try store.exports(cohort: name).map { "#\($0.seq) \($0.kind) \($0.outcome ?? $0.phase.rawValue) \($0.resources)" }
        #expect(
          state == truth2,
          "incremental killed at \(Self.points[k].name): missing \(truth2.subtracting(state).sorted().prefix(5)) (\(truth2.subtracting(state).count)), extra \(state.subtracting(truth2).sorted().prefix(5)) (\(state.subtracting(truth2).count)); history: \(history)\n\(outputs[name] ?? "")")
        #expect(try store.currentMembers(cohort: name) == store.currentMembers(cohort: "ref2"))
      }
      // Files and records agree; nothing half-written is left.
      for cohort in names + (0..<fullPoints.count).map({ "full\($0)" }) {
        for snapshot in try store.snapshots(cohort: cohort) {
          for file in try store.files(exportID: snapshot.id!) {
            let path = workspace + "/" + cohort + "/" + file.path
            #expect(FileDigest.matches(path: path, bytes: file.bytes, sha256: file.sha256), "\(path)")
          }
        }
      }
      let parts = FileManager.default.enumerator(atPath: workspace)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".part") } ?? []
      #expect(parts.isEmpty, "\(parts)")
      print("crash consistency: \(hits) of \(fullPoints.count + Self.points.count) kill points hit a running export")
      #expect(hits >= 10, "only \(hits) kill points were hit")
    }
  }
}
