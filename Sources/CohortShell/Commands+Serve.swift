import ArgumentParser
import BulkServer
import CohortKit
import Dispatch
import Foundation
import Synchronization

extension Flavor: ExpressibleByArgument {}

enum ServeAuth: String, ExpressibleByArgument, CaseIterable { case none, bearer, smart }

extension BulkDataServer: BackgroundServer {}

struct ServeCommand: ShellCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Run the built-in FHIR Bulk Data server with synthetic patients (127.0.0.1 unless told otherwise).",
    discussion: """
      In the foreground it serves until Ctrl-C, SIGTERM (or --exit-after), then removes its temporary state.
      With --background it runs inside this shell session (for scripts and notebooks), sets $server_url, and
      stops when the session ends. For --auth bearer, pass the token with --bearer-token-env VAR or
      --bearer-token-file FILE (--bearer-token TOKEN shows the token to anyone running `ps`).
      Fault switches (--fault): \(Faults.names.joined(separator: ", ")).
      """)

  @Option(help: "Port (0 picks a free one).") var port = 8080
  @Option(help: "Address to listen on.") var host = "127.0.0.1"
  @Option(help: "Number of synthetic patients.") var patients = 40
  @Option(help: "Seed of the synthetic population (same seed, same data).") var seed: UInt64 = 1
  @Option(help: "URL style: standard or netsmart.") var flavor: Flavor = .standard
  @Option(help: "Authorization: none, bearer or smart.") var auth: ServeAuth = .none
  @Option(
    name: .customLong("bearer-token"),
    help: "The static token for --auth bearer (visible in `ps`: prefer --bearer-token-env or --bearer-token-file).")
  var bearerToken: String?
  @Option(name: .customLong("bearer-token-env"), help: "Read the static token for --auth bearer from this environment variable.")
  var bearerTokenEnv: String?
  @Option(name: .customLong("bearer-token-file"), help: "Read the static token for --auth bearer from this file (first line).")
  var bearerTokenFile: String?
  @Option(name: .customLong("smart-client"), help: "A SMART client: ID=JWKS_FILE (repeatable).") var smartClients: [String] = []
  @Option(name: .customLong("token-lifetime"), help: "Lifetime of issued tokens, seconds.") var tokenLifetime = 300
  @Option(help: "Serve this dataset (NDJSON per type, or Synthea Bundles) instead of generating one.") var data: String?
  @Option(help: "Keep the server's state (clock, changes) in this SQLite file.") var state: String?
  @Option(help: "Fault switches, e.g. kickoff429=1,transientPolls=2,gzip,badLine=wrongType.") var fault: String?
  @Flag(name: .customLong("no-deleted"), help: "Never report deletions (no `deleted` in manifests), like some servers.")
  var noDeleted = false
  @Flag(
    name: .customLong("ignore-patient"),
    help: "Ignore patient= in POST kick-offs and export the whole Group, with a warning in the manifest's error files.")
  var ignorePatient = false
  @Option(help: "Status polls answered 202 before the manifest is ready.") var polls = 1
  @Option(name: .customLong("resources-per-file"), help: "Split large types into files of this many resources.") var resourcesPerFile = 10_000
  @Option(name: .customLong("start-time"), help: "The simulated clock's start (a FHIR instant).") var startTime = "2026-01-05T09:00:00Z"
  @Flag(help: "Run inside this session (for scripts) instead of in the foreground.") var background = false
  @Option(name: .customLong("exit-after"), help: "Stop by itself after this many seconds (foreground).") var exitAfter: Double?

  func validate() throws {
    let sources = [bearerToken, bearerTokenEnv, bearerTokenFile].compactMap { $0 }.count
    if auth == .bearer && sources == 0 {
      throw ValidationError("--auth bearer needs --bearer-token-env VAR or --bearer-token-file FILE")
    }
    if sources > 1 { throw ValidationError("give the bearer token one way: --bearer-token-env, --bearer-token-file or --bearer-token") }
    if auth == .smart && smartClients.isEmpty { throw ValidationError("--auth smart needs at least one --smart-client ID=JWKS_FILE") }
    guard (0...65535).contains(port) else { throw ValidationError("--port must be 0–65535") }
    guard patients >= 1 else { throw ValidationError("--patients must be at least 1") }
  }

  func configuration() throws -> BulkServerConfiguration {
    var c = BulkServerConfiguration()
    c.host = host
    c.port = background && port == 8080 ? 0 : port
    c.patients = patients
    c.seed = seed
    c.flavor = flavor
    switch auth {
    case .none: c.auth = .none
    case .bearer: c.auth = .bearer(token: try staticToken())
    case .smart: c.auth = .smart(clients: try loadSmartClients(smartClients))
    }
    c.tokenLifetime = tokenLifetime
    c.dataDirectory = data.map { Workspace.absolutePath($0) }
    c.statePath = state.map { Workspace.absolutePath($0) }
    if let fault { c.faults = try Faults.parse(fault) }
    if noDeleted { c.faults.noDeleted = true }
    if ignorePatient { c.faults.ignorePatient = true }
    c.pollsBeforeComplete = polls
    c.resourcesPerFile = resourcesPerFile
    c.startTime = startTime
    return c
  }

  /// The --auth bearer token, from the environment, a file, or (deprecated) the command line.
  func staticToken() throws -> String {
    if let name = bearerTokenEnv {
      guard let value = ProcessInfo.processInfo.environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty
      else { throw ValidationError("--bearer-token-env \(name): the environment variable \(name) is not set or empty") }
      return value
    }
    if let file = bearerTokenFile {
      let path = Workspace.absolutePath(file)
      guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("--bearer-token-file: cannot read \(path)")
      }
      let first = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
      let token = first.trimmingCharacters(in: .whitespaces)
      guard !token.isEmpty else { throw ValidationError("--bearer-token-file: \(path) is empty") }
      return token
    }
    return bearerToken ?? ""
  }

  @MainActor func execute(in session: Session) async throws {
    if bearerToken != nil {
      session.warn("--bearer-token puts the token in the process list (`ps`); use --bearer-token-env VAR or --bearer-token-file FILE")
    }
    let server: BulkDataServer
    do {
      server = try await BulkDataServer.start(try configuration())
    } catch {
      throw KitError.failed("cannot start the built-in server: \(error)")
    }
    let what = "\(patients) synthetic patients, seed \(seed), \(flavor.rawValue) URLs, auth \(auth.rawValue)"
    if background {
      session.backgroundServers.append(server)
      session.variables["server_url"] = server.baseURL
      session.note("serving \(server.baseURL) in the background (\(what)); $server_url is set")
      return
    }
    // SIGTERM stops the server like Ctrl-C (its temporary folder is removed), then ends the process.
    let terminated = TerminationSignal()
    signal(SIGTERM, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
    // @Sendable: the handler runs on a global queue, not on the main actor this command runs on.
    source.setEventHandler { @Sendable in terminated.fire() }
    source.resume()
    session.print("serving \(server.baseURL) (\(what)); Ctrl-C stops")
    // Until Ctrl-C (which cancels this command), SIGTERM or --exit-after.
    let deadline = exitAfter.map { Date().addingTimeInterval($0) }
    while !Task.isCancelled, !terminated.fired, deadline.map({ Date() < $0 }) ?? true {
      try? await Task.sleep(nanoseconds: 100_000_000)
    }
    await server.stop()
    source.cancel()
    signal(SIGTERM, SIG_DFL)
    session.note("server stopped")
    if terminated.fired {
      for other in session.backgroundServers { await other.stop() }
      Foundation.exit(128 + SIGTERM)
    }
  }
}

/// Set once by the SIGTERM handler of `serve`.
final class TerminationSignal: Sendable {
  private let flag = Atomic<Bool>(false)
  func fire() { flag.store(true, ordering: .relaxed) }
  var fired: Bool { flag.load(ordering: .relaxed) }
}

struct AdvanceCommand: ShellCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "advance",
    abstract: "Move the built-in server's clock: new visits, updates, deletions, patients joining and leaving groups.")
  @Option(help: "Days to move.") var days = 1
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    // A server in another process: POST [base]/$admin/advance?days=N (e.g. with curl).
    guard let server = session.backgroundServers.last as? BulkDataServer else {
      throw KitError.invalidArgument(
        "no built-in server in this session: start one with `serve --background` (for another process: POST BASE/$admin/advance)")
    }
    let report = try await server.advance(days: days)
    let types = Set(report.added.keys).union(report.updated.keys).union(report.deleted.keys).sorted()
    var rows = types.map { t in [t, String(report.added[t]?.count ?? 0), String(report.updated[t]?.count ?? 0), String(report.deleted[t]?.count ?? 0)] }
    for group in Set(report.joined.keys).union(report.left.keys).sorted() {
      rows.append(["Group/\(group) members", String(report.joined[group]?.count ?? 0), "", String(report.left[group]?.count ?? 0)])
    }
    session.note("server clock is now \(report.clock)")
    session.emit(Table(columns: ["type", "added", "updated", "deleted"], rows: rows, integers: ["added", "updated", "deleted"]), format: output.format)
  }
}

struct KeygenCommand: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "keygen",
    abstract: "Make a private key for SMART Backend Services (PEM, mode 0600) and print its public JWKS to register.")
  @Option(help: "ES384 or RS384.") var alg: String = "ES384"
  @Option(help: "Where to write the private key (never overwritten).") var out: String

  @MainActor func execute(in session: Session) async throws {
    let path = Workspace.absolutePath(out)
    let key = try Keys.generate(algorithm: alg, path: path)
    session.note("wrote \(key.algorithm) private key to \(path) (mode 0600); kid \(key.kid). Register this JWKS with the server:")
    session.print(key.jwks)
  }
}
