import Foundation
import GRDB

/// What committing an export changed in the cohort's state.
public struct IngestResult: Sendable, Equatable, Codable {
  /// Resources new to the state.
  public var added = 0
  /// Resources whose content changed (the old version is closed, the new one inserted).
  public var changed = 0
  /// Resources in the state before and after the commit with the same content (what `diff` calls
  /// unchanged), whether or not the export sent them again.
  public var unchanged = 0
  /// Staged resources identical to the current version (sent again, nothing stored).
  public var resent = 0
  /// Resources that left the state: deletes, re-baselined or reconciled away, leavers' resources.
  public var removed = 0
  /// Staged versions older than the current one (not applied).
  public var ignoredOlder = 0
  public var joined: [String] = []
  public var left: [String] = []
  public init() {}

  enum CodingKeys: String, CodingKey { case added, changed, unchanged, resent, removed, ignoredOlder, joined, left }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    added = try c.decodeIfPresent(Int.self, forKey: .added) ?? 0
    changed = try c.decodeIfPresent(Int.self, forKey: .changed) ?? 0
    unchanged = try c.decodeIfPresent(Int.self, forKey: .unchanged) ?? 0
    resent = try c.decodeIfPresent(Int.self, forKey: .resent) ?? 0
    removed = try c.decodeIfPresent(Int.self, forKey: .removed) ?? 0
    ignoredOlder = try c.decodeIfPresent(Int.self, forKey: .ignoredOlder) ?? 0
    joined = try c.decodeIfPresent([String].self, forKey: .joined) ?? []
    left = try c.decodeIfPresent([String].self, forKey: .left) ?? []
  }
}

/// A watermark to set when an export commits: (type, request shape) → the manifest's transactionTime.
public struct WatermarkUpdate: Sendable, Equatable, Hashable {
  public var type: String
  /// The request shape (type filter / elements); "" for the cohort's definition.
  public var shape: String
  public var transactionTime: String
  public init(type: String, shape: String = "", transactionTime: String) {
    self.type = type
    self.shape = shape
    self.transactionTime = transactionTime
  }
}

/// Everything that is applied together when an export commits (its staged rows are the content).
public struct CommitPlan: Sendable {
  /// Saved (update) in the same transaction with phase `.committed`.
  public var export: ExportRecord
  /// A side export: merge nothing, keep its staging rows, save the export row only.
  public var side: Bool
  /// Full pulls: current rows of these types (in this cohort) that were not staged are closed.
  public var rebaselineTypes: Set<String>
  /// Ids-only listings: current rows of these types whose (type, id) is not staged are closed; staged
  /// rows of these types are not merged as content.
  public var reconcileTypes: Set<String>
  /// `Type/id` pairs from the manifest's `deleted` files: current rows are closed.
  public var deletes: [(type: String, id: String)]
  /// The Group's current members (Patient ids); nil = unknown (no joiners/leavers, members untouched), unless
  /// `membersStaged`. Staged by the commit itself (the same comparison as `membersStaged`).
  public var members: [String]?
  /// The Group's current members were staged for this export (`Store.stageMembers`), however many: the commit
  /// compares them with the current members in SQL. Ignored when `members` is set.
  public var membersStaged = false
  public var watermarks: [WatermarkUpdate]
  /// Legacy `rebaselineTypes: []` (every type).
  var rebaselineAll = false

  public init(
    export: ExportRecord, side: Bool = false, rebaselineTypes: Set<String> = [], reconcileTypes: Set<String> = [],
    deletes: [(type: String, id: String)] = [], members: [String]? = nil, watermarks: [WatermarkUpdate] = []
  ) {
    self.export = export
    self.side = side
    self.rebaselineTypes = rebaselineTypes
    self.reconcileTypes = reconcileTypes
    self.deletes = deletes
    self.members = members
    self.watermarks = watermarks
  }

  /// The pre-staging plan: `rebaselineTypes` nil = none, [] = every type; watermarks type → time.
  public init(
    export: ExportRecord, rebaselineTypes: [String]?, deletes: [(type: String, id: String)], members: [String]?,
    watermarks: [String: String]
  ) {
    self.init(
      export: export, rebaselineTypes: Set(rebaselineTypes ?? []), deletes: deletes, members: members,
      watermarks: watermarks.sorted { $0.key < $1.key }.map { WatermarkUpdate(type: $0.key, transactionTime: $0.value) })
    rebaselineAll = rebaselineTypes?.isEmpty == true
  }
}

extension Store {
  /// Merges the export's staging rows into the temporal index in ONE transaction with set-based SQL,
  /// applies deletes, re-baseline, reconcile, membership and watermarks, and saves the export row as
  /// committed. Several staged rows of one (type, id): the newest `lastUpdated` wins, then the later
  /// file (path order), then the later offset. Against the current row: same hash → resent; older
  /// `lastUpdated` → ignored; else the current row is closed and the new one inserted.
  ///
  /// Runs on GRDB's writer (never on the cooperative pool). When the calling task is cancelled, the
  /// running statement is interrupted, the transaction rolls back and `CancellationError` is thrown.
  public func commitExport(_ plan: CommitPlan) async throws -> IngestResult {
    try await commitExport(plan, willMerge: nil)
  }

  /// `willMerge` runs inside the transaction before the merge (tests cancel from there).
  func commitExport(_ plan: CommitPlan, willMerge: (@Sendable () -> Void)?) async throws -> IngestResult {
    do {
      let trace = Store.tracing
      if trace { Store.trace("  COMMIT asked at \(Store.traceClock)") }
      let (result, merged) = try await pool.write { db in
        willMerge?()
        return (try Store.merge(db, plan), Date())
      }
      if trace {
        Store.trace(
          "  COMMIT (WAL write, sync, checkpoint): \(String(format: "%.3f s", Date().timeIntervalSince(merged))), done at \(Store.traceClock)")
      }
      return result
    } catch let error as DatabaseError {
      if error.resultCode == .SQLITE_INTERRUPT { throw CancellationError() }
      throw Store.translate(error, path: path)
    }
  }

  /// Stages what `produce` streams and commits, all in one synchronous transaction (the pre-staging
  /// API, kept while callers move to `stage` + `commitExport(_:) async`).
  public func commitExport(
    _ plan: CommitPlan, produce: ((IndexEntry) throws -> Void) throws -> Void
  ) throws -> IngestResult {
    guard let exportID = plan.export.id else { throw StoreError.database("export has no id") }
    return try write { db in
      try Store.configureIndexConnection(db)
      try db.execute(sql: "DELETE FROM staging WHERE export_id = ?", arguments: [exportID])
      try db.execute(sql: "INSERT OR IGNORE INTO staged_exports (export_id) VALUES (?)", arguments: [exportID])
      var stagers: [String: Stager] = [:]
      try produce { entry in
        if stagers[entry.file] == nil {
          stagers[entry.file] = try Stager(db, exportID: exportID, sfid: try Store.pathID(db, entry.file))
        }
        try stagers[entry.file]!.add(entry)
      }
      return try Store.merge(db, plan)
    }
  }

  static func merge(_ db: Database, _ plan: CommitPlan) throws -> IngestResult {
    guard let e = plan.export.id else { throw StoreError.database("export has no id") }
    let cohort = plan.export.cohort
    try configureIndexConnection(db)
    let trace = Store.tracing
    func threadCPU() -> Double {
      var usage = rusage()
      getrusage(1 /* RUSAGE_THREAD */, &usage)
      return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
    var mark = Date()
    var markCPU = trace ? threadCPU() : 0
    func step(_ name: String) {
      guard trace else { return }
      let cpu = threadCPU()
      Store.trace(
        "  \(name): \(String(format: "%.3f s (cpu %.3f s, SQLite %.0f MB, peak %.0f MB, pages read %d written %d spilled %d)", Date().timeIntervalSince(mark), cpu - markCPU, memoryUsedMB, memoryHighwaterMB, pageStatus(db, 2 /* CACHE_MISS */), pageStatus(db, 9 /* CACHE_WRITE */), pageStatus(db, 12 /* CACHE_SPILL */)))")
      mark = Date()
      markCPU = cpu
    }
    step("configure")
    var result = IngestResult()
    var export = plan.export
    export.phase = .committed
    if plan.side {
      try export.update(db)
      return result
    }
    let c = try cohortID(db, cohort, create: true)!
    let maxRowBefore = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(rowid), 0) FROM resources") ?? 0
    let currentBefore =
      try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(n), 0) FROM current_counts WHERE cid = ?", arguments: [c]) ?? 0

    func tids(_ names: Set<String>) throws -> [Int64] {
      try names.sorted().compactMap { try typeID(db, $0, create: false) }
    }
    let reconcile = try tids(plan.reconcileTypes)
    var rebaseline = try tids(plan.rebaselineTypes)
    if plan.rebaselineAll {
      rebaseline = try Int64.fetchAll(db, sql: "SELECT tid FROM current_counts WHERE cid = ?", arguments: [c])
    }
    let list = { (ids: [Int64]) in ids.map(String.init).joined(separator: ",") }

    try db.execute(
      sql: """
        DROP TABLE IF EXISTS temp.w;
        CREATE TEMP TABLE w (
          tid INTEGER NOT NULL, id TEXT NOT NULL, srow INTEGER NOT NULL, content INTEGER NOT NULL,
          hash BLOB NOT NULL, lu INTEGER, lt TEXT, crow INTEGER, st INTEGER, patient TEXT, pk INTEGER,
          version_id TEXT, fid INTEGER, offset INTEGER, length INTEGER,
          PRIMARY KEY (tid, id)) WITHOUT ROWID;
        DROP TABLE IF EXISTS temp.closing;
        CREATE TEMP TABLE closing (rid INTEGER PRIMARY KEY, step INTEGER NOT NULL, tid INTEGER NOT NULL);
        """)

    // When most staged rows will be inserted (a first export), the winners carry every column, so that
    // the insert reads them in key order instead of reading staging rows in random order.
    let stagedRows =
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM main.staging WHERE export_id = ?", arguments: [e]) ?? 0
    let wide = currentBefore * 2 < stagedRows
    let wideColumns = wide ? ", version_id, fid, offset, length" : ""
    let wideUpdate =
      wide
      ? ", version_id = excluded.version_id, fid = excluded.fid, offset = excluded.offset, length = excluded.length"
      : ""
    step("setup")
    // 1. The export's winners, one staging row per (type, id), in key order.
    try db.execute(
      sql: """
        INSERT INTO temp.w (tid, id, srow, content, hash, lu, lt, patient\(wideColumns))
        SELECT tid, id, rowid, tid NOT IN (\(list(reconcile))), hash, lu, last_updated, patient\(wideColumns)
        FROM main.staging WHERE export_id = ? ORDER BY tid, id
        ON CONFLICT (tid, id) DO UPDATE SET srow = excluded.srow, hash = excluded.hash, lu = excluded.lu, lt = excluded.lt,
          patient = excluded.patient\(wideUpdate)
        WHERE (excluded.lu IS NOT NULL AND (w.lu IS NULL OR excluded.lu > w.lu))
          OR (excluded.lu IS w.lu AND (
            SELECT pn.path > po.path OR (n.fid = o.fid AND n.offset > o.offset)
            FROM main.staging n, main.staging o, main.paths pn, main.paths po
            WHERE n.rowid = excluded.srow AND o.rowid = w.srow AND pn.pid = n.fid AND po.pid = o.fid))
        """, arguments: [e])
    step("winners")

    // 2. Their current rows (index lookups in key order) and what each winner does to it:
    //    NULL = added, 1 = replaces it (changed), 2 = same hash (resent), 3 = older (ignored); pk = the
    //    patient differs from the current row's. A cohort with no rows at all (its first export) has nothing to
    //    look up: every winner is added (one index probe instead of one per winner).
    let emptyCohort =
      try Bool.fetchOne(
        db, sql: "SELECT NOT EXISTS (SELECT 1 FROM main.resources INDEXED BY resources_key WHERE cid = ?)",
        arguments: [c]) ?? false
    if !emptyCohort {
      try db.execute(
        sql: """
          UPDATE temp.w SET (crow, st, pk) = (
            SELECT r.rowid,
              CASE WHEN r.hash IS w.hash THEN 2
                WHEN w.lt IS NOT NULL AND r.last_updated IS NOT NULL AND
                  CASE WHEN w.lu IS NOT NULL AND r.lu IS NOT NULL THEN w.lu < r.lu ELSE w.lt < r.last_updated END
                THEN 3 ELSE 1 END,
              r.patient IS NOT w.patient
            FROM main.resources r INDEXED BY resources_key
            WHERE r.cid = ? AND r.tid = w.tid AND r.id = w.id AND r.valid_to IS NULL)
          WHERE content = 1
          """, arguments: [c])
    }
    step("current rows")

    if let row = try Row.fetchOne(
      db,
      sql: """
        SELECT COALESCE(SUM(st IS NULL), 0), COALESCE(SUM(st = 2), 0), COALESCE(SUM(st = 3), 0), COALESCE(SUM(st = 1), 0)
        FROM temp.w WHERE content = 1
        """)
    {
      result.added = row[0]
      result.resent = row[1]
      result.ignoredOlder = row[2]
      result.changed = row[3]
    }

    /// Closes the rows collected for `step`; returns how many were closed.
    func close(step: Int, collect sql: String, _ arguments: StatementArguments) throws -> Int {
      try db.execute(sql: "INSERT OR IGNORE INTO temp.closing (rid, step, tid) " + sql, arguments: arguments)
      try db.execute(
        sql: """
          UPDATE main.resources SET valid_to = ?
          WHERE rowid IN (SELECT rid FROM temp.closing WHERE step = ?) AND valid_to IS NULL
          """, arguments: [e, step])
      return db.changesCount
    }

    step("classified")
    // 3. Changed: close the current row, insert the new one.
    _ = try close(step: 1, collect: "SELECT crow, 1, tid FROM temp.w WHERE content = 1 AND st = 1", [])
    step("changed rows closed")
    if wide {
      try db.execute(
        sql: """
          INSERT INTO main.resources (cid, tid, id, valid_from, valid_to, hash, lu, last_updated, version_id, patient,
            fid, offset, length)
          SELECT ?, tid, id, ?, NULL, hash, lu, lt, version_id, patient, fid, offset, length
          FROM temp.w WHERE content = 1 AND (st IS NULL OR st = 1)
          """, arguments: [c, e])
    } else {
      try db.execute(
        sql: """
          INSERT INTO main.resources (cid, tid, id, valid_from, valid_to, hash, lu, last_updated, version_id, patient,
            fid, offset, length)
          SELECT ?, s.tid, s.id, ?, NULL, s.hash, s.lu, s.last_updated, s.version_id, s.patient, s.fid, s.offset, s.length
          FROM temp.w CROSS JOIN main.staging s ON s.rowid = w.srow
          WHERE w.content = 1 AND (w.st IS NULL OR w.st = 1)
          ORDER BY w.tid, w.id
          """, arguments: [c, e])
    }
    step("new rows inserted")
    // Patient keys (v6): a new (patient, type, id) only for a new resource or one whose patient changed; a
    // changed resource of the same patient writes nothing here.
    try db.execute(
      sql: """
        INSERT OR IGNORE INTO main.patient_keys (cid, patient, tid, id)
        SELECT ?, patient, tid, id FROM temp.w
        WHERE content = 1 AND patient IS NOT NULL AND (st IS NULL OR (st = 1 AND pk))
        ORDER BY patient, tid, id
        """, arguments: [c])
    step("patient keys")
    // 4. Deletes reported by the server.
    if !plan.deletes.isEmpty {
      try db.execute(
        sql: "DROP TABLE IF EXISTS temp.dels; CREATE TEMP TABLE dels (tid INTEGER, id TEXT, PRIMARY KEY (tid, id)) WITHOUT ROWID")
      let insert = try db.makeStatement(sql: "INSERT OR IGNORE INTO temp.dels VALUES (?, ?)")
      var known: [String: Int64?] = [:]
      for (type, id) in plan.deletes {
        if known[type] == nil { known[type] = .some(try typeID(db, type, create: false)) }
        guard let tid = known[type] ?? nil else { continue }
        try insert.execute(arguments: [tid, id])
      }
      result.removed += try close(
        step: 2,
        collect: """
          SELECT r.rowid, 2, r.tid FROM temp.dels d CROSS JOIN main.resources r INDEXED BY resources_key
            ON r.cid = ? AND r.tid = d.tid AND r.id = d.id AND r.valid_to IS NULL
          WHERE r.valid_from < ?
          """, [c, e])
      try db.execute(sql: "DROP TABLE temp.dels")
    }

    step("deletes")
    // 5. Re-baseline (full pulls) and reconcile (id listings): current rows not staged are closed.
    let sweep = Array(Set(rebaseline).union(reconcile)).sorted()
    if !sweep.isEmpty {
      result.removed += try close(
        step: 3,
        collect: """
          SELECT r.rowid, 3, r.tid FROM main.resources r INDEXED BY resources_key
          WHERE r.cid = ? AND r.tid IN (\(list(sweep))) AND r.valid_to IS NULL AND r.valid_from < ?
            AND NOT EXISTS (SELECT 1 FROM temp.w WHERE w.tid = r.tid AND w.id = r.id)
          """, [c, e])
    }

    step("re-baseline and reconcile")
    // 6. Membership: joiners and leavers; leavers' resources leave the state. The Group's member list was staged
    //    (`staged_members`, on disk: a Group of any size) and is sorted once into `temp.g`, so the comparison with
    //    the current members is SQL over two indexes — an index probe per member — and only joiners and leavers are
    //    held in memory or written.
    if let members = plan.members {
      try db.execute(sql: "DELETE FROM main.staged_members WHERE export_id = ?", arguments: [e])
      try stageMembers(db, exportID: e, members)
    }
    if plan.members != nil || plan.membersStaged {
      try db.execute(
        sql: """
          DROP TABLE IF EXISTS temp.g;
          CREATE TEMP TABLE g (patient TEXT PRIMARY KEY) WITHOUT ROWID;
          INSERT OR IGNORE INTO temp.g (patient)
            SELECT patient FROM main.staged_members WHERE export_id = ? ORDER BY patient;
          """, arguments: [e])
      // Both sides in key order (the members' index, temp.g's key): with ORDER BY, SQLite merges the two sorted
      // scans (a compound SELECT's merge), one pass each, no probe per member.
      let currentSQL = "SELECT patient FROM main.members WHERE cohort = ?1 AND valid_to IS NULL"
      let left = try String.fetchAll(
        db, sql: "\(currentSQL) EXCEPT SELECT patient FROM temp.g ORDER BY 1", arguments: [cohort])
      let current =
        try Int.fetchOne(
          db, sql: "SELECT COUNT(*) FROM main.members WHERE cohort = ? AND valid_to IS NULL", arguments: [cohort]) ?? 0
      let stayed = current - left.count
      // Joiners and leavers exist only against a membership known before: an earlier snapshot that read the Group
      // (v7: `members_known`, also when the Group was empty then), or member rows from before v7.
      let hadMembers = try stayed > 0 || !left.isEmpty || Store.membershipKnown(db, cohort: cohort, excluding: e)
      try db.execute(sql: "UPDATE main.exports SET members_known = 1 WHERE id = ?", arguments: [e])
      // The joiners are listed only when they are news (a first read makes every member a joiner: no list).
      let joinersSQL = "SELECT patient FROM temp.g EXCEPT \(currentSQL) ORDER BY 1"
      let joined = hadMembers ? try String.fetchAll(db, sql: joinersSQL, arguments: [cohort]) : []
      try db.execute(
        sql: "INSERT INTO main.members (cohort, patient, valid_from, valid_to) SELECT ?1, patient, ?2, NULL FROM (\(joinersSQL))",
        arguments: [cohort, e])
      try db.execute(sql: "DROP TABLE temp.g")
      if !left.isEmpty {
        try db.execute(
          sql: "DROP TABLE IF EXISTS temp.leavers; CREATE TEMP TABLE leavers (patient TEXT PRIMARY KEY) WITHOUT ROWID")
        let insert = try db.makeStatement(sql: "INSERT OR IGNORE INTO temp.leavers VALUES (?)")
        for patient in left { try insert.execute(arguments: [patient]) }
        try db.execute(
          sql: """
            UPDATE main.members SET valid_to = ?
            WHERE cohort = ? AND valid_to IS NULL AND patient IN (SELECT patient FROM temp.leavers)
            """, arguments: [e, cohort])
        result.removed += try close(
          step: 4,
          collect: """
            SELECT r.rowid, 4, r.tid FROM temp.leavers l
              CROSS JOIN main.patient_keys k ON k.cid = ?1 AND k.patient = l.patient
              CROSS JOIN main.resources r INDEXED BY resources_key
                ON r.cid = ?1 AND r.tid = k.tid AND r.id = k.id AND r.valid_to IS NULL
            WHERE r.patient = l.patient
            """, [c])
        try db.execute(sql: "DROP TABLE temp.leavers")
      }
      if hadMembers {
        result.joined = joined
        result.left = left
      }
    }

    step("membership")
    // 7. Counts: the per-type current counts move by (new rows still current) − (old rows closed).
    var delta: [Int64: Int] = [:]
    for row in try Row.fetchAll(
      db,
      sql: "SELECT tid, COUNT(*) FROM main.resources WHERE rowid > ? AND valid_to IS NULL GROUP BY tid",
      arguments: [maxRowBefore])
    {
      delta[row[0], default: 0] += row[1] as Int
    }
    var closedBefore = 0
    for row in try Row.fetchAll(
      db,
      sql: """
        SELECT tid, COUNT(*) FROM temp.closing WHERE rid <= ? GROUP BY tid
        """, arguments: [maxRowBefore])
    {
      let n: Int = row[1]
      delta[row[0], default: 0] -= n
      closedBefore += n
    }
    result.unchanged = currentBefore - closedBefore
    let upsert = try db.makeStatement(
      sql: """
        INSERT INTO current_counts (cid, tid, n) VALUES (?, ?, ?)
        ON CONFLICT (cid, tid) DO UPDATE SET n = n + excluded.n
        """)
    for (tid, d) in delta where d != 0 { try upsert.execute(arguments: [c, tid, d]) }
    try db.execute(sql: "DELETE FROM current_counts WHERE cid = ? AND n = 0", arguments: [c])
    try db.execute(sql: "DELETE FROM snapshot_counts WHERE cid = ? AND export_id = ?", arguments: [c, e])
    try db.execute(
      sql: "INSERT INTO snapshot_counts (cid, export_id, tid, n) SELECT cid, ?, tid, n FROM current_counts WHERE cid = ?",
      arguments: [e, c])
    try db.execute(
      sql: """
        INSERT INTO snapshot_counts (cid, export_id, tid, n)
        VALUES (?, ?, 0, (SELECT COALESCE(SUM(n), 0) FROM current_counts WHERE cid = ?))
        """, arguments: [c, e, c])

    step("counts")
    // 8. Watermarks, the export row, and the staging rows (merged).
    let hasShape = try db.columns(in: "watermarks").contains { $0.name == "shape" }
    for mark in plan.watermarks {
      if hasShape {
        try db.execute(
          sql: """
            INSERT OR REPLACE INTO watermarks (cohort, resource_type, shape, transaction_time, export_id)
            VALUES (?, ?, ?, ?, ?)
            """, arguments: [cohort, mark.type, mark.shape, mark.transactionTime, e])
      } else {
        try db.execute(
          sql: """
            INSERT OR REPLACE INTO watermarks (cohort, resource_type, transaction_time, export_id) VALUES (?, ?, ?, ?)
            """, arguments: [cohort, mark.type, mark.transactionTime, e])
      }
    }
    try export.update(db)
    // Debian's SQLite is built with SECURE_DELETE: every page freed below would be zeroed and written (through the
    // WAL, then the checkpoint) — at 1.3 M resources 68 k pages, a third of the commit's writes. The staged rows
    // are now the cohort's own rows (or versions it already has, whose files stay in the workspace), so FAST is
    // enough here: deleted content is still purged from b-tree pages, at no extra I/O. Restored afterwards.
    let secureDelete = try Int.fetchOne(db, sql: "PRAGMA main.secure_delete") ?? 1
    try db.execute(sql: "PRAGMA main.secure_delete = FAST; PRAGMA temp.secure_delete = FAST")
    defer {
      let mode = ["OFF", "ON", "FAST"][min(max(secureDelete, 0), 2)]
      try? db.execute(sql: "PRAGMA main.secure_delete = \(mode); PRAGMA temp.secure_delete = \(mode)")
    }
    // Staging rows of this export only: when no other export is staged, the whole table is emptied at
    // once (SQLite's truncate), which is much cheaper than deleting row by row.
    if try Bool.fetchOne(
      db, sql: "SELECT EXISTS (SELECT 1 FROM staged_exports WHERE export_id <> ?)", arguments: [e]) == true
    {
      try db.execute(sql: "DELETE FROM main.staging WHERE export_id = ?", arguments: [e])
      try db.execute(sql: "DELETE FROM main.staged_members WHERE export_id = ?", arguments: [e])
    } else {
      try db.execute(sql: "DELETE FROM main.staging")
      try db.execute(sql: "DELETE FROM main.staged_members")
    }
    try db.execute(sql: "DELETE FROM staged_exports WHERE export_id = ?", arguments: [e])
    try db.execute(sql: "DROP TABLE temp.w; DROP TABLE temp.closing")
    step("watermarks, export row, staging emptied")
    return result
  }
}
