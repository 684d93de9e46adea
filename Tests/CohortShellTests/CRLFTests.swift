import CohortTestSupport
import Foundation
import Testing

/// Scripts written on Windows (CRLF line ends) run as they are — from a file and from stdin (issue 11).
@Suite struct CRLFTests {
  @Test func crlfScriptsRun() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let script = "# a comment\r\nset name \"two words\"\r\nversion\r\n"
    try script.write(toFile: dir + "/windows.cohort", atomically: true, encoding: .utf8)
    let file = try Binary.run(["--workspace", dir + "/Cohorts", "run", "windows.cohort"], cwd: dir)
    #expect(file.status == 0, "\(file.stderr)")
    #expect(file.stdout.hasPrefix("cohort "))
    let stdin = try Binary.run(["--workspace", dir + "/Cohorts"], stdin: "version\r\nversion\r\n", cwd: dir)
    #expect(stdin.status == 0, "\(stdin.stderr)")
    #expect(stdin.stdout.components(separatedBy: "cohort ").count - 1 == 2)
  }
}
