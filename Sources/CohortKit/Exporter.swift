import CohortStore
import FHIRBulk
import Foundation
import NDJSON

/// What the user asked `export` to do.
public struct ExportOptions: Sendable {
  public var types: [String] = []
  public var since: String?
  public var until: String?
  public var typeFilters: [String] = []
  public var elements: [String] = []
  public var outputFormat: String?
  public var incremental = false
  /// Explicitly full (re-baseline); the default when neither --incremental nor --since is given.
  public var full = false
  public var resume = false
  public var parallel = 4
  public var acceptPartial = false
  /// Other origins the token may be sent to (manifest file URLs on another host).
  public var allowOrigins: [String] = []
  public init() {}
}

/// How an export ended.
public struct ExportOutcome: Sendable {
  public var export: ExportRecord
  public var ingest: IngestResult
  public var resumed: Bool
  public var files: Int
  public var resources: Int
  public var bytes: Int64
  public var partial: Bool
  public var folder: String
}

/// Errors of the export workflow with the documented exit codes.
public enum ExportError: Error, CustomStringConvertible, Sendable {
  case bulk(BulkError, exportSeq: Int?, resumable: Bool, cohort: String)
  case interrupted(exportSeq: Int, cohort: String)
  case noOpenJob(cohort: String)
  case conflictingOptions(String)
  case missingToken(String)
  case failed(String)

  public var description: String {
    switch self {
    case .bulk(let error, let seq, let resumable, let cohort):
      var text = error.description
      if let seq, resumable {
        text += " — export #\(seq) is kept: `export \(cohort)` resumes it, `export \(cohort) --cancel` cancels it"
      }
      return text
    case .interrupted(let seq, let cohort):
      return "export #\(seq) interrupted; `export \(cohort)` resumes the same server job, `export \(cohort) --cancel` cancels it"
    case .noOpenJob(let cohort):
      return "cohort '\(cohort)' has no unfinished export to cancel"
    case .conflictingOptions(let text), .missingToken(let text), .failed(let text):
      return text
    }
  }
}

extension ExportError: CohortFailure {
  public var exitCode: Int32 {
    switch self {
    case .bulk(let error, _, _, _):
      switch error {
      case .invalidParameter, .notSupported: return 64
      case .io: return 1
      default: return 2
      }
    case .interrupted: return 130
    case .conflictingOptions: return 64
    case .noOpenJob, .missingToken, .failed: return 1
    }
  }
}

extension BulkError: CohortFailure {
  public var exitCode: Int32 {
    switch self {
    case .invalidParameter: return 64
    case .io: return 1
    default: return 2
    }
  }
}

extension SMARTError: CohortFailure {
  public var exitCode: Int32 {
    switch self {
    case .discovery, .tokenRejected, .tokenResponse, .network: return 2
    default: return 1
    }
  }
}

/// Builds protocol clients for registered servers (auth from the server's settings).
public struct ClientFactory: Sendable {
  public var environment: [String: String]
  public var userAgent = "cohort/0.1 (FHIR Bulk Data client)"
  /// Extra token providers by auth kind (SMART plugs in here).
  public var smartProvider: (@Sendable (ServerRecord) throws -> any AccessTokenProvider)?
  public var pollPolicy = PollPolicy()
  public var downloadPolicy = DownloadPolicy()

  public init(environment: [String: String]) { self.environment = environment }

  public func tokenProvider(for server: ServerRecord) throws -> (any AccessTokenProvider)? {
    switch server.authKind {
    case .none:
      return nil
    case .bearer:
      if let env = server.tokenEnv {
        guard let token = environment[env], !token.isEmpty else {
          throw ExportError.missingToken(
            "server '\(server.name)' takes its bearer token from the environment variable \(env), which is not set; export it and try again")
        }
        return StaticTokenProvider(token)
      }
      if let file = server.tokenFile {
        guard let data = FileManager.default.contents(atPath: file),
          let token = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty
        else {
          throw ExportError.missingToken("server '\(server.name)' reads its bearer token from \(file), which is missing or empty")
        }
        return StaticTokenProvider(token)
      }
      throw ExportError.missingToken("server '\(server.name)' has --auth bearer but no token source")
    case .smart:
      guard let smartProvider else {
        throw ExportError.failed("SMART Backend Services is not available in this build")
      }
      return try smartProvider(server)
    }
  }

  public func client(for server: ServerRecord, events: @escaping @Sendable (BulkEvent) -> Void) throws -> BulkClient {
    let endpoint = BulkEndpoint(
      baseURL: server.baseURL, kickoffMethod: server.kickoffMethod == "post" ? .post : .get,
      auth: try tokenProvider(for: server), userAgent: userAgent)
    return BulkClient(endpoint: endpoint, pollPolicy: pollPolicy, downloadPolicy: downloadPolicy, events: events)
  }
}

/// The export workflow: records the job before kick-off and after every phase, resumes an open job
/// instead of starting a second one, downloads into `<workspace>/<cohort>/<NNNN>/`, verifies, and
/// commits files, index rows and watermarks in one transaction.
public final class Exporter: Sendable {
  public let workspace: Workspace
  public let store: Store
  public let factory: ClientFactory
  let events: @Sendable (BulkEvent) -> Void
  let note: @Sendable (String) -> Void

  public init(
    workspace: Workspace, store: Store, factory: ClientFactory,
    events: @escaping @Sendable (BulkEvent) -> Void, note: @escaping @Sendable (String) -> Void
  ) {
    self.workspace = workspace
    self.store = store
    self.factory = factory
    self.events = events
    self.note = note
  }

  // MARK: Planning

  /// The parameters a new export of `cohort` would send, and whether it is incremental.
  public func plan(cohort: CohortRecord, options: ExportOptions) throws -> (parameters: ExportParameters, kind: String) {
    if options.incremental && options.since != nil {
      throw ExportError.conflictingOptions("give either --incremental or --since, not both")
    }
    if options.full && (options.incremental || options.since != nil) {
      throw ExportError.conflictingOptions("--full re-baselines; it cannot be combined with --incremental or --since")
    }
    let types = options.types.isEmpty ? cohort.types : options.types
    var since = options.since
    var kind = since == nil ? "full" : "incremental"
    if options.incremental {
      let marks = try store.watermarks(cohort: cohort.name)
      let relevant = types.isEmpty ? marks : marks.filter { types.contains($0.resourceType) }
      let missing = types.filter { t in !marks.contains { $0.resourceType == t } }
      if relevant.isEmpty {
        note("no watermark yet for cohort \(cohort.name): this export is full")
      } else if !missing.isEmpty {
        // Types without a watermark must come in full; one full export covers them all.
        note("no watermark for \(missing.joined(separator: ", ")): this export is full")
      } else {
        // The oldest watermark: the merge is idempotent, so overlap is harmless and nothing is missed.
        since = relevant.map(\.transactionTime).min { instantOrder($0, $1) == .orderedAscending }
        kind = "incremental"
      }
    }
    let parameters = ExportParameters(
      types: types, since: since, until: options.until, typeFilters: options.typeFilters,
      elements: options.elements, outputFormat: options.outputFormat)
    return (parameters, kind)
  }

  /// The kick-off request a new export would send (`--dry-run`, C22).
  public func dryRun(cohortName: String, options: ExportOptions) throws -> (url: String, body: String?) {
    let cohort = try store.cohort(named: cohortName)
    let server = try store.server(named: cohort.server)
    let (parameters, _) = try plan(cohort: cohort, options: options)
    let endpoint = BulkEndpoint(
      baseURL: server.baseURL, kickoffMethod: server.kickoffMethod == "post" ? .post : .get, auth: nil,
      userAgent: factory.userAgent)
    try parameters.validate(method: endpoint.kickoffMethod)
    let client = BulkClient(endpoint: endpoint)
    return (client.kickoffURL(level: .group(cohort.groupID), parameters: parameters), client.kickoffBody(parameters: parameters))
  }

  // MARK: Cancel

  /// Sends DELETE for the open job and marks it cancelled.
  public func cancel(cohortName: String) async throws -> ExportRecord {
    let cohort = try store.cohort(named: cohortName)
    guard var job = try store.openExport(cohort: cohort.name) else { throw ExportError.noOpenJob(cohort: cohort.name) }
    if let statusURL = job.statusURL {
      let server = try store.server(named: cohort.server)
      let client = try factory.client(for: server, events: events)
      do {
        try await client.delete(statusURL: statusURL)
      } catch {
        note("warning: the server did not confirm the cancellation (\(error)); the job is marked cancelled here")
      }
    }
    job.phase = .cancelled
    job.outcome = "cancelled"
    job.finishedAt = isoNow()
    try store.updateExport(job)
    return job
  }

  // MARK: Export

  public func export(cohortName: String, options: ExportOptions) async throws -> ExportOutcome {
    let cohort = try store.cohort(named: cohortName)
    let server = try store.server(named: cohort.server)
    let client = try factory.client(for: server, events: events)
    var job: ExportRecord
    var resumed = false
    if let open = try store.openExport(cohort: cohort.name) {
      job = open
      resumed = true
      note("resuming export #\(job.seq) (\(job.phase.rawValue)) of \(cohort.name) — the same server job, no new kick-off")
    } else {
      if options.resume { throw ExportError.failed("cohort '\(cohort.name)' has no unfinished export to resume") }
      let (parameters, kind) = try plan(cohort: cohort, options: options)
      try parameters.validate(method: client.endpoint.kickoffMethod)
      // SMART: the granted scopes must cover the requested types before anything is kicked off (C7).
      if let smart = client.endpoint.auth as? SMARTTokenProvider {
        try await smart.checkScopes(covering: parameters.types)
      }
      let firstExport = try store.exports(cohort: cohort.name).isEmpty
      var software: String?
      if firstExport {
        // Before the first export of a cohort: the server must declare what we are about to ask.
        do {
          let capability = try await client.checkSupport(level: .group(cohort.groupID), parameters: parameters)
          software = [capability.softwareName, capability.softwareVersion].compactMap { $0 }.joined(separator: " ")
        } catch let error as BulkError {
          throw ExportError.bulk(error, exportSeq: nil, resumable: false, cohort: cohort.name)
        }
      }
      let paramsJSON = String(decoding: try JSONEncoder.sorted.encode(parameters), as: UTF8.self)
      job = try store.createExport(
        cohort: cohort.name, kind: options.full ? "full" : kind, since: parameters.since, until: parameters.until,
        types: parameters.types, paramsJSON: paramsJSON, kickoffMethod: client.endpoint.kickoffMethod.rawValue)
      job.kickoffURL = client.kickoffURL(level: .group(cohort.groupID), parameters: parameters)
      job.serverSoftware = software
      try store.updateExport(job)
    }
    return try await run(job: &job, cohort: cohort, client: client, options: options, resumed: resumed)
  }

  private func parameters(of job: ExportRecord) throws -> ExportParameters {
    try JSONDecoder().decode(ExportParameters.self, from: Data(job.paramsJSON.utf8))
  }

  private func run(
    job: inout ExportRecord, cohort: CohortRecord, client: BulkClient, options: ExportOptions, resumed: Bool
  ) async throws -> ExportOutcome {
    let folder = workspace.cohortFolder(cohort.name) + "/" + job.folderName
    do {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    } catch {
      throw ExportError.failed("cannot create \(folder); check the workspace's permissions")
    }
    let log = try? ExportLogWriter(
      path: folder + "/log.ndjson", exportId: "\(cohort.name)-\(job.folderName)",
      metadata: [("cohort", cohort.name), ("group", cohort.groupID)])
    defer { log?.close() }
    let forward = events
    var observedEndpoint = client.endpoint
    observedEndpoint.allowedOrigins += options.allowOrigins
    let observed = BulkClient(
      endpoint: observedEndpoint, pollPolicy: client.pollPolicy, downloadPolicy: client.downloadPolicy,
      events: { event in
        forward(event)
        log?.handle(event)
      })
    let parameters = try parameters(of: job)

    do {
      // requested → accepted: kick-off (a job that crashed before its status URL was saved is re-sent:
      // no server job is known for it).
      if job.statusURL == nil {
        try Task.checkCancellation()
        let statusURL = try await observed.kickoff(level: .group(cohort.groupID), parameters: parameters)
        job.statusURL = statusURL
        job.phase = .accepted
        try store.updateExport(job)
      }
      guard let statusURL = job.statusURL else { throw ExportError.failed("internal: no status URL") }

      // accepted → complete: poll for the manifest.
      var manifest: Manifest
      if let saved = job.manifestJSON, job.phase == .complete || job.phase == .downloading {
        manifest = try Manifest.parse(Data(saved.utf8))
      } else {
        manifest = try await observed.waitForManifest(statusURL: statusURL, expectedRequest: job.kickoffURL)
        job.manifestJSON = String(decoding: try JSONEncoder.sorted.encode(manifest), as: UTF8.self)
        job.transactionTime = manifest.transactionTime
        job.phase = .complete
        try store.updateExport(job)
        try writeManifest(manifest, folder: folder)
      }

      // The token never goes to another origin: files on other hosts that require it are refused (C12).
      if manifest.requiresAccessToken && client.endpoint.auth != nil {
        try TokenOriginPolicy(baseURL: client.endpoint.baseURL, allowedOrigins: options.allowOrigins).check(manifest)
      }

      // complete → downloading: every file not yet committed, verified, renamed, recorded.
      job.phase = .downloading
      try store.updateExport(job)
      let already = try store.files(exportID: job.id!)
      // Resume is keyed by where a file lands (relative to the export folder), not by its URL.
      let folderPrefix = job.folderName + "/"
      let skip = Set(already.compactMap { $0.path.hasPrefix(folderPrefix) ? String($0.path.dropFirst(folderPrefix.count)) : nil })
      if !already.isEmpty { note("\(already.count) file(s) of export #\(job.seq) already downloaded; fetching the rest") }
      let exportID = job.id!
      let store = self.store
      let prefix = job.folderName + "/"
      let downloaded = try await observed.downloadAll(
        manifest, into: folder, parallel: options.parallel, statusURL: statusURL, skip: skip
      ) { file in
        try store.addFile(
          FileRecord(
            exportID: exportID, kind: file.kind.rawValue, type: file.type, url: file.url,
            path: prefix + file.relativePath, bytes: file.bytes, lines: file.lines, sha256: file.sha256))
      }
      _ = downloaded

      // Group membership: the current member list (C59–C61).
      var members: [String]?
      do {
        switch try await observed.groupMembers(groupID: cohort.groupID) {
        case .known(let ids): members = ids
        case .unknown(let reason):
          note("warning: membership unknown: \(reason); joiners and leavers are not computed this time")
        }
      } catch {
        note("warning: could not read Group/\(cohort.groupID) for its member list (\(error)); joiners and leavers are not computed this time")
      }

      // Joiners of an incremental export come without their older data: pull their history without
      // _since (the Group Membership Request Pattern, C59), into joiners/ of the same snapshot.
      if let members, parameters.since != nil {
        let previous = Set(try store.currentMembers(cohort: cohort.name))
        let joiners = members.filter { !previous.contains($0) }.sorted()
        if !previous.isEmpty && !joiners.isEmpty {
          try await pullJoiners(
            joiners, cohort: cohort, job: job, parameters: parameters, client: observed, folder: folder,
            skip: Set(skip.compactMap { $0.hasPrefix("joiners/") ? String($0.dropFirst("joiners/".count)) : nil }),
            parallel: options.parallel)
        }
      }

      // downloading → committed: one transaction for index rows, deletes, members and watermarks.
      let files = try store.files(exportID: exportID)
      let partial = try hasErrors(files: files, cohort: cohort.name)
      if partial && !options.acceptPartial {
        note("warning: the server reported errors for export #\(job.seq) (see \(folder)/error/); watermarks stay where they were (use --accept-partial to advance them)")
      }
      var watermarkTypes = Set(parameters.types)
      if watermarkTypes.isEmpty { watermarkTypes = Set(manifest.output.map(\.type)).union(try store.watermarks(cohort: cohort.name).map(\.resourceType)) }
      let watermarks = (partial && !options.acceptPartial) ? [:] : Dictionary(uniqueKeysWithValues: watermarkTypes.map { ($0, manifest.transactionTime) })
      let deletes = try readDeletes(files: files, cohort: cohort.name)
      job.outcome = partial ? "partial" : "ok"
      job.files = files.count
      job.resources = files.filter { $0.kind == "output" }.reduce(0) { $0 + $1.lines }
      job.bytes = files.reduce(0) { $0 + $1.bytes }
      job.finishedAt = isoNow()
      // A full export re-baselines (ids it no longer returns are removed) — but not when the server reported
      // errors: a type it failed to send must not be wiped (C40, C52).
      let rebaseline: [String]? =
        job.kind == "full" && parameters.since == nil && !(partial && !options.acceptPartial) ? parameters.types : nil
      let plan = CommitPlan(export: job, rebaselineTypes: rebaseline, deletes: deletes, members: members, watermarks: watermarks)
      let cohortFolder = workspace.cohortFolder(cohort.name)
      let outputFiles = files.filter { $0.kind == "output" }
      try Task.checkCancellation()
      let ingestStart = Date()
      var scanned = 0
      let ingest = try store.commitExport(plan) { sink in
        for file in outputFiles {
          try NDJSONFile.scan(path: cohortFolder + "/" + file.path) { line in
            guard let type = line.resourceType, let id = line.id else { return }
            scanned += 1
            try sink(
              IndexEntry(
                type: type, id: id, versionId: line.versionId, lastUpdated: line.lastUpdated, hash: line.contentHash,
                patient: type == "Patient" ? id : line.patientID, file: file.path, offset: line.offset, length: line.length))
          }
        }
      }
      let ingestSeconds = Date().timeIntervalSince(ingestStart)
      note(
        String(
          format: "committed snapshot #%d: indexed %d resources in %.2f s (%.0f/s)", job.seq, scanned, ingestSeconds,
          ingestSeconds > 0 ? Double(scanned) / ingestSeconds : 0))
      job.phase = .committed
      // After commit: tell the server it may free the files (C36); failures are warnings.
      do {
        try await observed.delete(statusURL: statusURL)
      } catch {
        note("warning: DELETE of the finished job failed (\(error)); the export is committed")
      }
      return ExportOutcome(
        export: job, ingest: ingest, resumed: resumed, files: job.files, resources: job.resources, bytes: job.bytes,
        partial: partial, folder: folder)
    } catch let error as BulkError {
      let resumable: Bool
      switch error {
      case .network, .downloadsFailed, .jobTimeout: resumable = job.statusURL != nil
      case .server(let op, let status, _, _): resumable = job.statusURL != nil && (op == .download || status >= 500 || status == 429)
      default: resumable = false
      }
      if !resumable || job.statusURL == nil {
        job.phase = .failed
        job.outcome = "failed"
        job.error = error.description
        job.finishedAt = isoNow()
        try? store.updateExport(job)
      } else {
        job.error = error.description
        try? store.updateExport(job)
      }
      throw ExportError.bulk(error, exportSeq: job.seq, resumable: resumable, cohort: cohort.name)
    } catch is CancellationError {
      throw ExportError.interrupted(exportSeq: job.seq, cohort: cohort.name)
    } catch let error as StoreError {
      throw error
    } catch let error as ExportError {
      throw error
    } catch {
      if Task.isCancelled { throw ExportError.interrupted(exportSeq: job.seq, cohort: cohort.name) }
      job.error = String(describing: error)
      try? store.updateExport(job)
      throw ExportError.failed("export #\(job.seq) of \(cohort.name) failed: \(error)")
    }
  }

  /// A POST kick-off with `patient=` for the joiners and no `_since`; files land in `joiners/`.
  private func pullJoiners(
    _ joiners: [String], cohort: CohortRecord, job: ExportRecord, parameters: ExportParameters, client: BulkClient,
    folder: String, skip: Set<String>, parallel: Int
  ) async throws {
    note("\(joiners.count) patient(s) joined Group/\(cohort.groupID); pulling their history without _since")
    var endpoint = client.endpoint
    endpoint.kickoffMethod = .post
    let post = BulkClient(endpoint: endpoint, pollPolicy: client.pollPolicy, downloadPolicy: client.downloadPolicy, events: events)
    var history = parameters
    history.since = nil
    history.patients = joiners.map { "Patient/" + $0 }
    let statusURL: String
    let manifest: Manifest
    do {
      statusURL = try await post.kickoff(level: .group(cohort.groupID), parameters: history)
      manifest = try await post.waitForManifest(statusURL: statusURL)
    } catch let error as BulkError {
      if case .server(.kickoff, let status, _, _) = error, status < 500 {
        note("warning: the server refused a patient= export (\(error)); the joiners' older data is not in this snapshot")
        return
      }
      throw error
    }
    let exportID = job.id!
    let store = self.store
    let prefix = job.folderName + "/joiners/"
    try FileManager.default.createDirectory(atPath: folder + "/joiners", withIntermediateDirectories: true)
    try await post.downloadAll(manifest, into: folder + "/joiners", parallel: parallel, statusURL: statusURL, skip: skip) { file in
      try store.addFile(
        FileRecord(
          exportID: exportID, kind: file.kind.rawValue, type: file.type, url: file.url,
          path: prefix + file.relativePath, bytes: file.bytes, lines: file.lines, sha256: file.sha256))
    }
    do {
      try await post.delete(statusURL: statusURL)
    } catch {
      note("warning: DELETE of the joiners' job failed (\(error))")
    }
  }

  private func writeManifest(_ manifest: Manifest, folder: String) throws {
    // The server's manifest verbatim; a paged manifest (C64) is saved merged.
    let data = try (manifest.pages == 1 ? manifest.rawPages.first : nil) ?? JSONEncoder.sorted.encode(manifest)
    let path = folder + "/manifest.json"
    let temp = folder + "/.manifest.json.part"
    try data.write(to: URL(fileURLWithPath: temp))
    _ = rename(temp, path)
  }

  /// Each line of a small NDJSON file (error and deleted files) as a decoded object, in one pass over the file.
  private func forEachObject(path: String, _ body: ([String: Any]) throws -> Void) throws {
    var pending = Data()
    func emit(_ line: Data) throws {
      if let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] { try body(object) }
    }
    try NDJSONFile.readChunks(path: path) { chunk in
      pending.append(contentsOf: chunk)
      while let newline = pending.firstIndex(of: 0x0A) {
        try emit(pending[pending.startIndex..<newline])
        pending.removeSubrange(pending.startIndex...newline)
      }
    }
    if !pending.isEmpty { try emit(pending) }
  }

  /// True when an error file holds an issue of severity error or fatal (C40).
  private func hasErrors(files: [FileRecord], cohort: String) throws -> Bool {
    for file in files where file.kind == "error" {
      var found = false
      try forEachObject(path: workspace.cohortFolder(cohort) + "/" + file.path) { object in
        if found { return }
        if let issues = object["issue"] as? [[String: Any]],
          issues.contains(where: { ["error", "fatal"].contains($0["severity"] as? String ?? "") })
        {
          found = true
        }
      }
      if found { return true }
    }
    return false
  }

  /// `Type/id` pairs from the `deleted` Bundles (C54); absolute request URLs are normalised.
  private func readDeletes(files: [FileRecord], cohort: String) throws -> [(type: String, id: String)] {
    var deletes: [(type: String, id: String)] = []
    for file in files where file.kind == "deleted" {
      let path = workspace.cohortFolder(cohort) + "/" + file.path
      // Strict (C54): an entry without a usable request.url is a data fault naming file and line.
      for d in try DeletedFile.read(path: path, name: file.path) { deletes.append((d.type, d.id)) }
    }
    return deletes
  }
}

extension ScannedLine {
  /// The Patient this resource belongs to (subject / patient / beneficiary reference).
  var patientID: String? { patientReference.flatMap(FHIRReference.patientID(fromReference:)) }
}

extension JSONEncoder {
  static var sorted: JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
  }
}
