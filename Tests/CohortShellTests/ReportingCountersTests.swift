import CohortTestSupport
import Foundation
import Synchronization
import Testing

@testable import CohortShell
@testable import FHIRBulk

/// Progress counters of the plain and terminal reporters (Sources/CohortShell/Reporters.swift) when one export runs
/// two server jobs: the joiners' files are counted on their own line instead of past the first total
/// (seen as `(19/10)`, `(20/16)`, `(1/0)`).
@Suite struct ReportingCountersTests {
  /// What a reporter wrote, line by line.
  final class Lines: Sendable {
    private let items = Mutex<[String]>([])
    func append(_ s: String) { items.withLock { $0.append(s) } }
    var all: [String] { items.withLock { $0 } }
  }

  static func manifest(_ n: Int) -> BulkEvent {
    let items = (0..<n).map { ManifestItem(type: "Observation", url: "https://x/f/\($0)") }
    return .manifestComplete(
      ManifestSummary(Manifest(transactionTime: "2026-01-05T09:00:00Z", request: "r", requiresAccessToken: true, output: items, deleted: nil, error: [])))
  }

  static func file(_ i: Int, prefix: String = "") -> BulkEvent {
    .downloadComplete(
      DownloadedFile(
        kind: .output, type: "Observation", url: "https://x/\(prefix)f/\(i)", path: "/tmp/x", relativePath: "Observation.\(i).ndjson",
        bytes: 10, lines: 1, sha256: "00", expectedCount: nil, attempts: 1, seconds: 0.1))
  }

  static func kickoff(_ method: KickoffMethod) -> BulkEvent {
    .kickoff(KickoffRecord(url: "https://x/Group/g/$export", method: method, status: 202, statusURL: "https://x/status/1", errorBody: nil, parameters: [:]))
  }

  /// The main job (10 files), then the joiners' job (6 files).
  static let twoJobs: [BulkEvent] =
    [kickoff(.get), manifest(10)] + (0..<10).map { file($0) } + [kickoff(.post), manifest(6)] + (0..<6).map { file($0, prefix: "j/") }

  @Test func plainReporterCountsTheJoinersFilesOnTheirOwn() {
    let out = Lines()
    let reporter = PlainReporter(interval: .seconds(3600)) { out.append($0) }
    for event in Self.twoJobs { reporter.handle(event) }
    let downloads = out.all.filter { $0.hasPrefix("downloaded ") }
    #expect(downloads.count == 16)
    #expect(downloads[9].hasSuffix("(10/10)\n"))
    #expect(downloads[10].hasSuffix("(joiners 1/6)\n"))
    #expect(downloads[15].hasSuffix("(joiners 6/6)\n"))
    #expect(out.all.contains("joiners manifest: 6 output, 0 deleted, 0 error files\n"))
    #expect(out.all.contains { $0.hasPrefix("joiners export accepted (POST ") })
    // No counter ever runs past its total.
    for line in downloads {
      let counter = line.split(separator: "(").last!.dropLast(2).split(separator: " ").last!.split(separator: "/")
      #expect(Int(counter[0])! <= Int(counter[1])!, "\(line)")
    }
  }

  @Test func aFileWithoutAManifestTotalIsCountedWithoutOne() {
    let out = Lines()
    let reporter = PlainReporter(interval: .seconds(3600)) { out.append($0) }
    reporter.handle(Self.file(1))
    #expect(out.all == ["downloaded Observation.1.ndjson: 1 resources, 10 B (1)\n"])
  }

  @Test func terminalLineShowsTheJoinersRound() {
    let out = Lines()
    let reporter = TTYReporter(minRedraw: .zero) { out.append($0) }
    for event in Self.twoJobs { reporter.handle(event) }
    #expect(out.all.last?.contains("joiners: ") == true)
    #expect(out.all.last?.contains("files 6/6") == true)
    #expect(!out.all.contains { $0.contains("files 11/") || $0.contains("files 16/") })
  }
}
