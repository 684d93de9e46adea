import CohortTestSupport
@testable import FHIRBulk
import Foundation
import Testing

@testable import CohortShell

/// The plain and terminal reporters (Sources/CohortShell/Reporters.swift).
@Suite struct ReportersTests {
  @Test func plainReporterPrintsMilestonesAndThrottlesProgress() {
    let out = ReportingCountersTests.Lines()
    let r = PlainReporter(interval: .seconds(3600)) { s in out.append(s) }
    r.handle(.statusProgress(xProgress: "10%", retryAfter: nil, nextPoll: .seconds(2)))
    r.handle(.statusProgress(xProgress: "20%", retryAfter: nil, nextPoll: .seconds(4)))
    r.handle(.warning("careful"))
    r.handle(.exportComplete(ExportTotals(files: 2, resources: 10, bytes: 2_500_000, seconds: 3)))
    #expect(out.all == [
      "waiting for the server: 10% (next check in 2 s)\n", "warning: careful\n",
      "done: 2 files, 10 resources, 2.5 MB in 3 s\n",
    ])
  }

  @Test func ttyReporterRedrawsOneLine() {
    let out = ReportingCountersTests.Lines()
    let r = TTYReporter(minRedraw: .zero) { s in out.append(s) }
    r.handle(.statusProgress(xProgress: "40% complete", retryAfter: nil, nextPoll: .seconds(1)))
    r.handle(.manifestComplete(ManifestSummary(Manifest(transactionTime: "2024-05-01T10:00:00Z", request: "r", requiresAccessToken: true, output: [ManifestItem(type: "Patient", url: "https://x/1"), ManifestItem(type: "Patient", url: "https://x/2")], deleted: nil, error: []))))
    r.handle(.downloadRequest(url: "https://x/1", kind: .output, type: "Patient"))
    r.handle(.warning("w"))
    let all = out.all
    #expect(all[0] == "\r\u{1B}[0Kwaiting for the server · 40% complete")
    #expect(all.last?.contains("warning: w\n") == true)
    #expect(all.last?.contains("downloading · files 0/2") == true)
  }
}
