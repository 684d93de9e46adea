// Streaming, verified, parallel file downloads (C43–C50).
import AsyncHTTPClient
import Crypto
import Foundation
import NDJSON
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Per-line verification while downloading: every non-blank line is a JSON object whose
/// `resourceType` equals the file's type, and no line exceeds the cap (C44). The one place that
/// knows which scanner is used.
struct LineVerifier {
  private var scanner: NDJSONLineScanner
  let type: String
  private(set) var lines = 0

  init(type: String, maxLineLength: Int) {
    self.type = type
    self.scanner = NDJSONLineScanner(maxLineLength: maxLineLength, computeHash: false)
  }

  mutating func feed(_ chunk: UnsafeRawBufferPointer) throws {
    var n = lines
    let expected = type
    defer { lines = n }
    try scanner.feed(chunk) { line in
      n += 1
      try Self.check(line, expected)
    }
  }

  mutating func finish() throws {
    var n = lines
    let expected = type
    defer { lines = n }
    try scanner.finish { line in
      n += 1
      try Self.check(line, expected)
    }
  }

  private static func check(_ line: ScannedLine, _ expected: String) throws {
    guard line.resourceType == expected else {
      throw VerifyFailure(
        reason: "line \(line.lineNumber) has resourceType \(line.resourceType.map { "'\($0)'" } ?? "missing"), expected \(expected)")
    }
  }
}

struct VerifyFailure: Error { var reason: String }

/// Why one attempt failed.
private enum AttemptFailure: Error {
  case status(Int, retryAfter: Duration?, error: BulkError)
  case transport(BulkError)
  case fatal(BulkError)
}

extension BulkClient {
  /// Downloads one planned file into `directory/relativePath`: streamed to a temporary name,
  /// verified (sha256, lines, resourceType, count) and renamed (C43–C48).
  public func download(
    _ file: PlannedFile, requiresAccessToken: Bool, into directory: String, statusURL: String?
  ) async throws -> DownloadedFile {
    let finalPath = (directory as NSString).appendingPathComponent(file.relativePath)
    let tempPath =
      ((finalPath as NSString).deletingLastPathComponent as NSString)
      .appendingPathComponent("." + (finalPath as NSString).lastPathComponent + ".part")
    let started = ContinuousClock.now
    var item = file.item
    var attempt = 0
    var renewed = false
    var refreshed = false
    var forceRenew = false
    emit(.downloadRequest(url: item.url, kind: file.kind, type: item.type))
    while true {
      attempt += 1
      let tok = requiresAccessToken ? try await token(forceRenew: forceRenew) : nil
      forceRenew = false
      let failure: AttemptFailure
      do {
        let (bytes, lines, sha) = try await downloadOnce(item, token: tok, tempPath: tempPath)
        if let count = item.count, count != lines {
          let msg = "\(file.relativePath): the manifest count is \(count) but the file has \(lines) resources"
          if downloadPolicy.strictCount {
            unlink(tempPath)
            let e = BulkError.invalidFile(url: item.url, type: item.type, reason: "count \(count) in the manifest, \(lines) lines in the file")
            emit(.downloadError(url: item.url, message: e.description))
            throw e
          }
          emit(.warning(msg))
        }
        guard rename(tempPath, finalPath) == 0 else {
          let err = String(cString: strerror(errno))
          unlink(tempPath)
          throw BulkError.io(path: finalPath, message: err)
        }
        let done = DownloadedFile(
          kind: file.kind, type: item.type, url: item.url, path: finalPath, relativePath: file.relativePath,
          bytes: bytes, lines: lines, sha256: sha, expectedCount: item.count, attempts: attempt,
          seconds: PollPolicy.seconds(started.duration(to: .now)))
        emit(.downloadComplete(done))
        if file.kind == .error && lines > 0 {
          emit(.warning("the server reported \(lines) OperationOutcome(s) in \(file.relativePath)"))
        }
        return done
      } catch let f as AttemptFailure {
        unlink(tempPath)
        failure = f
      } catch {
        unlink(tempPath)
        throw error
      }

      var retryAfter: Duration? = nil
      let error: BulkError
      switch failure {
      case .fatal(let e):
        emit(.downloadError(url: item.url, message: e.description))
        throw e
      case .transport(let e):
        error = e
      case .status(let code, let ra, let e):
        error = e
        retryAfter = ra
        if code == 401, requiresAccessToken, endpoint.auth != nil, !renewed {
          renewed = true
          forceRenew = true
          attempt -= 1
          emit(.retry(reason: "file download answered HTTP 401; renewing the access token", after: .zero))
          continue
        }
        if [401, 403, 404, 410].contains(code), !refreshed, let statusURL {
          refreshed = true
          // C47: the link may have expired; ask the status URL once for a fresh one.
          if let fresh = try? await refreshedItem(file, statusURL: statusURL) {
            emit(.retry(reason: "file link answered HTTP \(code); got a fresh link from the status URL", after: .zero))
            item = fresh
            attempt -= 1
            continue
          }
        }
        if !(code == 429 || (500...599).contains(code)) {
          emit(.downloadError(url: item.url, message: e.description))
          throw e
        }
      }
      guard attempt < downloadPolicy.maxAttempts else {
        emit(.downloadError(url: item.url, message: error.description))
        throw error
      }
      let delay =
        retryAfter.map(downloadPolicy.backoff.clamp)
        ?? downloadPolicy.backoff.nextDelay(retryAfter: nil, attempt: attempt - 1)
      emit(.retry(reason: "\(file.relativePath): \(error.description)", after: delay))
      try await Task.sleep(for: delay)
    }
  }

  /// The brief's form: the ordinal is read from a `Type.N.ndjson` file name (1 otherwise).
  public func download(
    _ item: ManifestItem, kind: FileKind, requiresAccessToken: Bool, into directory: String,
    fileName: String, statusURL: String?
  ) async throws -> DownloadedFile {
    let parts = (fileName as NSString).lastPathComponent.split(separator: ".")
    let ordinal = parts.count >= 3 ? Int(parts[parts.count - 2]) ?? 1 : 1
    return try await download(
      PlannedFile(kind: kind, item: item, ordinal: ordinal, relativePath: fileName),
      requiresAccessToken: requiresAccessToken, into: directory, statusURL: statusURL)
  }

  private func refreshedItem(_ file: PlannedFile, statusURL: String) async throws -> ManifestItem? {
    guard case .complete(let first) = try await pollOnce(statusURL: statusURL) else { return nil }
    let m = try await followPages(first, policy: pollPolicy)
    let plan = try FileNaming.plan(m)
    return plan.first { $0.kind == file.kind && $0.item.type == file.item.type && $0.ordinal == file.ordinal }?
      .item
  }

  /// One attempt: GET, stream to `tempPath` with SHA-256 and line verification.
  private func downloadOnce(_ item: ManifestItem, token: String?, tempPath: String) async throws -> (Int64, Int, String) {
    var headers = HTTPHeaders()
    headers.add(name: "Accept", value: "application/fhir+ndjson")
    if URLText.origin(item.url) == URLText.origin(endpoint.baseURL) {
      for (k, v) in endpoint.extraHeaders { headers.add(name: k, value: v) }
    }
    let response: HTTPClientResponse
    do {
      (response, _) = try await perform(
        .download, method: .GET, url: item.url, headers: headers, token: token, body: nil,
        timeout: .minutes(10))
    } catch let e as BulkError {
      if case .network = e { throw AttemptFailure.transport(e) }
      throw AttemptFailure.fatal(e)
    }
    let code = Int(response.status.code)
    guard code == 200 else {
      let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
      let reply = Reply(status: code, headers: response.headers, body: body, url: item.url)
      throw AttemptFailure.status(code, retryAfter: retryAfter(reply), error: serverError(.download, reply))
    }
    let fd = open(tempPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw AttemptFailure.fatal(.io(path: tempPath, message: String(cString: strerror(errno))))
    }
    defer { close(fd) }
    var hasher = SHA256()
    var verifier = LineVerifier(type: item.type, maxLineLength: downloadPolicy.maxLineLength)
    var bytes: Int64 = 0
    var nextProgress = downloadPolicy.progressEvery
    do {
      for try await buffer in response.body {
        try buffer.withUnsafeReadableBytes { p in
          if bytes == 0, p.count >= 2, p[0] == 0x1F, p[1] == 0x8B {
            throw VerifyFailure(reason: "the body is still gzip-compressed: the HTTP client does not decode it (use BulkClient.defaultHTTPClient)")
          }
          hasher.update(bufferPointer: p)
          try verifier.feed(p)
          try Self.writeAll(fd, p, path: tempPath)
        }
        bytes += Int64(buffer.readableBytes)
        if bytes >= nextProgress {
          nextProgress = bytes + downloadPolicy.progressEvery
          emit(.downloadProgress(url: item.url, bytes: bytes))
        }
      }
      try verifier.finish()
    } catch let v as VerifyFailure {
      throw AttemptFailure.fatal(.invalidFile(url: item.url, type: item.type, reason: v.reason))
    } catch let n as NDJSONError {
      throw AttemptFailure.fatal(.invalidFile(url: item.url, type: item.type, reason: n.description))
    } catch let e as BulkError {
      throw AttemptFailure.fatal(e)
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      throw AttemptFailure.transport(
        .network(operation: .download, url: item.url, message: "body interrupted after \(bytes) bytes: \(Self.describe(error))"))
    }
    let sha = hasher.finalize().map { String(format: "%02x", $0) }.joined()
    return (bytes, verifier.lines, sha)
  }

  private static func writeAll(_ fd: Int32, _ p: UnsafeRawBufferPointer, path: String) throws {
    guard var base = p.baseAddress else { return }
    var left = p.count
    while left > 0 {
      let n = write(fd, base, left)
      if n < 0 {
        if errno == EINTR { continue }
        throw BulkError.io(path: path, message: String(cString: strerror(errno)))
      }
      left -= n
      base += n
    }
  }

  /// Downloads every file of the manifest, `parallel` at a time (1…10, C49). Files whose URL or
  /// relative path is in `skip` are left alone (resume). `onFileDone` runs for each file as it
  /// completes, one at a time. Failed files are retried per `downloadPolicy`; if some still fail,
  /// the others finish and `BulkError.downloadsFailed` is thrown at the end.
  @discardableResult
  public func downloadAll(
    _ manifest: Manifest, into directory: String, parallel: Int = 4, statusURL: String?,
    skip: Set<String> = [], onFileDone: @escaping @Sendable (DownloadedFile) async throws -> Void = { _ in }
  ) async throws -> [DownloadedFile] {
    let started = ContinuousClock.now
    let plan = try FileNaming.plan(manifest).filter { !skip.contains($0.item.url) && !skip.contains($0.relativePath) }
    for sub in Set(plan.map { ($0.relativePath as NSString).deletingLastPathComponent }) {
      let dir = sub.isEmpty ? directory : (directory as NSString).appendingPathComponent(sub)
      do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      } catch {
        throw BulkError.io(path: dir, message: "cannot create the folder")
      }
    }
    let width = min(max(parallel, 1), 10)
    let requires = manifest.requiresAccessToken
    var done: [DownloadedFile] = []
    var failures: [String] = []
    try await withThrowingTaskGroup(of: Result<DownloadedFile, any Error>.self) { group in
      var next = plan.makeIterator()
      var running = 0
      func startNext() -> Bool {
        guard let file = next.next() else { return false }
        group.addTask {
          do {
            return .success(try await self.download(file, requiresAccessToken: requires, into: directory, statusURL: statusURL))
          } catch {
            return .failure(error)
          }
        }
        return true
      }
      while running < width, startNext() { running += 1 }
      while let result = try await group.next() {
        running -= 1
        switch result {
        case .success(let file):
          done.append(file)
          do {
            try await onFileDone(file)
          } catch {
            group.cancelAll()
            throw error
          }
        case .failure(let error):
          if error is CancellationError { throw error }
          failures.append(String(describing: error))
        }
        if startNext() { running += 1 }
      }
    }
    if !failures.isEmpty {
      throw BulkError.downloadsFailed(failed: failures.count, total: plan.count, first: failures[0])
    }
    let outputs = done.filter { $0.kind == .output }
    emit(
      .exportComplete(
        ExportTotals(
          files: done.count, resources: outputs.reduce(0) { $0 + $1.lines },
          bytes: done.reduce(0) { $0 + $1.bytes }, seconds: PollPolicy.seconds(started.duration(to: .now)))))
    return done
  }
}
