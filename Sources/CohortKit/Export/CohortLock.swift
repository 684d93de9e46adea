import CohortBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One writer per cohort: an OS file lock (`flock`) on `<workspace>/.locks/<cohort>.lock`, held from planning to
/// commit. The kernel releases it when the process dies, so a stale lock of a dead process is simply taken over.
/// The file holds who has it (pid, start time, command) so that a second `export` can say so.
public final class CohortLock: Sendable {
  let fd: Int32
  public let path: String

  private init(fd: Int32, path: String) {
    self.fd = fd
    self.path = path
  }

  /// Takes the lock or throws `ExportError.locked` naming the holder.
  public static func acquire(workspace: Workspace, cohort: String, purpose: String) throws -> CohortLock {
    let dir = workspace.path + "/.locks"
    try? FileManager.default.createDirectory(
      atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let path = dir + "/" + cohort + ".lock"
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw ExportError.localIO("cannot open the lock file \(path): \(String(cString: strerror(errno)))", exportSeq: nil, cohort: cohort)
    }
    if flock(fd, LOCK_EX | LOCK_NB) != 0 {
      // The holder writes who it is right after taking the lock: give it a moment.
      var holder: String?
      for _ in 0..<10 {
        holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        if holder?.isEmpty == false { break }
        usleep(20_000)
      }
      close(fd)
      throw ExportError.locked(cohort: cohort, holder: holder.flatMap { $0.isEmpty ? nil : $0 } ?? "another process")
    }
    let info = "process \(getpid()) (\(purpose), since \(isoUTC(Date())))\n"
    _ = ftruncate(fd, 0)
    _ = info.withCString { pwrite(fd, $0, strlen($0), 0) }
    return CohortLock(fd: fd, path: path)
  }

  deinit {
    _ = ftruncate(fd, 0)
    flock(fd, LOCK_UN)
    close(fd)
  }
}
