import CohortStore
import Foundation
import Synchronization

/// Errors of the workflows in CohortKit that are not the store's or the protocol's.
public enum KitError: Error, CustomStringConvertible, Sendable {
  case invalidURL(String, reason: String)
  case invalidArgument(String)
  case noWorkspace(searchedFrom: String)
  case cohortHasExports(name: String, exports: Int, folder: String)
  case failed(String)

  public var description: String {
    switch self {
    case .invalidURL(let url, let reason):
      return "invalid server URL '\(url)': \(reason)"
    case .invalidArgument(let message):
      return message
    case .noWorkspace(let start):
      return "no workspace found from \(start) upwards; run a command that registers something (e.g. `server add`) or pass --workspace DIR"
    case .cohortHasExports(let name, let exports, let folder):
      return "cohort '\(name)' has \(exports) export(s); `cohort remove \(name) --force` deletes them and the folder \(folder)"
    case .failed(let message):
      return message
    }
  }
}

/// Where the workspace is and how it was found.
public struct WorkspaceLocation: Sendable, Equatable {
  public enum Source: String, Sendable { case option, environment, discovered, defaulted }
  public var path: String
  public var source: Source
  public init(path: String, source: Source) {
    self.path = path
    self.source = source
  }
}

/// The workspace: a folder holding `cohort.sqlite` and one folder per cohort.
public final class Workspace: Sendable {
  public let location: WorkspaceLocation
  public var path: String { location.path }
  public var databasePath: String { path + "/cohort.sqlite" }

  /// Opened lazily: read-only commands in a folder without a workspace must not create one.
  private let storeBox = StoreBox()

  public init(location: WorkspaceLocation) {
    self.location = location
  }

  /// Finds the workspace: `--workspace DIR`, else `COHORT_WORKSPACE`, else the nearest `Cohorts/`
  /// folder from `cwd` upwards, else `./Cohorts` (created on first write).
  public static func locate(option: String?, environment: [String: String], cwd: String) -> WorkspaceLocation {
    if let option, !option.isEmpty { return WorkspaceLocation(path: absolute(option, cwd: cwd), source: .option) }
    if let env = environment["COHORT_WORKSPACE"], !env.isEmpty {
      return WorkspaceLocation(path: absolute(env, cwd: cwd), source: .environment)
    }
    var dir = URL(fileURLWithPath: cwd).standardizedFileURL
    while true {
      let candidate = dir.appendingPathComponent("Cohorts").path
      var isDir: ObjCBool = false
      if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), isDir.boolValue {
        return WorkspaceLocation(path: candidate, source: .discovered)
      }
      let parent = dir.deletingLastPathComponent()
      if parent.path == dir.path { break }
      dir = parent
    }
    return WorkspaceLocation(path: absolute("Cohorts", cwd: cwd), source: .defaulted)
  }

  static func absolute(_ path: String, cwd: String) -> String {
    let expanded = (path as NSString).expandingTildeInPath
    if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL.path }
    return URL(fileURLWithPath: cwd).appendingPathComponent(expanded).standardizedFileURL.path
  }

  /// Whether the database exists already.
  public var exists: Bool { FileManager.default.fileExists(atPath: databasePath) }

  /// The store, creating the folder and database when `create` is true.
  /// `onCreate` is told once when a new workspace is made (for the one-line notice).
  @_spi(Store) public func store(create: Bool, onCreate: (String) -> Void = { _ in }) throws -> Store {
    if let store = storeBox.value { return store }
    if !exists {
      guard create else { throw KitError.noWorkspace(searchedFrom: path) }
      do {
        try Workspace.makePrivateFolder(path)
      } catch {
        throw StoreError.notWritable(path: path, reason: "cannot create the folder")
      }
      guard access(path, W_OK) == 0 else {
        throw StoreError.notWritable(path: path, reason: "permission denied")
      }
      onCreate(path)
    }
    let store = try Store(path: databasePath)
    storeBox.value = store
    return store
  }

  /// The folder of a cohort's exports.
  public func cohortFolder(_ cohort: String) -> String { path + "/" + cohort }

  /// Creates a folder (and its parents) readable by the owner only: exports hold patient data.
  public static func makePrivateFolder(_ path: String) throws {
    try FileManager.default.createDirectory(
      atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
  }

  /// Writes a file readable by the owner only.
  public static func writePrivate(_ data: Data, to path: String) throws {
    guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
      throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
    }
  }
}

/// The opened store behind a `Mutex`, so `Workspace` stays Sendable.
final class StoreBox: Sendable {
  private let stored = Mutex<Store?>(nil)
  var value: Store? {
    get { stored.withLock { $0 } }
    set { stored.withLock { $0 = newValue } }
  }
}

/// An error that knows its documented exit status (1 failed, 2 server/network, 64 usage).
public protocol CohortFailure: Error, CustomStringConvertible {
  var exitCode: Int32 { get }
}

extension StoreError: CohortFailure {
  public var exitCode: Int32 {
    if case .invalidName = self { return 64 }
    return 1
  }
}

extension KitError: CohortFailure {
  public var exitCode: Int32 {
    switch self {
    case .invalidArgument, .invalidURL: return 64
    default: return 1
    }
  }
}
