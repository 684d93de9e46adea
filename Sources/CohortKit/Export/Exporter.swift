import CohortBasics
import CohortStore
import FHIRBulk
import Foundation
import NDJSON

/// The export workflow as a persisted phase machine.
///
/// An export (one `export` command, one snapshot) owns one or more server jobs (`JobRecord`): one per `_since`
/// group of types, an ids-only listing for `--reconcile`, and the joiners' history. Each job moves
/// planned → requested → accepted (status URL saved) → complete (manifest saved) → downloaded (every file
/// verified, recorded by where it lands, and staged) → done; the phase is saved before the next request is
/// sent, so a crash resumes the same server jobs. Verified files are staged into the store while the others
/// still download; the commit merges the staging area into the temporal index in one transaction.
/// One writer per cohort: `CohortLock` is held from planning to commit.
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

  /// The plan a new export of `cohort` would run.
  public func plan(cohort: CohortRecord, options: ExportOptions) throws -> ExportPlan {
    try ExportPlan.make(
      cohort: cohort.name, definition: CohortDefinition(cohort), options: options,
      watermarks: try store.watermarks(cohort: cohort.name))
  }

  /// The requests a new export would send (`--dry-run`, C22): one per kick-off.
  public struct DryRun: Sendable {
    public var plan: ExportPlan
    public var requests: [(url: String, body: String?)]
  }

  public func dryRun(cohortName: String, options: ExportOptions) throws -> DryRun {
    let cohort = try store.cohort(named: cohortName)
    let server = try store.server(named: cohort.server)
    var plans = [try plan(cohort: cohort, options: options)]
    if options.reconcile {
      var pull = options
      pull.reconcile = false
      pull.incremental = true
      plans.insert(try plan(cohort: cohort, options: pull), at: 0)
    }
    let endpoint = BulkEndpoint(
      baseURL: server.baseURL, kickoffMethod: server.kickoffMethod == "post" ? .post : .get, auth: nil,
      userAgent: factory.userAgent)
    let client = BulkClient(endpoint: endpoint)
    var requests: [(url: String, body: String?)] = []
    var merged = plans[0]
    for plan in plans.dropFirst() {
      merged.jobs += plan.jobs
      merged.notes += plan.notes
      merged.kind = plan.kind
      merged.reason = plan.reason
    }
    for job in merged.jobs {
      try job.parameters.validate(method: endpoint.kickoffMethod)
      requests.append(
        (client.kickoffURL(level: .group(cohort.groupID), parameters: job.parameters), client.kickoffBody(parameters: job.parameters)))
    }
    return DryRun(plan: merged, requests: requests)
  }

  // MARK: Cancel

  /// Sends DELETE for every open server job of the cohort's unfinished export and marks it cancelled.
  public func cancel(cohortName: String, keepFiles: Bool = false) async throws -> ExportRecord {
    let cohort = try store.cohort(named: cohortName)
    let lock = try CohortLock.acquire(workspace: workspace, cohort: cohort.name, purpose: "export --cancel")
    defer { withExtendedLifetime(lock) {} }
    guard var export = try store.openExport(cohort: cohort.name) else { throw ExportError.noOpenJob(cohort: cohort.name) }
    let server = try store.server(named: cohort.server)
    let client = try factory.client(for: server, events: events)
    for var job in try store.jobs(exportID: export.id!) where job.phase != .done {
      if let statusURL = job.statusURL {
        do {
          try await client.delete(statusURL: statusURL)
        } catch {
          note("warning: the server did not confirm the cancellation of a job (\(describe(error))); it is marked cancelled here")
        }
      }
      job.phase = .cancelled
      try store.updateJob(job)
    }
    export.phase = .cancelled
    export.outcome = "cancelled"
    export.finishedAt = isoNow()
    try store.updateExport(export)
    try store.unstageAll(exportID: export.id!)
    if !keepFiles { removeFolder(cohort: cohort.name, export: export) }
    return export
  }

  // MARK: Export

  public func export(cohortName: String, options: ExportOptions) async throws -> ExportOutcome {
    guard options.reconcile, try store.openExport(cohort: cohortName) == nil else {
      return try await exportOnce(cohortName: cohortName, options: options)
    }
    // --reconcile: an incremental brings the content up to date, then an ids-only listing removes what the
    // server no longer has. The listing runs second, so nothing created in between can be removed by mistake.
    var pull = options
    pull.reconcile = false
    pull.incremental = true
    let first = try await exportOnce(cohortName: cohortName, options: pull)
    var listing = try await exportOnce(cohortName: cohortName, options: options)
    listing.pulled = (first.export.seq, first.ingest)
    return listing
  }

  private func exportOnce(cohortName: String, options: ExportOptions) async throws -> ExportOutcome {
    let cohort = try store.cohort(named: cohortName)
    let lock = try CohortLock.acquire(workspace: workspace, cohort: cohort.name, purpose: "export")
    defer { withExtendedLifetime(lock) {} }
    let server = try store.server(named: cohort.server)
    let client = try factory.client(for: server, events: events)
    var export: ExportRecord
    var resumed = false
    if let open = try store.openExport(cohort: cohort.name), try store.jobs(exportID: open.id!).isEmpty {
      // Left by an older version that saved the export row and its jobs apart, killed in between: nothing was sent
      // for it; it is closed and a new export starts.
      var stale = open
      stale.phase = .cancelled
      stale.outcome = "cancelled"
      stale.error = "the process stopped before the export's server jobs were saved; nothing was sent"
      stale.finishedAt = isoNow()
      try store.updateExport(stale)
      note("export #\(open.seq) of \(cohort.name) stopped before anything was sent; starting a new one")
    }
    if let open = try store.openExport(cohort: cohort.name) {
      if options.shapesNewExport && !options.resume {
        throw ExportError.unfinished(cohort: cohort.name, seq: open.seq, phase: open.phase.rawValue)
      }
      export = open
      resumed = true
      note("resuming export #\(export.seq) (\(export.phase.rawValue)) of \(cohort.name) — the same server job, no new kick-off")
    } else {
      if options.resume { throw ExportError.failed("cohort '\(cohort.name)' has no unfinished export to resume") }
      let plan = try plan(cohort: cohort, options: options)
      for job in plan.jobs {
        do {
          try job.parameters.validate(method: client.endpoint.kickoffMethod)
        } catch let error as BulkError {
          throw ExportError.bulk(error, exportSeq: nil, resumable: false, cohort: cohort.name)
        }
      }
      // SMART: the granted scopes must cover the requested types before anything is kicked off (C7).
      if let smart = client.endpoint.auth as? SMARTTokenProvider {
        try await smart.checkScopes(covering: plan.jobs.flatMap(\.parameters.types))
      }
      let firstExport = try store.exports(cohort: cohort.name).isEmpty
      var software: String?
      if firstExport {
        // Before the first export of a cohort: the server must declare what we are about to ask.
        do {
          for job in plan.jobs {
            let capability = try await client.checkSupport(level: .group(cohort.groupID), parameters: job.parameters)
            software = [capability.softwareName, capability.softwareVersion].compactMap { $0 }.joined(separator: " ")
          }
        } catch let error as BulkError {
          throw ExportError.bulk(error, exportSeq: nil, resumable: false, cohort: cohort.name)
        }
      } else {
        // Later exports skip the check, but the CapabilityStatement is still read (best effort) so that this
        // export's record and its kick-off log lines name the software that served it.
        if let capability = try? await client.capabilities() {
          software = [capability.softwareName, capability.softwareVersion].compactMap { $0 }.joined(separator: " ")
        } else {
          software = try store.exports(cohort: cohort.name).last { $0.serverSoftware != nil }?.serverSoftware
        }
      }
      for line in plan.notes { note(line) }
      export = try createExport(cohort: cohort, plan: plan, options: options, client: client)
      export.serverSoftware = software
      try store.updateExport(export)
      if plan.side, let reason = plan.reason {
        note(
          "side export #\(export.seq): \(reason) — kept as a snapshot of its own, it moves no watermark and changes nothing in the cohort's state")
      } else if plan.kind == "reconcile" {
        note("reconcile #\(export.seq): \(plan.reason ?? "")")
      }
    }
    return try await run(export: &export, cohort: cohort, client: client, options: options, resumed: resumed)
  }

  private func createExport(
    cohort: CohortRecord, plan: ExportPlan, options: ExportOptions, client: BulkClient
  ) throws -> ExportRecord {
    let first = plan.jobs[0].parameters
    let sinces = plan.jobs.map(\.parameters.since)
    let since = sinces.contains(where: { $0 == nil }) ? nil : sinces.compactMap { $0 }.min { instantOrder($0, $1) == .orderedAscending }
    var summary = first
    summary.since = since
    summary.types = options.types.isEmpty ? CohortDefinition(cohort).types : options.types
    summary.typeFilters = Array(Set(plan.jobs.flatMap(\.parameters.typeFilters))).sorted()
    let paramsJSON = String(decoding: try JSONEncoder.sorted.encode(summary), as: UTF8.self)
    // The export row and its jobs in one transaction: a crash between them would leave an export that resumes
    // into an empty commit (found by CrashTests under load).
    let jobs = try plan.jobs.enumerated().map { index, job in
      JobRecord(
        exportID: 0, ordinal: index + 1, role: job.role, types: job.parameters.types, since: job.parameters.since,
        paramsJSON: String(decoding: try JSONEncoder.sorted.encode(job.parameters), as: UTF8.self))
    }
    return try store.createExport(
      cohort: cohort.name, kind: plan.kind, since: since, until: first.until, types: summary.types,
      paramsJSON: paramsJSON, kickoffMethod: client.endpoint.kickoffMethod.rawValue, side: plan.side,
      note: plan.side ? plan.reason : nil, kickoffURL: client.kickoffURL(level: .group(cohort.groupID), parameters: first),
      jobs: jobs)
  }

  // MARK: The phase machine

  private func run(
    export: inout ExportRecord, cohort: CohortRecord, client: BulkClient, options: ExportOptions, resumed: Bool
  ) async throws -> ExportOutcome {
    let exportID = export.id!
    let folder = workspace.cohortFolder(cohort.name) + "/" + export.folderName
    do {
      try Workspace.makePrivateFolder(folder)
    } catch {
      throw ExportError.localIO("cannot create \(folder); check the workspace's permissions", exportSeq: export.seq, cohort: cohort.name)
    }
    let log = try? ExportLogWriter(
      path: folder + "/log.ndjson", exportId: "\(cohort.name)-\(export.folderName)",
      metadata: [("cohort", cohort.name), ("group", cohort.groupID), ("serverSoftware", export.serverSoftware ?? "")])
    defer { log?.close() }
    let forward = events
    // Every job's events, the joiners' included, reach the reporter and log.ndjson.
    let sink: @Sendable (BulkEvent) -> Void = { event in
      forward(event)
      log?.handle(event)
    }
    // The token goes only to the server's origin, the token endpoint's, and origins allowed for this export;
    // FHIRBulk checks every request that carries it (C12).
    var endpoint = client.endpoint
    endpoint.allowedOrigins += options.allowOrigins
    let observed = BulkClient(
      endpoint: endpoint, httpClient: client.httpClient, pollPolicy: client.pollPolicy,
      downloadPolicy: client.downloadPolicy, events: sink)
    let stager = Stager(store: store, exportID: exportID, cohortFolder: workspace.cohortFolder(cohort.name))
    var jobs = try store.jobs(exportID: exportID)
    // Kick-off log records name the server's software: hand over what was read, or read it (best effort).
    observed.remember(client.knownCapabilities)
    if observed.knownCapabilities == nil { _ = try? await observed.capabilities() }

    // The Group read runs beside the last job's downloads; it writes to the store, so a failure waits for it to stop.
    var membersRead: Task<Bool, Never>?
    do {
      if resumed {
        try await reverify(export: export, cohort: cohort, stager: stager)
      }
      // Group membership: the current member list (C59–C61), staged in the store (`staged_members`: a Group of any
      // size in bounded memory). false = unknown (no joiners or leavers this time). It is read once the last job's
      // manifest is in (after the server's transactionTime, as before), while that job's files download: the Group
      // read (one large resource) overlaps the downloads instead of following them.
      let readsMembers = !export.side && jobs.contains { $0.role == .main }
      let lastJob = jobs.indices.last { jobs[$0].role != .joiners }
      for index in jobs.indices where jobs[index].role != .joiners {
        try await runJob(
          &jobs[index], export: export, cohort: cohort, client: observed, options: options, stager: stager, only: nil,
          events: sink,
          manifestReady: {
            guard readsMembers, index == lastJob, membersRead == nil else { return }
            membersRead = Task { await self.readMembers(cohort: cohort, exportID: exportID, client: observed, folder: folder) }
          })
      }
      let membersKnown: Bool
      if !readsMembers {
        membersKnown = false
      } else if let membersRead {
        membersKnown = await membersRead.value
      } else {
        membersKnown = await readMembers(cohort: cohort, exportID: exportID, client: observed, folder: folder)
      }

      // Joiners come without their older data wherever a type was not pulled in full by this export: their
      // history without _since (the Group Membership Request Pattern, C59), for every type of the cohort's
      // definition not covered by a full pull, as a persisted child job.
      let joinerTypes = Self.joinerTypes(definition: CohortDefinition(cohort), jobs: jobs)
      if membersKnown, let joinerTypes {
        let joiners = try store.stagedJoiners(cohort: cohort.name, exportID: exportID)
        var joinersIndex = jobs.firstIndex { $0.role == .joiners }
        if joinersIndex == nil, !joiners.isEmpty, try store.membershipKnown(cohort: cohort.name) {
          var parameters = try JSONDecoder().decode(ExportParameters.self, from: Data(jobs[0].paramsJSON.utf8))
          parameters.since = nil
          parameters.types = joinerTypes
          parameters.typeFilters = CohortDefinition(cohort).typeFilters.filter {
            joinerTypes.isEmpty || joinerTypes.contains(CohortDefinition.filterType($0))
          }
          parameters.elements = CohortDefinition(cohort).elements
          let record = try store.addJob(
            JobRecord(
              exportID: exportID, ordinal: jobs.count + 1, role: .joiners, types: parameters.types, since: nil,
              paramsJSON: String(decoding: try JSONEncoder.sorted.encode(parameters), as: UTF8.self)))
          jobs.append(record)
          joinersIndex = jobs.count - 1
        }
        if let i = joinersIndex, jobs[i].phase != .downloaded {
          note("\(joiners.count) patient(s) joined Group/\(cohort.groupID); pulling their history without _since")
          try await runJob(&jobs[i], export: export, cohort: cohort, client: observed, options: options, stager: stager, only: Set(joiners), events: sink)
        }
      }
      try await stager.finish()
      if stager.droppedOtherPatients > 0 {
        note(
          "warning: the server returned \(stager.droppedOtherPatients) resource(s) of patients other than the joiners in the patient= export (it ignored patient=); only the joiners' were kept")
      }
      return try await commit(
        export: &export, jobs: &jobs, cohort: cohort, membersKnown: membersKnown, client: observed, options: options,
        folder: folder, resumed: resumed)
    } catch {
      if let membersRead {
        membersRead.cancel()
        _ = await membersRead.value
      }
      await stager.abandon()
      throw failure(error, export: &export, jobs: jobs, cohort: cohort, options: options)
    }
  }

  /// Moves one server job forward from whatever phase it is in to `downloaded`.
  private func runJob(
    _ job: inout JobRecord, export: ExportRecord, cohort: CohortRecord, client: BulkClient, options: ExportOptions,
    stager: Stager, only patients: Set<String>?, events sink: @escaping @Sendable (BulkEvent) -> Void,
    manifestReady: () -> Void = {}
  ) async throws {
    if job.phase == .downloaded || job.phase == .done { return }
    var parameters = try JSONDecoder().decode(ExportParameters.self, from: Data(job.paramsJSON.utf8))
    var jobClient = client
    if let patients {
      // patient= is POST only (C21); the list is sent, never stored.
      parameters.patients = patients.sorted().map { "Patient/" + $0 }
      var endpoint = client.endpoint
      endpoint.kickoffMethod = .post
      jobClient = BulkClient(
        endpoint: endpoint, httpClient: client.httpClient, pollPolicy: client.pollPolicy,
        downloadPolicy: client.downloadPolicy, events: sink)
      jobClient.remember(client.knownCapabilities)
    }
    let folder = workspace.cohortFolder(cohort.name) + "/" + export.folderName + (job.subfolder.isEmpty ? "" : "/" + job.subfolder)
    try Workspace.makePrivateFolder(folder)

    // planned/requested → accepted. The window in which a crash leaves a server job without a saved status URL
    // is the kick-off round trip itself; a job found in `requested` is kicked off again, and we say so.
    if job.statusURL == nil {
      if job.phase == .requested {
        note(
          "export #\(export.seq): the process stopped while a kick-off was in flight, so its status URL was never saved; kicking off again (the first server job, if any, is left to expire)")
      }
      try Task.checkCancellation()
      job.kickoffURL = jobClient.kickoffURL(level: .group(cohort.groupID), parameters: parameters)
      job.phase = .requested
      try store.updateJob(job)
      let statusURL: String
      do {
        statusURL = try await jobClient.kickoff(level: .group(cohort.groupID), parameters: parameters)
      } catch let error as BulkError where patients != nil {
        if case .server(.kickoff, let status, _, _) = error, status < 500 {
          note("warning: the server refused a patient= export (\(error)); the joiners' older data is not in this snapshot")
          job.phase = .downloaded
          job.error = error.description
          try store.updateJob(job)
          return
        }
        throw error
      }
      job.statusURL = statusURL
      job.phase = .accepted
      try store.updateJob(job)
      try mirror(job, phase: .accepted)
    }
    guard let statusURL = job.statusURL else { throw ExportError.failed("internal: no status URL") }

    // accepted → complete: poll for the manifest, validate it, save it.
    var manifest: Manifest
    if let saved = job.manifestJSON, job.phase == .complete {
      manifest = try Manifest.parse(Data(saved.utf8))
    } else {
      manifest = try await jobClient.waitForManifest(statusURL: statusURL, expectedRequest: job.kickoffURL)
      job.manifestJSON = String(decoding: try JSONEncoder.sorted.encode(manifest), as: UTF8.self)
      job.transactionTime = manifest.transactionTime
      job.deletionsReported = manifest.deleted != nil
      job.phase = .complete
      try store.updateJob(job)
      try mirror(job, phase: .downloading)
      try writeManifest(manifest, folder: folder)
    }

    manifestReady()

    // complete → downloaded: every file not yet recorded (by where it lands), verified, renamed, recorded, staged.
    let prefix = export.folderName + "/" + (job.subfolder.isEmpty ? "" : job.subfolder + "/")
    let recorded = try store.files(exportID: export.id!).filter { $0.path.hasPrefix(prefix) }
    let skip = Set(recorded.map { String($0.path.dropFirst(prefix.count)) })
    if !recorded.isEmpty { note("\(recorded.count) file(s) of export #\(export.seq) already downloaded; fetching the rest") }
    let exportID = export.id!
    let jobID = job.id
    let store = self.store
    try await jobClient.downloadAll(manifest, into: folder, parallel: options.parallel, statusURL: statusURL, skip: skip) { file in
      let record = FileRecord(
        exportID: exportID, jobID: jobID, kind: file.kind.rawValue, type: file.type, url: file.url,
        path: prefix + file.relativePath, bytes: file.bytes, lines: file.lines, sha256: file.sha256)
      // Recorded on the staging queue (with the file's rows for an output file): a finished download never
      // waits here for the store's writer, which staging holds, so the next download starts at once.
      if file.kind == .output {
        stager.enqueue(record, only: patients, record: true)
      } else {
        stager.then { try store.addFile(record) }
      }
    }
    job.phase = .downloaded
    // Saved after the job's files are recorded (same queue, in order); `stager.finish()` waits for it.
    let downloaded = job
    stager.then { try store.updateJob(downloaded) }
  }

  /// The export row shows its first job's progress (phase, status URL, manifest) for `status` and `history`.
  private func mirror(_ job: JobRecord, phase: ExportPhase) throws {
    guard job.ordinal == 1, var export = try store.export(id: job.exportID) else { return }
    export.statusURL = job.statusURL
    export.manifestJSON = job.manifestJSON
    export.transactionTime = job.transactionTime
    export.phase = phase
    try store.updateExport(export)
  }

  /// Files recorded by an earlier process are checked (size and sha256) before they are trusted again:
  /// a mismatch forgets the file so that it is downloaded again. Good ones are staged again (staging a file
  /// replaces what was staged for it).
  private func reverify(export: ExportRecord, cohort: CohortRecord, stager: Stager) async throws {
    let cohortFolder = workspace.cohortFolder(cohort.name)
    var bad = 0
    for file in try store.files(exportID: export.id!) {
      let path = cohortFolder + "/" + file.path
      if FileDigest.matches(path: path, bytes: file.bytes, sha256: file.sha256) {
        if file.kind == "output" { stager.enqueue(file, only: nil) }
      } else {
        bad += 1
        try? FileManager.default.removeItem(atPath: path)
        try store.unstage(exportID: export.id!, file: file.path)
        try store.removeFile(exportID: export.id!, path: file.path)
        // Its job must download again.
        if let jobID = file.jobID, var job = try store.jobs(exportID: export.id!).first(where: { $0.id == jobID }),
          job.phase == .downloaded
        {
          job.phase = .complete
          try store.updateJob(job)
        }
      }
    }
    if bad > 0 { note("\(bad) recorded file(s) of export #\(export.seq) were missing or changed on disk; downloading them again") }
  }

  /// Reads the Group's members into the store (`staged_members` of the export, replacing an earlier read's); false
  /// when they cannot be known (the read failed, or the Group came without `member`).
  private func readMembers(cohort: CohortRecord, exportID: Int64, client: BulkClient, folder: String) async -> Bool {
    let store = self.store
    do {
      try await store.clearStagedMembers(exportID: exportID)
      // A fixed name in the export's folder: a read cut short by a crash is replaced by the next one.
      let read = try await client.groupMembers(
        groupID: cohort.groupID, spoolFile: folder + "/.Group.json.part", batchSize: 16_384
      ) { batch in
        try store.stageMembers(exportID: exportID, batch)
      }
      switch read {
      case .known:
        return true
      case .unknown(let reason):
        note(
          "warning: the members of Group/\(cohort.groupID) are unknown this time (\(reason)); no joiners or leavers are computed and nothing is removed for them")
        return false
      }
    } catch {
      if Task.isCancelled { return false }  // the export stopped while the Group was read: nothing to say
      note(
        "warning: could not read Group/\(cohort.groupID) for its member list (\(describe(error))); membership is unknown this time (no joiners or leavers are computed)")
      return false
    }
  }

  /// The types a joiners' job must pull (empty: every type), or nil when none is needed: every type of the
  /// cohort's definition that this export did not pull in full. Side exports never pull joiners.
  static func joinerTypes(definition: CohortDefinition, jobs: [JobRecord]) -> [String]? {
    let full = jobs.filter { $0.role == .main && $0.since == nil }
    if full.contains(where: { $0.types == nil }) { return nil }
    let covered = Set(full.flatMap(\.typeList))
    if definition.types.isEmpty { return [] }
    let rest = definition.types.filter { !covered.contains($0) }
    return rest.isEmpty ? nil : rest
  }

  // MARK: Commit

  private func commit(
    export: inout ExportRecord, jobs: inout [JobRecord], cohort: CohortRecord, membersKnown: Bool, client: BulkClient,
    options: ExportOptions, folder: String, resumed: Bool
  ) async throws -> ExportOutcome {
    let exportID = export.id!
    let files = try store.files(exportID: exportID)
    let definition = CohortDefinition(cohort)
    let cohortFolder = workspace.cohortFolder(cohort.name)

    // Per job: did the server report errors (C40)? Is its transactionTime believable?
    var partialJobs = Set<Int64>()
    for file in files where file.kind == "error" {
      if try OperationOutcomeFile.summarize(path: cohortFolder + "/" + file.path).hasErrors, let job = file.jobID {
        partialJobs.insert(job)
      }
    }
    let partial = !partialJobs.isEmpty
    if partial && !options.acceptPartial {
      note(
        "warning: the server reported errors for export #\(export.seq) (see \(folder)/error/); the affected types keep their watermarks and are not re-baselined (use --accept-partial to advance them)")
    }
    func trusted(_ job: JobRecord) -> Bool { !(partialJobs.contains(job.id!) && !options.acceptPartial) }
    var futureTime = false
    for job in jobs where job.role == .main {
      if let t = job.transactionTime, let date = parseInstant(t), date.timeIntervalSinceNow > Manifest.defaultClockSkew {
        futureTime = true
        note(
          "warning: the server's transactionTime \(t) is in the future; it is not stored as a watermark (the next --incremental pulls from the previous one)")
      }
    }

    var plan = CommitPlan(export: export)
    plan.side = export.side
    if !export.side {
      let current = Set(try store.counts(cohort: cohort.name, at: Int64.max).keys)
      // The staged types are the output files' types (each line was verified to be of its file's type): no scan of
      // the staged rows.
      let staged = Set(files.filter { $0.kind == "output" }.map(\.type))
      for job in jobs where job.role == .main && job.since == nil && trusted(job) {
        plan.rebaselineTypes.formUnion(job.typeList.isEmpty ? current.union(staged) : Set(job.typeList))
      }
      for job in jobs where job.role == .reconcile {
        plan.reconcileTypes.formUnion(job.typeList.isEmpty ? current : Set(job.typeList))
      }
      for file in files where file.kind == "deleted" {
        plan.deletes += try DeletedFile.read(path: cohortFolder + "/" + file.path, name: file.path).map { ($0.type, $0.id) }
      }
      plan.membersStaged = membersKnown
      if !futureTime {
        let marks = try store.watermarks(cohort: cohort.name)
        for job in jobs where job.role == .main && trusted(job) {
          guard let time = job.transactionTime else { continue }
          if job.typeList.isEmpty {
            // Every type is synced to `time`: the all-types mark, and every per-type mark of the same shape.
            plan.watermarks.append(
              WatermarkUpdate(type: CohortDefinition.allTypes, shape: definition.shape(of: CohortDefinition.allTypes), transactionTime: time))
            for mark in marks where mark.resourceType != CohortDefinition.allTypes && mark.shape == definition.shape(of: mark.resourceType) {
              plan.watermarks.append(WatermarkUpdate(type: mark.resourceType, shape: mark.shape, transactionTime: time))
            }
          } else {
            for type in job.typeList {
              plan.watermarks.append(WatermarkUpdate(type: type, shape: definition.shape(of: type), transactionTime: time))
            }
          }
        }
      }
    }
    let incrementalJobs = jobs.filter { $0.role == .main && $0.since != nil }
    if !incrementalJobs.isEmpty {
      export.deletions = incrementalJobs.allSatisfy { $0.deletionsReported == true } ? "reported" : "not reported"
      if export.deletions == "not reported" {
        note(
          "the server reported no deletions (no `deleted` in its manifest): resources it deleted stay in the cohort until `export \(cohort.name) --reconcile` or a full export")
      }
    }
    let mainTimes = jobs.filter { $0.role != .joiners }.compactMap(\.transactionTime)
    export.transactionTime = mainTimes.min { instantOrder($0, $1) == .orderedAscending }
    export.manifestJSON = jobs.first?.manifestJSON
    export.statusURL = jobs.first?.statusURL
    export.outcome = partial ? "partial" : "ok"
    export.files = files.count
    export.resources = files.filter { $0.kind == "output" }.reduce(0) { $0 + $1.lines }
    export.bytes = files.reduce(0) { $0 + $1.bytes }
    export.phase = .committed
    export.finishedAt = isoNow()
    plan.export = export

    try Task.checkCancellation()
    let started = ContinuousClock.now
    let ingest = try await store.commitExport(plan)
    let elapsed = started.duration(to: .now).components
    let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
    // The duration in `history` includes the commit.
    export.finishedAt = isoNow()
    try? store.updateExport(export)
    note(
      String(
        format: "committed snapshot #%d in %.2f s: %d added, %d changed, %d removed", export.seq, seconds, ingest.added,
        ingest.changed, ingest.removed))

    // After commit: tell the server it may free the files (C36); failures are warnings.
    for index in jobs.indices {
      if let statusURL = jobs[index].statusURL, jobs[index].phase != .done {
        do {
          try await client.delete(statusURL: statusURL)
        } catch BulkError.server(.delete, let status, _, _) where status == 401 || status == 403 {
          // Read-only scopes (SMART system/*.read) forbid DELETE: nothing is wrong with the export or the token.
          note(
            "note: the server does not let this client delete finished export jobs (HTTP \(status)); nothing is wrong — the files expire on the server's own schedule")
        } catch {
          note("warning: DELETE of a finished server job failed (\(describe(error))); the export is committed")
        }
      }
      jobs[index].phase = .done
      try? store.updateJob(jobs[index])
    }
    return ExportOutcome(
      export: export, ingest: ingest, resumed: resumed, files: export.files, resources: export.resources,
      bytes: export.bytes, partial: partial, folder: folder, jobs: jobs)
  }

  // MARK: Failures

  /// Classifies a failure, records it, and decides whether the export stays resumable.
  private func failure(
    _ error: any Error, export: inout ExportRecord, jobs: [JobRecord], cohort: CohortRecord, options: ExportOptions
  ) -> any Error {
    if let id = export.id, let saved = try? store.export(id: id) { export = saved }
    let hasStatus = (try? store.jobs(exportID: export.id!))?.contains { $0.statusURL != nil } ?? false
    func fail(_ text: String) {
      export.phase = .failed
      export.outcome = "failed"
      export.error = text
      export.finishedAt = isoNow()
      try? store.updateExport(export)
      try? store.unstageAll(exportID: export.id!)
      if !options.keepFailed { removeFolder(cohort: cohort.name, export: export) }
    }
    func keep(_ text: String) {
      export.error = text
      try? store.updateExport(export)
    }
    if error is CancellationError || Task.isCancelled {
      return ExportError.interrupted(exportSeq: export.seq, cohort: cohort.name)
    }
    switch error {
    case let error as BulkError:
      switch FailureKind(error) {
      case .network:
        if hasStatus {
          keep(error.description)
          return ExportError.bulk(error, exportSeq: export.seq, resumable: true, cohort: cohort.name)
        }
        fail(error.description)
        return ExportError.bulk(error, exportSeq: export.seq, resumable: false, cohort: cohort.name)
      case .data:
        fail(error.description)
        return ExportError.badData(error.description, exportSeq: export.seq, cohort: cohort.name)
      case .local:
        keep(error.description)
        return ExportError.localIO(error.description, exportSeq: export.seq, cohort: cohort.name)
      case .refused:
        fail(error.description)
        return ExportError.bulk(error, exportSeq: export.seq, resumable: false, cohort: cohort.name)
      }
    case let error as ExportError:
      if case .badData = error { fail(error.description) }
      return error
    case let error as StoreError:
      keep(error.description)
      return ExportError.localIO(error.description, exportSeq: export.seq, cohort: cohort.name)
    case let error as CocoaError:
      let text = "a local file operation failed (\(error.code.rawValue): \(error.localizedDescription))"
      keep(text)
      return ExportError.localIO(text, exportSeq: export.seq, cohort: cohort.name)
    default:
      let text = "export #\(export.seq) of \(cohort.name) failed: \(describe(error))"
      keep(text)
      return ExportError.failed(text)
    }
  }

  private func removeFolder(cohort: String, export: ExportRecord) {
    try? FileManager.default.removeItem(atPath: workspace.cohortFolder(cohort) + "/" + export.folderName)
  }

  private func writeManifest(_ manifest: Manifest, folder: String) throws {
    // The server's manifest verbatim; a paged manifest (C64) is saved merged.
    let data = try (manifest.pages == 1 ? manifest.rawPages.first : nil) ?? JSONEncoder.sorted.encode(manifest)
    let path = folder + "/manifest.json"
    let temp = folder + "/.manifest.json.part"
    try Workspace.writePrivate(data, to: temp)
    _ = rename(temp, path)
  }
}

/// How a failure is handled (FHIRBulk classifies protocol failures).
enum FailureKind {
  /// Network, 5xx, 429, timeouts: the job stays open and `export` resumes it.
  case network
  /// The server's data cannot be used (bad manifest, bad lines, a limit crossed): resuming would fail the same way.
  case data
  /// The local disk: resumable once fixed.
  case local
  /// The server said no (4xx with its OperationOutcome), the job is gone, or the request cannot be made: run a
  /// new export.
  case refused

  init(_ error: BulkError) {
    switch error.failureClass {
    case .network: self = .network
    case .data: self = .data
    case .localIO: self = .local
    case .usage, .refused, .policy, .cancelled: self = .refused
    }
  }
}

/// A foreign error as one line (never a type dump).
func describe(_ error: any Error) -> String { ErrorText.describe(error) }

/// Any error as the one line a user reads: ours say what failed, why and what to do; foreign ones (Foundation,
/// POSIX, SQLite) are put in words; nothing prints a type dump.
public enum ErrorText {
  public static func describe(_ error: any Error) -> String {
    switch error {
    case let error as any CohortFailure: return error.description
    case is CancellationError: return "interrupted"
    case let error as CocoaError:
      let path = (error.userInfo[NSFilePathErrorKey] as? String).map { " (\($0))" } ?? ""
      return error.localizedDescription + path
    case let error as POSIXError:
      return String(cString: strerror(error.code.rawValue))
    default:
      if let text = StoreError.describe(error) { return text }
      if error is DecodingError { return "a file or record could not be read: it is not in the expected format" }
      return "an unexpected \(type(of: error)) error"
    }
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
