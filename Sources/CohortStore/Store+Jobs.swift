import Foundation
import GRDB

extension Store {
  /// v4: the cohort's definition (type filters, elements), server jobs as children of an export (the main
  /// pulls, the joiners' history, a reconcile listing), files keyed by where they land, watermarks keyed by
  /// (type, request shape), side exports, whether the server reported deletions, and at most one open export
  /// per cohort enforced by the schema.
  static func registerV4(_ migrator: inout DatabaseMigrator) {
    migrator.registerMigration("v4-jobs") { db in
      try db.execute(
        sql: """
          ALTER TABLE cohorts ADD COLUMN type_filters TEXT;
          ALTER TABLE cohorts ADD COLUMN elements TEXT;
          ALTER TABLE exports ADD COLUMN side INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE exports ADD COLUMN deletions TEXT;
          ALTER TABLE exports ADD COLUMN note TEXT;
          ALTER TABLE watermarks ADD COLUMN shape TEXT NOT NULL DEFAULT '';
          CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            export_id INTEGER NOT NULL REFERENCES exports(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            role TEXT NOT NULL,
            types TEXT,
            since TEXT,
            params_json TEXT NOT NULL,
            kickoff_url TEXT,
            status_url TEXT,
            phase TEXT NOT NULL,
            transaction_time TEXT,
            manifest_json TEXT,
            deletions_reported INTEGER,
            error TEXT,
            UNIQUE (export_id, ordinal)
          );
          CREATE TABLE files_v4 (
            export_id INTEGER NOT NULL REFERENCES exports(id) ON DELETE CASCADE,
            job_id INTEGER REFERENCES jobs(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            type TEXT NOT NULL,
            url TEXT NOT NULL,
            path TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (export_id, path)
          );
          INSERT OR IGNORE INTO files_v4 (export_id, job_id, kind, type, url, path, bytes, lines, sha256)
            SELECT export_id, NULL, kind, type, url, path, bytes, lines, sha256 FROM files;
          DROP TABLE files;
          ALTER TABLE files_v4 RENAME TO files;
          """)
      // Jobs of exports that were open when this binary first ran: one main job carrying the export's own
      // kick-off, so that resume continues the same server job.
      try db.execute(
        sql: """
          INSERT INTO jobs (export_id, ordinal, role, types, since, params_json, kickoff_url, status_url, phase,
                            transaction_time, manifest_json)
          SELECT id, 1, 'main', types, since, params_json, kickoff_url, status_url,
                 CASE phase WHEN 'downloading' THEN 'complete' ELSE phase END, transaction_time, manifest_json
          FROM exports WHERE phase IN ('requested', 'accepted', 'complete', 'downloading')
          """)
      // Close duplicates an older binary may have left, then enforce one open export per cohort.
      try db.execute(
        sql: """
          UPDATE exports SET phase = 'failed', outcome = 'failed', error = 'superseded by a newer open export'
          WHERE phase IN ('requested', 'accepted', 'complete', 'downloading')
            AND id NOT IN (SELECT MAX(id) FROM exports
                           WHERE phase IN ('requested', 'accepted', 'complete', 'downloading') GROUP BY cohort);
          CREATE UNIQUE INDEX exports_one_open ON exports(cohort)
            WHERE phase IN ('requested', 'accepted', 'complete', 'downloading');
          CREATE INDEX jobs_by_export ON jobs(export_id);
          """)
    }
  }

  // MARK: Jobs

  /// Records the server jobs planned for an export (phase `planned`, nothing sent yet).
  public func addJobs(_ jobs: [JobRecord]) throws -> [JobRecord] {
    try write { db in
      try jobs.map { job in
        var job = job
        try job.insert(db)
        return job
      }
    }
  }

  public func addJob(_ job: JobRecord) throws -> JobRecord {
    try addJobs([job])[0]
  }

  public func updateJob(_ job: JobRecord) throws {
    try write { db in try job.update(db) }
  }

  /// The server jobs of an export, in order.
  public func jobs(exportID: Int64) throws -> [JobRecord] {
    try read { db in try JobRecord.filter(Column("export_id") == exportID).order(Column("ordinal")).fetchAll(db) }
  }

  /// Forgets a file record (a file on disk that failed re-verification and is fetched again).
  public func removeFile(exportID: Int64, path: String) throws {
    try write { db in
      _ = try db.execute(sql: "DELETE FROM files WHERE export_id = ? AND path = ?", arguments: [exportID, path])
    }
  }

  /// The cohort's state at a snapshot as `Type/id#hash` (hex), in one query: what tests and `verify` compare
  /// against a fresh full export.
  public func stateFingerprint(cohort: String, at exportID: Int64) throws -> Set<String> {
    try read { db in
      let rows = try Row.fetchCursor(
        db,
        sql: """
          SELECT t.name, r.id, hex(r.hash) FROM resources r
          JOIN cohort_keys k ON k.cid = r.cid JOIN rtypes t ON t.tid = r.tid
          WHERE k.name = ? AND r.valid_from <= ? AND (r.valid_to IS NULL OR r.valid_to > ?)
          """, arguments: [cohort, exportID, exportID])
      var out = Set<String>()
      while let row = try rows.next() {
        let type: String = row[0]
        let id: String = row[1]
        let hash: String = row[2]
        out.insert("\(type)/\(id)#\(hash.lowercased())")
      }
      return out
    }
  }

  /// Drops everything staged for an export (failed or cancelled).
  public func unstageAll(exportID: Int64) throws {
    try write { db in
      try db.execute(sql: "DELETE FROM staging WHERE export_id = ?", arguments: [exportID])
      try db.execute(sql: "DELETE FROM staged_members WHERE export_id = ?", arguments: [exportID])
    }
  }

  /// Replaces the watermarks of a cohort (a definition change resets them).
  public func deleteWatermarks(cohort: String, types: [String]?) throws -> Int {
    try write { db in
      if let types {
        for type in types {
          try db.execute(
            sql: "DELETE FROM watermarks WHERE cohort = ? AND resource_type = ?", arguments: [cohort, type])
        }
      } else {
        try db.execute(sql: "DELETE FROM watermarks WHERE cohort = ?", arguments: [cohort])
      }
      return db.changesCount
    }
  }
}

/// The role of a server job inside an export.
public enum JobRole: String, Codable, Sendable {
  /// A pull of the cohort's resources (one per `_since` group of types).
  case main
  /// The older data of patients who joined the Group (POST `patient=`, no `_since`; C59).
  case joiners
  /// An ids-only listing (`_elements=id`) used to remove what the server no longer has.
  case reconcile
}

/// The phases of one server job. Saved at every step.
public enum JobPhase: String, Codable, Sendable {
  /// Recorded, nothing sent yet.
  case planned
  /// The kick-off is about to be sent (a crash here may leave a server job without a known status URL).
  case requested
  /// The status URL is saved.
  case accepted
  /// The manifest is saved; files are downloading (each verified file is recorded at once).
  case complete
  /// Every file is downloaded, verified and staged.
  case downloaded
  /// Committed with its export and DELETEd on the server.
  case done
  case failed
  case cancelled
}

/// One server job of an export.
public struct JobRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
  public static let databaseTableName = "jobs"
  public var id: Int64?
  public var exportID: Int64
  public var ordinal: Int
  public var role: JobRole
  /// Comma-separated `_type`, or nil for every type.
  public var types: String?
  public var since: String?
  /// The job's export parameters as JSON (never patient ids: a joiners' job stores how many, not which).
  public var paramsJSON: String
  public var kickoffURL: String?
  public var statusURL: String?
  public var phase: JobPhase
  public var transactionTime: String?
  public var manifestJSON: String?
  /// Whether the manifest carried a `deleted` array (nil until the manifest arrives).
  public var deletionsReported: Bool?
  public var error: String?

  public init(
    exportID: Int64, ordinal: Int, role: JobRole, types: [String], since: String?, paramsJSON: String
  ) {
    self.exportID = exportID
    self.ordinal = ordinal
    self.role = role
    self.types = types.isEmpty ? nil : types.joined(separator: ",")
    self.since = since
    self.paramsJSON = paramsJSON
    self.phase = .planned
  }

  public var typeList: [String] {
    (types ?? "").split(separator: ",").map(String.init)
  }

  /// Folder of this job's files inside the export folder ("" for the first main job).
  public var subfolder: String {
    switch role {
    case .main: return ordinal == 1 ? "" : "part\(ordinal)"
    case .joiners: return "joiners"
    case .reconcile: return "reconcile"
    }
  }

  public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

  enum CodingKeys: String, CodingKey {
    case id
    case exportID = "export_id"
    case ordinal, role, types, since
    case paramsJSON = "params_json"
    case kickoffURL = "kickoff_url"
    case statusURL = "status_url"
    case phase
    case transactionTime = "transaction_time"
    case manifestJSON = "manifest_json"
    case deletionsReported = "deletions_reported"
    case error
  }
}
