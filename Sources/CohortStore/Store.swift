import Foundation
import GRDB

/// The workspace database: one SQLite file in WAL mode, with foreign keys, a busy timeout and
/// versioned migrations. A database with migrations this binary does not know is refused.
public final class Store: Sendable {
  public let path: String
  let pool: DatabasePool

  /// The migrations this binary knows, in order. Never edit a shipped migration: add a new one.
  public static let knownMigrations = ["v1-registry", "v2-exports", "v3-index", "v4-jobs", "v5-staging", "v6-commit", "v7-membership",
    "v8-staged-members", "v9-connect-timeout",
  ]

  /// Opens (and creates or migrates) the database at `path`.
  /// - Parameter upTo: apply migrations only up to this one (tests of old → new upgrades).
  public init(path: String, upTo lastMigration: String? = nil) throws {
    self.path = path
    var configuration = Configuration()
    configuration.busyMode = .timeout(5)
    configuration.foreignKeysEnabled = true
    configuration.label = "cohort"
    // Bounded memory: capped page caches, temporary tables and sorts in files, no mmap (every connection).
    configuration.prepareDatabase { db in try Store.configureIndexConnection(db) }
    do {
      pool = try DatabasePool(path: path, configuration: configuration)
      let migrator = Store.migrator
      try pool.read { db in
        if try migrator.hasBeenSuperseded(db) {
          let applied = try migrator.appliedIdentifiers(db)
          let unknown = applied.subtracting(Store.knownMigrations).sorted()
          throw StoreError.newerSchema(path: path, unknown: unknown)
        }
      }
      if let lastMigration {
        try migrator.migrate(pool, upTo: lastMigration)
      } else if try pool.read({ db in try !migrator.hasCompletedMigrations(db) }) {
        // Only a database that needs a migration takes the write lock here: opening an up-to-date store never
        // waits behind another process's long commit.
        try migrator.migrate(pool)
      }
    } catch let error as StoreError {
      throw error
    } catch let error as DatabaseError {
      throw Store.translate(error, path: path)
    }
  }

  /// Applied migration identifiers (for `doctor`-style output and tests).
  public func appliedMigrations() throws -> [String] {
    try read { db in try Store.migrator.appliedIdentifiers(db).sorted() }
  }

  static func translate(_ error: DatabaseError, path: String) -> StoreError {
    switch error.resultCode {
    case .SQLITE_NOTADB, .SQLITE_CORRUPT:
      return .corrupt(path: path, reason: "file is not a database or is damaged")
    case .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_PERM:
      return .notWritable(path: path, reason: error.message ?? "cannot open")
    default:
      // DatabaseError's description hides statement arguments unless asked (GRDB default).
      return .database(error.message ?? "\(error.resultCode)")
    }
  }

  /// Runs `body` in a write transaction; rolls back on any thrown error.
  public func write<T>(_ body: (Database) throws -> T) throws -> T {
    do {
      return try pool.write(body)
    } catch let error as DatabaseError {
      throw Store.translate(error, path: path)
    }
  }

  /// Runs `body` against a consistent snapshot.
  public func read<T>(_ body: (Database) throws -> T) throws -> T {
    do {
      return try pool.read(body)
    } catch let error as DatabaseError {
      throw Store.translate(error, path: path)
    }
  }

  static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1-registry") { db in
      try db.execute(
        sql: """
          CREATE TABLE servers (
            name TEXT PRIMARY KEY NOT NULL,
            base_url TEXT NOT NULL,
            auth_kind TEXT NOT NULL DEFAULT 'none',
            token_env TEXT,
            token_file TEXT,
            client_id TEXT,
            key_path TEXT,
            key_alg TEXT,
            key_id TEXT,
            scope TEXT,
            token_url TEXT,
            kickoff_method TEXT NOT NULL DEFAULT 'get',
            created_at TEXT NOT NULL
          );
          CREATE TABLE cohorts (
            name TEXT PRIMARY KEY NOT NULL,
            server TEXT NOT NULL REFERENCES servers(name) ON UPDATE CASCADE ON DELETE RESTRICT,
            group_id TEXT NOT NULL,
            default_types TEXT,
            note TEXT,
            created_at TEXT NOT NULL
          );
          """)
    }
    migrator.registerMigration("v2-exports") { db in
      try db.execute(
        sql: """
          CREATE TABLE exports (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            cohort TEXT NOT NULL REFERENCES cohorts(name) ON UPDATE CASCADE ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            since TEXT,
            until TEXT,
            types TEXT,
            params_json TEXT NOT NULL,
            kickoff_url TEXT,
            kickoff_method TEXT NOT NULL DEFAULT 'get',
            status_url TEXT,
            phase TEXT NOT NULL,
            transaction_time TEXT,
            manifest_json TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            error TEXT,
            outcome TEXT,
            files INTEGER NOT NULL DEFAULT 0,
            resources INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0,
            server_software TEXT,
            UNIQUE (cohort, seq)
          );
          CREATE INDEX exports_by_phase ON exports(cohort, phase);
          CREATE TABLE files (
            export_id INTEGER NOT NULL REFERENCES exports(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            type TEXT NOT NULL,
            url TEXT NOT NULL,
            path TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (export_id, url)
          );
          CREATE TABLE watermarks (
            cohort TEXT NOT NULL REFERENCES cohorts(name) ON UPDATE CASCADE ON DELETE CASCADE,
            resource_type TEXT NOT NULL,
            transaction_time TEXT NOT NULL,
            export_id INTEGER NOT NULL REFERENCES exports(id) ON DELETE CASCADE,
            PRIMARY KEY (cohort, resource_type)
          );
          """)
    }
    migrator.registerMigration("v3-index") { db in
      // The temporal resource index: the state at snapshot N (an export id) is the rows with
      // valid_from <= N AND (valid_to IS NULL OR N < valid_to).
      try db.execute(
        sql: """
          CREATE TABLE resources (
            cohort TEXT NOT NULL REFERENCES cohorts(name) ON UPDATE CASCADE ON DELETE CASCADE,
            type TEXT NOT NULL,
            id TEXT NOT NULL,
            version_id TEXT,
            last_updated TEXT,
            hash TEXT NOT NULL,
            patient TEXT,
            valid_from INTEGER NOT NULL,
            valid_to INTEGER,
            file TEXT NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL
          );
          CREATE INDEX resources_current ON resources(cohort, type, id, valid_to);
          CREATE INDEX resources_from ON resources(cohort, valid_from);
          CREATE INDEX resources_to ON resources(cohort, valid_to);
          CREATE TABLE members (
            cohort TEXT NOT NULL REFERENCES cohorts(name) ON UPDATE CASCADE ON DELETE CASCADE,
            patient TEXT NOT NULL,
            valid_from INTEGER NOT NULL,
            valid_to INTEGER
          );
          CREATE INDEX members_current ON members(cohort, patient, valid_to);
          """)
    }
    registerV4(&migrator)
    registerV5(&migrator)
    registerV6(&migrator)
    registerV7(&migrator)
    registerV8(&migrator)
    registerV9(&migrator)
    return migrator
  }
}
