import ArgumentParser
import CohortKit
import Foundation

/// A command the shell can run. ArgumentParser parses it; `execute` runs it against the session.
protocol ShellCommand: ParsableCommand {
  @MainActor func execute(in session: Session) async throws
}

/// `--format` on every command that prints results.
struct FormatOption: ParsableArguments {
  @Option(name: .long, help: "Output format: table, plain, json or csv (default: table on a terminal, plain when piped).")
  var format: OutputFormat?
}

extension OutputFormat: ExpressibleByArgument {}
extension AuthKind: ExpressibleByArgument {}

enum KickoffMethodArgument: String, ExpressibleByArgument, CaseIterable {
  case get, post
}

// MARK: server

struct ServerCommand: ParsableCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "server", abstract: "Register and inspect FHIR servers.",
    subcommands: [
      ServerAdd.self, ServerList.self, ServerShow.self, ServerSet.self, ServerRemove.self, ServerRename.self,
      ServerCheck.self,
    ])

  /// The range `--connect-timeout` accepts, in seconds.
  static let connectTimeouts: ClosedRange<Double> = 0.1...600

  static func validateConnectTimeout(_ seconds: Double?) throws {
    if let seconds, !connectTimeouts.contains(seconds) {
      throw ValidationError("--connect-timeout is in seconds, from 0.1 to 600 (default 5)")
    }
  }
}

struct ServerAdd: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "add", abstract: "Register a FHIR server by name.",
    discussion: "Tokens are never stored: only the name of the variable or file that holds them.")

  @Argument(help: "Server name ([a-z0-9][a-z0-9._-]{0,63}).") var name: String
  @Argument(help: "FHIR base URL, e.g. https://fhir.example.org/r4") var url: String
  @Option(help: "Authorization: none, bearer or smart.") var auth: AuthKind = .none
  @Option(name: .customLong("token-env"), help: "Environment variable that holds the bearer token.") var tokenEnv: String?
  @Option(name: .customLong("token-file"), help: "File that holds the bearer token.") var tokenFile: String?
  @Option(help: "Kick-off method: get (default) or post (a Parameters body).") var kickoff: KickoffMethodArgument = .get
  @Option(name: .customLong("client-id"), help: "SMART Backend Services client id.") var clientID: String?
  @Option(help: "Path of the private key (PEM or JWK) for SMART Backend Services.") var key: String?
  @Option(help: "Signing algorithm: RS384 or ES384.") var alg: String?
  @Option(help: "Key id (kid) registered with the server.") var kid: String?
  @Option(help: "Scopes to request (default system/*.rs).") var scope: String?
  @Option(name: .customLong("token-url"), help: "Token endpoint (default: from .well-known/smart-configuration).") var tokenURL: String?
  @Option(
    name: .customLong("connect-timeout"),
    help: "Seconds to wait for a connection before reporting the server unreachable (default 5).")
  var connectTimeout: Double?

  func validate() throws {
    try ServerCommand.validateConnectTimeout(connectTimeout)
    if tokenEnv != nil && tokenFile != nil {
      throw ValidationError("give either --token-env or --token-file, not both")
    }
    if auth == .bearer && tokenEnv == nil && tokenFile == nil {
      throw ValidationError("--auth bearer needs --token-env VAR or --token-file PATH (the token itself is never stored)")
    }
    if auth != .bearer && (tokenEnv != nil || tokenFile != nil) {
      throw ValidationError("--token-env/--token-file go with --auth bearer")
    }
    if auth == .smart && (clientID == nil || key == nil) {
      throw ValidationError("--auth smart needs --client-id ID and --key PATH")
    }
    if let alg, !["RS384", "ES384"].contains(alg) {
      throw ValidationError("--alg must be RS384 or ES384")
    }
  }

  @MainActor func execute(in session: Session) async throws {
    let base = try Registry.validateBaseURL(url)
    if let tokenEnv { try Registry.validateEnvName(tokenEnv) }
    let kit = try session.open(create: true)
    let keyPath = key.map { Workspace.absolutePath($0) }
    try kit.addServer(
      ServerRecord(
        name: name, baseURL: base, authKind: auth, tokenEnv: tokenEnv,
        tokenFile: tokenFile.map { Workspace.absolutePath($0) }, clientID: clientID, keyPath: keyPath,
        keyAlg: alg, keyID: kid, scope: scope, tokenURL: tokenURL, kickoffMethod: kickoff.rawValue,
        connectTimeout: connectTimeout))
    if let keyPath, let warning = Keys.permissionWarning(path: keyPath) { session.warn(warning) }
    session.note("added server \(name) → \(base)")
  }
}

struct ServerList: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "list", abstract: "List registered servers.")
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let servers = session.workspace.exists ? try session.open(create: false).servers() : []
    session.emit(
      Table(
        columns: ["name", "url", "auth", "kickoff"],
        rows: servers.map { [$0.name, $0.baseURL, $0.authKind.rawValue, $0.kickoffMethod] }),
      format: output.format)
  }
}

struct ServerShow: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one server's settings.")
  @Argument(help: "Server name.", completion: .serverName) var name: String
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let s = try session.open(create: false).server(named: name)
    var rows: [[String]] = [
      ["name", s.name], ["url", s.baseURL], ["auth", s.authKind.rawValue], ["kickoff", s.kickoffMethod],
      ["connect-timeout", ServerShow.seconds(s.connectTimeout ?? 5) + (s.connectTimeout == nil ? " (default)" : "")],
    ]
    if let env = s.tokenEnv {
      let set = (session.environment[env] ?? "").isEmpty ? "not set" : "set"
      rows.append(["token", "from environment variable \(env) (\(set))"])
    }
    if let file = s.tokenFile {
      rows.append(["token", "from file \(file)\(FileManager.default.fileExists(atPath: file) ? "" : " (missing)")"])
    }
    if let v = s.clientID { rows.append(["client-id", v]) }
    if let v = s.keyPath { rows.append(["key", v]) }
    if let v = s.keyAlg { rows.append(["alg", v]) }
    if let v = s.keyID { rows.append(["kid", v]) }
    if let v = s.scope { rows.append(["scope", v]) }
    if let v = s.tokenURL { rows.append(["token-url", v]) }
    rows.append(["created", s.createdAt])
    session.emit(Table(columns: ["field", "value"], rows: rows), format: output.format)
  }
}

extension ServerShow {
  static func seconds(_ value: Double) -> String {
    (value.rounded() == value ? String(Int(value)) : String(value)) + " s"
  }
}

struct ServerSet: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "set", abstract: "Change a server's connection settings (its cohorts and their history stay).")
  @Argument(help: "Server name.", completion: .serverName) var name: String
  @Option(
    name: .customLong("connect-timeout"),
    help: "Seconds to wait for a connection before reporting the server unreachable (default 5).")
  var connectTimeout: Double?
  @Option(help: "Kick-off method: get or post (a Parameters body).") var kickoff: KickoffMethodArgument?

  func validate() throws {
    try ServerCommand.validateConnectTimeout(connectTimeout)
    if connectTimeout == nil && kickoff == nil { throw ValidationError("nothing to change: give --connect-timeout or --kickoff") }
  }

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    var server = try kit.server(named: name)
    var changed: [String] = []
    if let connectTimeout {
      server.connectTimeout = connectTimeout
      changed.append("connect timeout \(ServerShow.seconds(connectTimeout))")
    }
    if let kickoff {
      server.kickoffMethod = kickoff.rawValue
      changed.append("kick-off \(kickoff.rawValue.uppercased())")
    }
    try kit.updateServer(server)
    session.note("server \(name): \(changed.joined(separator: ", "))")
  }
}

struct ServerRemove: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a server (no cohort may use it).")
  @Argument(help: "Server name.", completion: .serverName) var name: String
  @MainActor func execute(in session: Session) async throws {
    try session.open(create: false).removeServer(named: name)
    session.note("removed server \(name)")
  }
}

struct ServerRename: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a server (its cohorts follow).")
  @Argument(help: "Current name.", completion: .serverName) var old: String
  @Argument(help: "New name.") var new: String
  @MainActor func execute(in session: Session) async throws {
    try session.open(create: false).renameServer(old, to: new)
    session.note("renamed server \(old) → \(new)")
  }
}

// MARK: cohort

struct CohortGroupCommand: ParsableCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "cohort", abstract: "Name cohorts: a FHIR Group on a registered server.",
    subcommands: [CohortAdd.self, CohortSet.self, CohortList.self, CohortShow.self, CohortRemove.self, CohortRename.self])
}

struct CohortAdd: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "add", abstract: "Map a cohort name to a Group on a server.")
  @Argument(help: "Cohort name ([a-z0-9][a-z0-9._-]{0,63}).") var name: String
  @Option(help: "Server name.", completion: .serverName) var server: String
  @Option(help: "FHIR Group id.") var group: String
  @Option(help: "Default resource types, comma-separated (e.g. Patient,Observation).") var types: String?
  @Option(name: .customLong("type-filter"), help: "A _typeFilter query that is part of the cohort (repeatable).") var typeFilters: [String] = []
  @Option(help: "_elements that are part of the cohort, comma-separated.") var elements: String?
  @Option(help: "A note for the record.") var note: String?

  @MainActor func execute(in session: Session) async throws {
    let typeList = try ResourceTypes.parseList(types)
    try Registry.validateTypeFilters(typeFilters)
    let kit = try session.open(create: true)
    try kit.addCohort(
      CohortRecord(
        name: name, server: server, groupID: group,
        defaultTypes: typeList.isEmpty ? nil : typeList.joined(separator: ","), note: note, typeFilters: typeFilters,
        elements: elements.map { $0.split(separator: ",").map(String.init) } ?? []))
    session.note("added cohort \(name) → Group/\(group) on \(server)")
  }
}

struct CohortSet: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "set",
    abstract: "Change a cohort's definition (types, type filters, elements); says which watermarks it resets.")
  @Argument(help: "Cohort name.") var name: String
  @Option(help: "Resource types, comma-separated; '' for every type.") var types: String?
  @Option(name: .customLong("type-filter"), help: "A _typeFilter query (repeatable); replaces the cohort's filters.") var typeFilters: [String] = []
  @Flag(name: .customLong("no-type-filter"), help: "Remove the cohort's type filters.") var noTypeFilter = false
  @Option(help: "_elements, comma-separated; '' for whole resources.") var elements: String?

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    let filters: [String]? = noTypeFilter ? [] : (typeFilters.isEmpty ? nil : typeFilters)
    let result = try kit.setDefinition(
      cohort: name, types: try types.map { try ResourceTypes.parseList($0) }, typeFilters: filters,
      elements: elements.map { $0.split(separator: ",").map(String.init) })
    let reset = result.reset.map { $0 == "*" ? "every type" : $0 }
    session.note(
      "cohort \(name): "
        + (reset.isEmpty
          ? "definition updated; no watermark changed"
          : "definition updated; watermarks reset for \(reset.joined(separator: ", ")) (the next --incremental pulls them in full)"))
  }
}

struct CohortList: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "list", abstract: "List cohorts.")
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    guard session.workspace.exists else {
      session.emit(Table(columns: ["name", "server", "group", "types", "snapshots", "last export"], rows: []), format: output.format)
      return
    }
    let kit = try session.open(create: false)
    var rows: [[String]] = []
    for c in try kit.cohorts() {
      let snaps = try kit.snapshots(cohort: c.name)
      rows.append([
        c.name, c.server, c.groupID, c.defaultTypes ?? "(all)", String(snaps.count),
        snaps.last?.transactionTime ?? "",
      ])
    }
    session.emit(
      Table(columns: ["name", "server", "group", "types", "snapshots", "last export"], rows: rows, integers: ["snapshots"]), format: output.format)
  }
}

struct CohortShow: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one cohort.")
  @Argument(help: "Cohort name.", completion: .cohortName) var name: String
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    let c = try kit.cohort(named: name)
    let exports = try kit.exports(cohort: name)
    let snaps = exports.filter { $0.phase == .committed }
    var rows = [
      ["name", c.name], ["server", c.server], ["group", c.groupID], ["types", c.defaultTypes ?? "(all)"],
      ["type filters", c.typeFilters.joined(separator: " ")], ["elements", c.elements.joined(separator: ",")],
      ["note", c.note ?? ""], ["created", c.createdAt], ["exports", String(exports.count)],
      ["snapshots", String(snaps.count)], ["folder", session.workspace.cohortFolder(name)],
    ]
    if let open = exports.last(where: { $0.phase.isOpen }) {
      rows.append(["open job", "#\(open.seq) \(open.phase.rawValue)"])
    }
    session.emit(Table(columns: ["field", "value"], rows: rows), format: output.format)
  }
}

struct CohortRemove: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "remove", abstract: "Remove a cohort; with exports it needs --force and deletes its folder.")
  @Argument(help: "Cohort name.", completion: .cohortName) var name: String
  @Flag(help: "Also delete its exports, snapshots and files.") var force = false
  @MainActor func execute(in session: Session) async throws {
    try session.open(create: false).removeCohort(name, force: force)
    session.note("removed cohort \(name)")
  }
}

struct CohortRename: ShellCommand {
  static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a cohort and its folder.")
  @Argument(help: "Current name.", completion: .cohortName) var old: String
  @Argument(help: "New name.") var new: String
  @MainActor func execute(in session: Session) async throws {
    try session.open(create: false).renameCohort(old, to: new)
    session.note("renamed cohort \(old) → \(new)")
  }
}
