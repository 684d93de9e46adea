import Foundation
import GRDB

extension Store {
  /// Records a new export job in phase `requested`, before any request is sent.
  public func createExport(
    cohort: String, kind: String, since: String?, until: String?, types: [String], paramsJSON: String,
    kickoffMethod: String
  ) throws -> ExportRecord {
    try createExport(
      cohort: cohort, kind: kind, since: since, until: until, types: types, paramsJSON: paramsJSON,
      kickoffMethod: kickoffMethod, side: false, note: nil, kickoffURL: nil, jobs: [])
  }

  /// A new export and its server jobs in ONE transaction: a crash leaves both or neither (an export row without its
  /// jobs would resume into an empty commit). `jobs` get the export's id.
  public func createExport(
    cohort: String, kind: String, since: String?, until: String?, types: [String], paramsJSON: String,
    kickoffMethod: String, side: Bool, note: String?, kickoffURL: String?, jobs: [JobRecord]
  ) throws -> ExportRecord {
    try write { db in
      let seq =
        (try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM exports WHERE cohort = ?", arguments: [cohort])
          ?? 0) + 1
      var record = ExportRecord(
        cohort: cohort, seq: seq, kind: kind, since: since, until: until,
        types: types.isEmpty ? nil : types.joined(separator: ","), paramsJSON: paramsJSON,
        kickoffMethod: kickoffMethod)
      record.side = side
      record.note = note
      record.kickoffURL = kickoffURL
      try record.insert(db)
      for var job in jobs {
        job.exportID = record.id!
        try job.insert(db)
      }
      return record
    }
  }

  /// Saves a job's new phase and fields.
  public func updateExport(_ record: ExportRecord) throws {
    try write { db in try record.update(db) }
  }

  public func export(id: Int64) throws -> ExportRecord? {
    try read { db in try ExportRecord.fetchOne(db, key: id) }
  }

  /// The unfinished job of a cohort, if any (at most one: a second is never started while one is open).
  public func openExport(cohort: String) throws -> ExportRecord? {
    try read { db in
      try ExportRecord.filter(Column("cohort") == cohort)
        .filter(ExportPhase.allCases.filter(\.isOpen).map(\.rawValue).contains(Column("phase")))
        .order(Column("id").desc).fetchOne(db)
    }
  }

  /// Every export of a cohort (or of all cohorts), oldest first.
  public func exports(cohort: String?) throws -> [ExportRecord] {
    try read { db in
      var request = ExportRecord.order(Column("id"))
      if let cohort { request = request.filter(Column("cohort") == cohort) }
      return try request.fetchAll(db)
    }
  }

  /// Committed exports (the cohort's snapshots), oldest first.
  public func snapshots(cohort: String) throws -> [ExportRecord] {
    try read { db in
      try ExportRecord.filter(Column("cohort") == cohort)
        .filter(Column("phase") == ExportPhase.committed.rawValue)
        .order(Column("id")).fetchAll(db)
    }
  }

  /// Files of an export already downloaded, verified and recorded.
  public func files(exportID: Int64) throws -> [FileRecord] {
    try read { db in
      try FileRecord.filter(Column("export_id") == exportID).order(Column("kind"), Column("path")).fetchAll(db)
    }
  }

  /// Records one verified file (its bytes are already renamed into place).
  public func addFile(_ file: FileRecord) throws {
    try write { db in try file.upsert(db) }
  }

  public func watermarks(cohort: String) throws -> [WatermarkRecord] {
    try read { db in
      try WatermarkRecord.filter(Column("cohort") == cohort).order(Column("resource_type")).fetchAll(db)
    }
  }
}
