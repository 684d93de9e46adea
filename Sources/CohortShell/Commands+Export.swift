import CohortBasics
import ArgumentParser
import CohortKit
import Foundation

extension Session {
  /// The client factory for this session (auth from the environment; SMART plugged in when built).
  var clientFactory: ClientFactory {
    var factory = ClientFactory(environment: environment)
    let (writer, color) = (stderr, color)
    factory.warn = { writer.write(Session.warningLine($0, color: color)) }
    return factory
  }

  /// Renders protocol events: a redrawn line on a terminal, plain milestone lines otherwise.
  func eventHandler() -> (@Sendable (ExportEvent) -> Void, @Sendable () -> Void) {
    let writer = stderr
    if writer.isTerminal {
      let tty = TTYReporter(write: { writer.write($0) })
      return ({ tty.handle($0) }, { tty.finish() })
    }
    let plain = PlainReporter(interval: .seconds(10), write: { writer.write($0.hasSuffix("\n") ? $0 : $0 + "\n") })
    return ({ plain.handle($0) }, {})
  }
}

struct ExportCommand: ShellCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Export a cohort with Bulk Data $export (kick-off, poll, download, verify, commit a snapshot).",
    discussion: """
      Without --incremental or --since the export is full and re-baselines the cohort (resources it no longer
      returns are removed). An unfinished job of the cohort is resumed instead of starting a second one.
      """)

  @Argument(help: "Cohort name.", completion: .cohortName) var cohort: String
  @Flag(help: "Only what changed since the last snapshot (_since = its transactionTime).") var incremental = false
  @Flag(help: "A full export that re-baselines the cohort (the default).") var full = false
  @Option(help: "Only changes after this FHIR instant (e.g. 2024-01-15T00:00:00Z).") var since: String?
  @Option(help: "Only changes up to this FHIR instant (STU3 _until).") var until: String?
  @Option(name: .customLong("type"), help: "Resource types, comma-separated or repeated (default: the cohort's).", completion: .resourceTypes) var types: [String] = []
  @Option(name: .customLong("type-filter"), help: "A _typeFilter query, e.g. 'Observation?code=4548-4' (repeatable).") var typeFilters: [String] = []
  @Option(help: "Elements to include (_elements), comma-separated.") var elements: String?
  @Option(name: .customLong("output-format"), help: "application/fhir+ndjson, application/ndjson or ndjson.") var outputFormat: String?
  @Option(help: "Parallel downloads (1–10).") var parallel = 4
  @Flag(help: "Resume the cohort's unfinished job (the default when there is one).") var resume = false
  @Flag(help: "Cancel the cohort's unfinished job (DELETE on the server) and mark it cancelled.") var cancel = false
  @Flag(help: "List the ids the server has now (_elements=id) and remove from the state what it no longer has.") var reconcile = false
  @Flag(name: .customLong("accept-partial"), help: "Advance watermarks even when the server reported errors.") var acceptPartial = false
  @Flag(name: .customLong("keep-failed"), help: "Keep the folder of a failed or cancelled export (removed by default).") var keepFailed = false
  @Flag(name: .customLong("dry-run"), help: "Print the kick-off request and send nothing.") var dryRun = false
  @Option(name: .customLong("allow-origin"), help: "Another host the token may be sent to for manifest files (repeatable).") var allowOrigins: [String] = []
  @OptionGroup var output: FormatOption

  func validate() throws {
    guard (1...10).contains(parallel) else { throw ValidationError("--parallel must be between 1 and 10") }
  }

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    let (handler, finish) = session.eventHandler()
    let exporter = try kit.exporter(
      factory: session.clientFactory, events: handler, note: { [writer = session.stderr] in writer.write(Session.noteLine($0)) })
    if cancel {
      let job = try await exporter.cancel(cohortName: cohort, keepFiles: keepFailed)
      session.note("export #\(job.seq) of \(cohort) cancelled")
      return
    }
    var options = ExportOptions()
    options.types = try ResourceTypes.parseList(types)
    options.since = since
    options.until = until
    options.typeFilters = typeFilters
    options.elements = elements.map { e in e.split(separator: ",").map { String($0) } } ?? []
    options.outputFormat = outputFormat
    options.incremental = incremental
    options.full = full
    options.resume = resume
    options.parallel = parallel
    options.acceptPartial = acceptPartial
    options.keepFailed = keepFailed
    options.reconcile = reconcile
    options.allowOrigins = allowOrigins
    if dryRun {
      let dry = try exporter.dryRun(cohortName: cohort, options: options)
      for line in dry.plan.notes { session.note(line) }
      if dry.plan.side, let reason = dry.plan.reason {
        session.note("side export: \(reason) — it would move no watermark and change nothing in the cohort's state")
      }
      for (index, request) in dry.requests.enumerated() {
        if dry.requests.count > 1 {
          session.print("# kick-off \(index + 1) of \(dry.requests.count): _since \(dry.plan.jobs[index].parameters.since ?? "(none: full)")")
        }
        session.print((request.body == nil ? "GET " : "POST ") + request.url)
        if let body = request.body { session.print(body) }
      }
      return
    }
    let outcome: ExportOutcome
    do {
      outcome = try await exporter.export(cohortName: cohort, options: options)
      finish()
    } catch {
      finish()
      throw error
    }
    let job = outcome.export
    let i = outcome.ingest
    var rows: [[String]] = [
      ["snapshot", "#\(job.seq)"], ["kind", job.side ? job.kind + " (side export)" : job.kind], ["since", job.since ?? ""],
      ["transactionTime", job.transactionTime ?? ""],
    ]
    let pulls = outcome.jobs.filter { $0.role != .joiners }
    if pulls.count > 1 {
      for j in pulls {
        rows.append(["kick-off \(j.ordinal)", "\(j.types ?? "(all types)") since \(j.since ?? "(full)") → \(j.transactionTime ?? "")"])
      }
    }
    if let joiners = outcome.jobs.first(where: { $0.role == .joiners }) {
      rows.append(["joiners' history", joiners.transactionTime ?? (joiners.error == nil ? "" : "refused by the server")])
    }
    rows += [
      ["files", String(outcome.files)],
      ["resources", String(outcome.resources)], ["added", String(i.added)], ["changed", String(i.changed)],
      ["removed", String(i.removed)], ["unchanged", String(i.unchanged)],
      ["joined", String(i.joined.count)], ["left", String(i.left.count)],
    ]
    if let deletions = job.deletions { rows.append(["deletions", deletions]) }
    if let pulled = outcome.pulled {
      rows.append(["pulled first", "snapshot #\(pulled.seq): \(pulled.ingest.added) added, \(pulled.ingest.changed) changed, \(pulled.ingest.removed) removed"])
    }
    rows.append(["outcome", job.outcome ?? ""])
    session.emit(Table(columns: ["field", "value"], rows: rows), format: output.format)
  }
}

struct StatusCommand: ShellCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "status", abstract: "Show unfinished export jobs and their phase.")
  @Argument(help: "Cohort name (default: all cohorts).", completion: .cohortName) var cohort: String?
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    guard session.workspace.exists else {
      session.emit(Table(columns: ["cohort", "export", "phase", "started", "status host", "error"], rows: []), format: output.format)
      return
    }
    let kit = try session.open(create: false)
    if let cohort { _ = try kit.cohort(named: cohort) }
    let open = try kit.exports(cohort: cohort).filter { $0.phase.isOpen }
    session.emit(
      Table(
        columns: ["cohort", "export", "phase", "started", "status host", "error"],
        rows: open.map { [$0.cohort, "#\($0.seq)", $0.phase.rawValue, $0.startedAt, host($0.statusURL), $0.error ?? ""] }),
      format: output.format)
  }
}

func host(_ url: String?) -> String {
  guard let url, let components = URLComponents(string: url) else { return "" }
  return (components.host ?? "") + (components.port.map { ":\($0)" } ?? "")
}

struct HistoryCommand: ShellCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "history", abstract: "Every export of a cohort, including failed and cancelled ones.")
  @Argument(help: "Cohort name.", completion: .cohortName) var cohort: String
  @Flag(help: "Then a bar chart of the cohort's size after each export (on a terminal; --color forces it).") var chart = false
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    _ = try kit.cohort(named: cohort)
    let rows = try kit.exports(cohort: cohort).map { e -> [String] in
      let params = (try? JSONSerialization.jsonObject(with: Data(e.paramsJSON.utf8)) as? [String: Any]) ?? [:]
      let filters = (params["typeFilters"] as? [String] ?? []).joined(separator: " ")
      return [
        "#\(e.seq)", e.startedAt, e.side ? e.kind + " (side)" : e.kind, e.types ?? "(all)", e.since ?? "", filters,
        host(e.statusURL), e.transactionTime ?? "", String(e.files), String(e.resources), String(e.bytes), duration(e),
        e.outcome ?? e.phase.rawValue, e.deletions ?? "", e.error ?? e.note ?? "",
      ]
    }
    session.emit(
      Table(
        columns: [
          "export", "started", "kind", "types", "since", "type filters", "status host", "transactionTime", "files",
          "resources", "bytes", "duration", "outcome", "deletions", "error / note",
        ],
        rows: rows, integers: ["files", "resources", "bytes"]), format: output.format)
    if chart, TerminalCharts.enabled(session, format: output.format) {
      session.print(try TerminalCharts.history(cohort: cohort, workspace: kit, pinned: session.pinnedLatest))
    }
  }

  func duration(_ e: ExportRecord) -> String {
    guard let end = e.finishedAt, let a = parseInstant(e.startedAt), let b = parseInstant(end) else { return "" }
    return String(format: "%.0fs", b.timeIntervalSince(a))
  }
}

struct SnapshotsCommand: ShellCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "snapshots", abstract: "One row per committed export: id, kind, _since, transactionTime, counts.")
  @Argument(help: "Cohort name.", completion: .cohortName) var cohort: String
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    _ = try kit.cohort(named: cohort)
    let rows = try kit.snapshots(cohort: cohort).map { s -> [String] in
      let total = try kit.counts(cohort: cohort, at: s.id!).values.reduce(0, +)
      return ["#\(s.seq)", s.kind, s.since ?? "", s.transactionTime ?? "", String(s.files), String(s.resources), String(total), s.outcome ?? ""]
    }
    session.emit(
      Table(
        columns: ["snapshot", "kind", "since", "transactionTime", "files", "downloaded", "in cohort", "outcome"], rows: rows,
        integers: ["files", "downloaded", "in cohort"]),
      format: output.format)
  }
}

struct WatermarksCommand: ShellCommand, ReplayedFromRecord {
  static let configuration = CommandConfiguration(
    commandName: "watermarks", abstract: "Per resource type: the transactionTime the next --incremental export sends as _since.")
  @Argument(help: "Cohort name.", completion: .cohortName) var cohort: String
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    _ = try kit.cohort(named: cohort)
    let exports = Dictionary(uniqueKeysWithValues: try kit.exports(cohort: cohort).map { ($0.id!, $0.seq) })
    session.emit(
      Table(
        columns: ["type", "transactionTime", "snapshot"],
        rows: try kit.watermarks(cohort: cohort).map {
          [$0.resourceType == "*" ? "(every type)" : $0.resourceType, $0.transactionTime, "#\(exports[$0.exportID] ?? 0)"]
        }),
      format: output.format)
  }
}

struct ServerCheck: ShellCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract: "Ask a server what it supports: authorization, the CapabilityStatement's export levels, types and parameters.")
  @Argument(help: "Server name.", completion: .serverName) var name: String
  @OptionGroup var output: FormatOption

  @MainActor func execute(in session: Session) async throws {
    let kit = try session.open(create: false)
    let report = try await ServerDiagnostics.check(server: try kit.server(named: name), factory: session.clientFactory)
    var rows: [[String]] = [["server", report.server], ["url", report.url], ["auth", report.auth]]
    if let smart = report.smart {
      rows += [
        ["token endpoint", "\(smart.tokenEndpoint) (from \(smart.tokenEndpointSource))"],
        ["scope requested", smart.scopeRequested],
        ["scope granted", smart.scopeGranted.isEmpty ? "(none)" : smart.scopeGranted],
        ["token lifetime", "\(smart.tokenLifetimeSeconds) s"],
      ]
      if !smart.signingAlgorithms.isEmpty { rows.append(["signing algorithms", smart.signingAlgorithms.joined(separator: ", ")]) }
      rows.append(["server", smart.server])
      rows.append(["export operations", smart.exportOperations.isEmpty ? "(none declared)" : smart.exportOperations.joined(separator: ", ")])
      rows.append(["resource types", String(smart.resourceTypeCount)])
      rows += smart.warnings.map { ["warning", $0] }
    } else if report.tokenAvailable == true {
      rows.append(["token", "available (not shown)"])
    }
    rows.append(["software", report.software])
    rows.append(["fhirVersion", report.fhirVersion ?? ""])
    rows.append(["export levels", report.exportLevels.joined(separator: ", ")])
    rows.append(["resource types", report.resourceTypes.joined(separator: ",")])
    let filterable = report.typeFilterParameters.keys.sorted().map {
      "\($0)(\(report.typeFilterParameters[$0]!.joined(separator: ",")))"
    }
    rows.append(["_typeFilter params", filterable.joined(separator: " ")])
    session.emit(Table(columns: ["field", "value"], rows: rows), format: output.format)
  }
}

