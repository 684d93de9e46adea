import CohortTestSupport
import CohortKit
import Foundation
import Testing

@testable import CohortShell

/// `history --chart` and `summary --chart`: compact text charts on a terminal, off when piped or with
/// NO_COLOR unless forced (`--color` / `set color on`), never inside json or csv.
@MainActor
@Suite struct ChartTests {
  @Test func sparklinesAndBarsScaleToTheValues() {
    #expect(TextChart.sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█")
    #expect(TextChart.sparkline([5, 5, 5]) == "▄▄▄")
    #expect(TextChart.sparkline([0, nil, 10]) == "▁ █")
    #expect(TextChart.sparkline([]) == "")
    #expect(TextChart.bar(10, maximum: 10, width: 4) == "████")
    #expect(TextChart.bar(5, maximum: 10, width: 4) == "██")
    #expect(TextChart.bar(1, maximum: 1000, width: 4) == "▏", "a value above zero is never invisible")
    #expect(TextChart.bar(0, maximum: 10, width: 4) == "")
  }

  @Test func historyChartIsDrawnWhenForcedAndOffWhenPiped() async throws {
    let (h, cohort) = try await HistoryFixture.harness()
    // The harness writes to files (not a terminal) without colour: no chart, and a note that says why.
    #expect(try await h.run("history \(cohort) --chart") == 0)
    #expect(!h.stdout.contains("█"))
    #expect(h.stderr.contains("--chart is off when the output is not a terminal or NO_COLOR is set (--color forces it)"))
    // Forced (what `--color` or `set color on` does): one bar per export and the members' sparkline.
    h.shell.session.color = true
    #expect(try await h.run("history \(cohort) --chart") == 0)
    let chart = h.stdout.components(separatedBy: "resources in the cohort after each export\n").last ?? ""
    let lines = chart.split(separator: "\n")
    #expect(lines.filter { $0.hasPrefix("#") }.count == 3)
    #expect(lines.filter { $0.hasPrefix("#") && $0.contains("█") }.count == 3)
    #expect(lines.contains { $0.hasPrefix("members ") && $0.contains("→") })
    // Never into machine-readable output.
    let before = h.stdout.count
    #expect(try await h.run("history \(cohort) --chart --format json") == 0)
    #expect(!String(h.stdout.dropFirst(before)).contains("█"))
  }

  @Test func summaryChartHasASparklinePerType() async throws {
    let (h, cohort) = try await HistoryFixture.harness()
    h.shell.session.color = true
    #expect(try await h.run("summary \(cohort) --chart") == 0)
    let chart = h.stdout.components(separatedBy: "over 3 snapshots (#1…#3)\n").last ?? ""
    let lines = chart.split(separator: "\n")
    #expect(lines.contains { $0.hasPrefix("Patient ") && $0.contains("→") })
    #expect(lines.contains { $0.hasPrefix("total ") })
    for line in lines { #expect(line.unicodeScalars.filter { (0x2581...0x2588).contains($0.value) }.count == 3, "\(line)") }
  }

  @Test func noColorTurnsChartsOffAndColorForcesThemBack() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/Cohorts"
    try await HistoryFixture.copy(to: path)
    let plain = try Binary.run(["--workspace", path, "summary", "dm", "--chart"], cwd: dir, environment: ["NO_COLOR": "1"])
    #expect(plain.status == 0 && !plain.stdout.contains("▁") && !plain.stdout.contains("█"), "\(plain.stderr)")
    let forced = try Binary.run(["--workspace", path, "--color", "summary", "dm", "--chart"], cwd: dir, environment: ["NO_COLOR": "1"])
    #expect(forced.status == 0 && forced.stdout.contains("over 3 snapshots"))
  }
}
