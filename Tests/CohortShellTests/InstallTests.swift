import CohortTestSupport
import Foundation
import Testing

@testable import CohortShell

/// The man page generated from the command table, the version stamp, and `make install`/`make uninstall`.
@Suite struct InstallTests {
  static let root = ShellCompletionTests.root

  static func run(_ executable: String, _ arguments: [String], cwd: String, environment: [String: String] = [:]) throws
    -> (status: Int32, out: String, err: String)
  {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: cwd)
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let outPath = NSTemporaryDirectory() + "install-out-" + UUID().uuidString
    let errPath = outPath + ".err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    defer {
      unlink(outPath)
      unlink(errPath)
    }
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return (
      process.terminationStatus, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
      (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    )
  }

  static func which(_ name: String) -> String? {
    ["/usr/bin/", "/bin/", "/usr/local/bin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
  }

  // MARK: Man page

  @Test func manPageHasEveryCommandOfTheTable() throws {
    let paths = ManPage.commandPaths()
    #expect(paths.count >= 30)
    for expected in ["server add", "cohort add", "export", "diff", "report", "clear", "history", "summary"] {
      #expect(paths.contains(expected), "\(expected) is not in the command table")
    }
    let page = ManPage.render()
    for path in paths {
      #expect(page.contains(".SS \"\(path)\"") || page.contains(".SS \"\(path) "), "\(path) is not in the man page")
    }
    // Options of a command are listed under it.
    #expect(page.contains("\\fB\\-\\-incremental\\fR") && page.contains("\\fB\\-\\-chart\\fR") && page.contains("\\fB\\-\\-open\\fR"))
    #expect(page.hasPrefix(".TH COHORT 1 "))
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "ENVIRONMENT", "FILES", "EXIT STATUS"] {
      #expect(page.contains(".SH \"\(section)\""))
    }
    // No text line may start with a control character by accident.
    for line in page.split(separator: "\n") where line.hasPrefix(".") || line.hasPrefix("'") {
      #expect(line.range(of: #"^\.(TH|SH|SS|TP|PP|RS|RE|B)( |$)"#, options: .regularExpression) != nil, "stray request: \(line)")
    }
  }

  @Test func helpManPrintsItAndTheCommittedCopyMatches() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try Binary.run(["help", "--man"], cwd: dir)
    #expect(result.status == 0)
    #expect(result.stdout == ManPage.render())
    let committed = try String(contentsOfFile: Self.root.appendingPathComponent("docs/cohort.1").path, encoding: .utf8)
    #expect(committed == result.stdout, "docs/cohort.1 is stale: run `make man`")
  }

  @Test(.enabled(if: which("groff") != nil || runningInCI, "groff is not installed"))
  func manPageRendersWithoutWarnings() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let page = dir + "/cohort.1"
    try ManPage.render().write(toFile: page, atomically: true, encoding: .utf8)
    let result = try Self.run(Self.which("groff")!, ["-man", "-Tutf8", "-ww", "-z", page], cwd: dir)
    #expect(result.status == 0)
    #expect(result.err.isEmpty, "groff warnings: \(result.err)")
  }

  // MARK: Version

  @Test func versionIsStampedAtBuildTimeNotReadFromTheCheckout() throws {
    // A plain `swift build` knows its version but not its commit: nothing is read from .git at run time.
    #expect(CohortVersion.commit == nil)
    #expect(CohortVersion.line == "cohort \(CohortVersion.string)")
    let source = try String(contentsOfFile: Self.root.appendingPathComponent("Sources/CohortShell/Version.swift").path, encoding: .utf8)
    #expect(!source.contains(".git"))
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for flag in ["--version", "-V"] {
      let result = try Binary.run([flag], cwd: dir)
      #expect(result.status == 0 && result.stdout == "cohort \(CohortVersion.string)\n")
    }
  }

  // MARK: make install (slow: a release build)

  static var slow: Bool {
    let env = ProcessInfo.processInfo.environment
    return env["COHORT_SLOW_TESTS"] == "1"
  }

  // .ci/run runs it after `make test` (a release build next to the parallel suite would starve its timing windows).
  @Test(.enabled(if: slow, "a release build: set COHORT_SLOW_TESTS=1 (.ci/run runs it after make test)"))
  func makeInstallPutsTheBinaryManPageAndCompletionUnderPrefix() throws {
    let prefix = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: prefix) }
    let make = try #require(Self.which("make"))
    // Its own build folder: this test runs inside `swift test`, which holds the lock on .build.
    let install = try Self.run(make, ["install", "PREFIX=\(prefix)", "SCRATCH=.build-install"], cwd: Self.root.path)
    #expect(install.status == 0, "make install failed: \(install.err.suffix(3000))")

    // cohort --version names the commit it was built from.
    let head = try Self.run(try #require(Self.which("git")), ["rev-parse", "HEAD"], cwd: Self.root.path).out
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let version = try Self.run(prefix + "/bin/cohort", ["--version"], cwd: prefix)
    #expect(version.status == 0)
    #expect(version.out.hasPrefix("cohort \(CohortVersion.string) (commit \(head.prefix(12))"), "\(version.out)")

    // man renders the installed page.
    let manPage = prefix + "/share/man/man1/cohort.1"
    if let man = Self.which("man") {
      let rendered = try Self.run(man, ["-l", manPage], cwd: prefix, environment: ["MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100"])
      #expect(rendered.status == 0, "\(rendered.err)")
      #expect(rendered.out.contains("COMMANDS") && rendered.out.contains("server add"))
    } else {
      #expect(FileManager.default.fileExists(atPath: manPage))
    }

    // bash completes `cohort ex<Tab>` with the installed script.
    if ShellCompletionTests.bash != nil {
      let script = prefix + "/share/bash-completion/completions/cohort"
      #expect(try ShellCompletionTests.complete("cohort ex", script: script, cwd: prefix, binDir: prefix + "/bin").contains("export"))
    }
    for file in ["share/zsh/site-functions/_cohort", "share/fish/vendor_completions.d/cohort.fish"] {
      #expect(FileManager.default.fileExists(atPath: prefix + "/" + file), "\(file) not installed")
    }

    // git status stays clean: the stamp is an ignored generated file.
    let status = try Self.run(try #require(Self.which("git")), ["status", "--porcelain", "--ignored=no"], cwd: Self.root.path)
    #expect(!status.out.contains("BuildStamp"))

    let uninstall = try Self.run(make, ["uninstall", "PREFIX=\(prefix)", "SCRATCH=.build-install"], cwd: Self.root.path)
    #expect(uninstall.status == 0)
    for file in ["bin/cohort", "share/man/man1/cohort.1", "share/bash-completion/completions/cohort"] {
      #expect(!FileManager.default.fileExists(atPath: prefix + "/" + file), "\(file) left after uninstall")
    }
  }
}
