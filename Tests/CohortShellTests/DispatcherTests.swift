import CohortTestSupport
import FHIRBulk
import Foundation
import Testing

@_spi(Store) import CohortKit

@testable import CohortShell

@MainActor
@Suite struct DispatcherTests {
  @Test func registersServersAndCohortsAndListsThemInEveryFormat() async throws {
    let h = try Harness()
    #expect(try await h.run("server add prod https://fhir.example.org/r4/") == 0)
    #expect(try await h.run("cohort add diabetes-patients --server prod --group 7f3a-diabetes --types Patient,Observation") == 0)
    #expect(h.stderr.contains("created workspace"))
    #expect(try await h.run("cohort list --format json") == 0)
    #expect(h.stdout.contains(#""group":"7f3a-diabetes""#))
    #expect(h.stdout.contains(#""name":"diabetes-patients""#))
    #expect(try await h.run("server list --format csv") == 0)
    #expect(h.stdout.contains("name,url,auth,kickoff\nprod,https://fhir.example.org/r4,none,get\n"))
    #expect(try await h.run("set format table; server list") == 0)
    #expect(h.stdout.contains("name  url                          auth  kickoff\n----"))
  }

  @Test("--format json is typed by column: a cohort named 123 and Group 456 stay strings, counts are numbers")
  func jsonIsTypedByColumn() async throws {
    let h = try Harness()
    #expect(try await h.run("server add prod https://fhir.example.org/r4/") == 0)
    #expect(try await h.run("cohort add 123 --server prod --group 456") == 0)
    #expect(try await h.run("cohort list --format json") == 0)
    #expect(h.stdout.contains(#""group":"456""#), "\(h.stdout)")
    #expect(h.stdout.contains(#""name":"123""#), "\(h.stdout)")
    #expect(h.stdout.contains(#""snapshots":0"#), "\(h.stdout)")
    // Resource ids that look like numbers stay strings; counts and signed changes are numbers; "" is null.
    let table = Table(columns: ["id", "resources", "change"], rows: [["007", "12", "+3"], ["42", "0", ""]], integers: ["resources", "change"])
    #expect(table.render(.json) == #"[{"change":3,"id":"007","resources":12},{"change":null,"id":"42","resources":0}]"# + "\n")
    let view = Table(columns: ["n", "ok", "codes"], kinds: [.number, .boolean, .json], rows: [["6.5", "true", #"["a","b"]"#]])
    #expect(view.render(.json) == #"[{"codes":["a","b"],"n":6.5,"ok":true}]"# + "\n")
  }

  @Test func unknownCommandSuggestsTheNearestAndIsAUsageError() async throws {
    let h = try Harness()
    #expect(try await h.run("sever list") == ExitStatus.usage)
    #expect(h.stderr.contains("unknown command 'sever' — did you mean 'server'?"))
    #expect(try await h.run("server lst") == ExitStatus.usage)
    #expect(h.stderr.contains("unknown subcommand 'lst' of 'server' — did you mean 'list'?"))
    #expect(try await h.run("server list --fromat json") == ExitStatus.usage)
    #expect(h.stderr.contains("--fromat"))
  }

  @Test func unknownNamesListWhatExists() async throws {
    let h = try Harness()
    try await h.run("server add prod https://x.example/r4")
    #expect(try await h.run("cohort add dm --server prd --group g1") == ExitStatus.failed)
    #expect(h.stderr.contains("no server named 'prd' — did you mean 'prod'? (known: prod)"))
  }

  @Test func badNamesURLsAndGroupIDsSayWhichRuleTheyBreak() async throws {
    let h = try Harness()
    #expect(try await h.run("server add Prod https://x") == ExitStatus.usage)
    #expect(h.stderr.contains("invalid server name 'Prod'"))
    #expect(try await h.run("server add p ftp://x") == ExitStatus.usage)
    #expect(h.stderr.contains("the scheme must be http or https"))
    try await h.run("server add p https://x")
    #expect(try await h.run("cohort add c --server p --group 'a/b'") == ExitStatus.usage)
    #expect(h.stderr.contains("a FHIR id is 1–64 characters"))
    #expect(try await h.run("server add q https://x --auth bearer") == ExitStatus.usage)
    #expect(h.stderr.contains("--token-env"))
  }

  /// Issue 12 item 4: the connect timeout is per server — set at `server add`, changed by `server set`, shown by
  /// `server show`, and the export's HTTP client connects with it.
  @Test func connectTimeoutIsPerServer() async throws {
    let h = try Harness()
    #expect(try await h.run("server add slow https://slow.example/r4 --connect-timeout 2.5") == 0)
    #expect(try await h.run("server add plain https://plain.example/r4") == 0)
    #expect(try await h.run("server show slow --format csv") == 0)
    #expect(h.stdout.contains("connect-timeout,2.5 s\n"))
    #expect(try await h.run("server show plain --format csv") == 0)
    #expect(h.stdout.contains("connect-timeout,5 s (default)\n"))
    let kit = try h.shell.session.open(create: false)
    // The export's client goes through the process-wide HTTP client configured with the server's timeout.
    func connectTimeout(_ name: String) throws -> Double {
      let server = try kit.server(named: name)
      let timeout = ClientFactory.connectTimeout(for: server)
      let client = try ClientFactory(environment: [:]).client(for: server, events: { _ in })
      #expect(client.httpClient === BulkClient.sharedHTTPClient(connectTimeoutSeconds: timeout))
      #expect((client.httpClient === BulkClient.defaultHTTPClient) == (timeout == 5))
      return timeout
    }
    #expect(try connectTimeout("slow") == 2.5)
    #expect(try connectTimeout("plain") == 5)
    #expect(try await h.run("server set plain --connect-timeout 30 --kickoff post") == 0)
    #expect(h.stderr.contains("server plain: connect timeout 30 s, kick-off POST"))
    #expect(try connectTimeout("plain") == 30)
    #expect(try kit.server(named: "plain").kickoffMethod == "post")
    #expect(try await h.run("server set plain") == ExitStatus.usage)
    #expect(h.stderr.contains("nothing to change"))
    #expect(try await h.run("server set plain --connect-timeout 0") == ExitStatus.usage)
    #expect(h.stderr.contains("from 0.1 to 600"))
    #expect(try await h.run("server set nope --connect-timeout 3") == 1)
    #expect(h.stderr.contains("no server named 'nope'"))
  }

  @Test func tokensAreNeverStoredOnlyWhereTheyAre() async throws {
    let h = try Harness(environment: ["FHIR_TOKEN": "s3cr3t-token-value"])
    #expect(try await h.run("server add prod https://x/r4 --auth bearer --token-env FHIR_TOKEN") == 0)
    #expect(try await h.run("server show prod") == 0)
    #expect(h.stdout.contains("from environment variable FHIR_TOKEN (set)"))
    // Every file the workspace holds, the SQLite write-ahead log included (the store is open in this process, so
    // the rows just written sit in cohort.sqlite-wal). The server's URL must be found there — the scan reads
    // where the rows are — and the token must not.
    var bytes = Data()
    let enumerator = FileManager.default.enumerator(atPath: h.dir + "/Cohorts")
    while let name = enumerator?.nextObject() as? String {
      if let data = FileManager.default.contents(atPath: h.dir + "/Cohorts/" + name) { bytes.append(data) }
    }
    #expect(bytes.range(of: Data("https://x/r4".utf8)) != nil, "the scan did not see the server row")
    #expect(bytes.range(of: Data("FHIR_TOKEN".utf8)) != nil, "the scan did not see the token's source")
    #expect(bytes.range(of: Data("s3cr3t".utf8)) == nil)
    #expect(!h.stdout.contains("s3cr3t") && !h.stderr.contains("s3cr3t"))
  }

  @Test func removingACohortWithExportsNeedsForce() async throws {
    let h = try Harness()
    try await h.run("server add p https://x; cohort add c --server p --group g")
    let store = try h.shell.session.workspace.store(create: false)
    _ = try store.createExport(cohort: "c", kind: "full", since: nil, until: nil, types: [], paramsJSON: "{}", kickoffMethod: "get")
    #expect(try await h.run("cohort remove c") == ExitStatus.failed)
    #expect(h.stderr.contains("has 1 export(s); `cohort remove c --force` deletes them"))
    #expect(try await h.run("cohort remove c --force") == 0)
    #expect(try await h.run("cohort show c") == ExitStatus.failed)
  }

  @Test func helpComesFromTheCommandTable() async throws {
    let h = try Harness()
    #expect(try await h.run("help") == 0)
    for name in ["server", "cohort", "set", "run", "sleep", "version", "quit"] {
      #expect(h.stdout.contains(name), "help lists \(name)")
    }
    #expect(try await h.run("help server add") == 0)
    #expect(h.stdout.contains("--token-env"))
    #expect(try await h.run("server add --help") == 0)
    #expect(try await h.run("help nosuch") == ExitStatus.usage)
  }
}

@MainActor
@Suite struct ScriptTests {
  @Test func errorsCarryFileAndLineAndStopTheScript() async throws {
    let h = try Harness()
    let path = try h.write("a.cohort", "# setup\nserver add p https://x\n\ncohort add c --server nope --group g\nserver list\n")
    let status = await h.shell.runFile(path)
    #expect(status == ExitStatus.scriptStopped)
    #expect(h.stderr.contains("a.cohort:4: error: no server named 'nope'"))
    #expect(!h.stdout.contains("https://x"), "bail: the command after the error did not run")
  }

  @Test func noBailContinuesAndExitsOne() async throws {
    let h = try Harness()
    h.shell.session.bail = false
    let path = try h.write("a.cohort", "server add p https://x\nbogus\nserver list\n")
    #expect(await h.shell.runFile(path) == ExitStatus.failed)
    #expect(h.stdout.contains("https://x"))
    #expect(h.stderr.contains("a.cohort:2: error: unknown command 'bogus'"))
  }

  @Test func setBailOffInsideAScript() async throws {
    let h = try Harness()
    let path = try h.write("a.cohort", "set bail off\nbogus\nserver add p https://x\n")
    #expect(await h.shell.runFile(path) == ExitStatus.failed)
    #expect(h.stderr.contains("added server p"))
  }

  @Test func echoPrintsEachCommandBeforeItsOutput() async throws {
    let h = try Harness()
    let path = try h.write("a.cohort", "set echo on\nserver add p https://x\nserver list   # listed\n")
    #expect(await h.shell.runFile(path) == 0)
    #expect(h.stdout.contains("> server add p https://x\n> server list   # listed\np\thttps://x\tnone\tget\n"))
  }

  @Test func continuationLinesAndErrorsReportTheFirstLine() async throws {
    let h = try Harness()
    let path = try h.write("a.cohort", "server add p \\\n  https://x\ncohort add c \\\n  --server q --group g\n")
    #expect(await h.shell.runFile(path) == ExitStatus.scriptStopped)
    #expect(h.stderr.contains("a.cohort:3: error: no server named 'q'"))
  }

  @Test func runResolvesPathsRelativeToTheIncludingScriptAndLimitsNesting() async throws {
    let h = try Harness()
    _ = try h.write("lib/inner.cohort", "server add inner https://inner\n")
    let outer = try h.write("lib/outer.cohort", "run inner.cohort\nserver list\n")
    #expect(await h.shell.runFile(outer) == 0)
    #expect(h.stdout.contains("inner\thttps://inner"))
    let loop = try h.write("loop.cohort", "run loop.cohort\n")
    #expect(await h.shell.runFile(loop) == ExitStatus.scriptStopped)
    #expect(h.stderr.contains("nested more than 16 deep"))
  }

  @Test func variablesInScripts() async throws {
    let h = try Harness()
    let path = try h.write("v.cohort", "set url https://v.example/r4\nserver add v $url\nserver show v --format csv\nshow $undefined\n")
    #expect(await h.shell.runFile(path) == ExitStatus.scriptStopped)
    #expect(h.stdout.contains("url,https://v.example/r4"))
    #expect(h.stderr.contains("v.cohort:4: error: undefined variable '$undefined'"))
  }
}

@MainActor
@Suite struct BinaryTests {
  @Test func exitCodesAndFrontEndsShareOneGrammar() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var r = try Binary.run(["server", "add", "p", "https://x/r4"], cwd: dir)
    #expect(r.status == 0)
    #expect(r.stderr.contains("created workspace \(dir)/Cohorts"))
    r = try Binary.run(["-c", "server list; cohort add c --server p --group g; cohort list --format csv"], cwd: dir)
    #expect(r.status == 0)
    #expect(r.stdout.contains("p\thttps://x/r4") && r.stdout.contains("c,p,g,(all),0,"))
    r = try Binary.run([], stdin: "server list\n# comment\nbogus\nserver list\n", cwd: dir)
    #expect(r.status == ExitStatus.scriptStopped)
    #expect(r.stderr.contains("<stdin>:3: error: unknown command 'bogus'"))
    try "server list\n".write(toFile: dir + "/x.cohort", atomically: true, encoding: .utf8)
    r = try Binary.run(["x.cohort"], cwd: dir)
    #expect(r.status == 0 && r.stdout.contains("https://x/r4"))
    r = try Binary.run(["run", "x.cohort", "--echo"], cwd: dir)
    #expect(r.status == 0 && r.stdout.hasPrefix("> server list\n"))
    r = try Binary.run(["--bogus"], cwd: dir)
    #expect(r.status == ExitStatus.usage)
    r = try Binary.run(["cohort", "show", "nope"], cwd: dir)
    #expect(r.status == ExitStatus.failed)
  }

  @Test func workspaceIsFoundFromTheCurrentFolderUpwards() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try Binary.run(["server", "add", "p", "https://x"], cwd: dir)
    try FileManager.default.createDirectory(atPath: dir + "/a/b", withIntermediateDirectories: true)
    let r = try Binary.run(["server", "list"], cwd: dir + "/a/b")
    #expect(r.stdout.contains("https://x"))
    let other = try Binary.run(["server", "list"], cwd: dir + "/a/b", environment: ["COHORT_WORKSPACE": dir + "/elsewhere"])
    #expect(!other.stdout.contains("https://x"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/elsewhere"), "a read-only command creates nothing")
  }

  @Test func newerOrCorruptDatabaseGivesOneClearLine() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(atPath: dir + "/Cohorts", withIntermediateDirectories: true)
    try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: dir + "/Cohorts/cohort.sqlite"))
    let r = try Binary.run(["server", "list"], cwd: dir)
    #expect(r.status == ExitStatus.failed)
    #expect(r.stderr.contains("is not a usable cohort database"))
    #expect(r.stderr.split(separator: "\n").count == 1)
  }
}
