// Streaming, verified, parallel file downloads (C43–C50).
import AsyncHTTPClient
import Crypto
import Foundation
import NDJSON
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Per-line verification while downloading: every non-blank line is a JSON object whose
/// `resourceType` equals the file's type, output lines carry an `id`, and no line exceeds the cap
/// (C44, issue 11 item 2). The one place that knows which scanner is used.
struct LineVerifier {
  private var scanner: NDJSONLineScanner
  let type: String
  let requireID: Bool
  private(set) var lines = 0

  init(type: String, requireID: Bool, maxLineLength: Int) {
    self.type = type
    self.requireID = requireID
    self.scanner = NDJSONLineScanner(maxLineLength: maxLineLength, computeHash: false, fields: [.resourceType, .id])
  }

  mutating func feed(_ chunk: UnsafeRawBufferPointer) throws {
    var n = lines
    let expected = type
    let id = requireID
    defer { lines = n }
    try scanner.feed(chunk) { line in
      n += 1
      try Self.check(line, expected, id)
    }
  }

  mutating func finish() throws {
    var n = lines
    let expected = type
    let id = requireID
    defer { lines = n }
    try scanner.finish { line in
      n += 1
      try Self.check(line, expected, id)
    }
  }

  private static func check(_ line: ScannedLine, _ expected: String, _ requireID: Bool) throws {
    guard line.resourceType == expected else {
      throw VerifyFailure(
        reason: "line \(line.lineNumber) has resourceType \(line.resourceType.map { "'\($0)'" } ?? "missing"), expected \(expected)")
    }
    if requireID, (line.id ?? "").isEmpty {
      throw VerifyFailure(reason: "line \(line.lineNumber) (\(expected)) has no id, so it could not be indexed")
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

/// The time the last byte arrived (on the client's clock), shared between a download and its watchdog.
final class ByteClock: Sendable {
  private let clock: ClockReader
  private let last: Mutex<Duration>
  init(_ clock: ClockReader) {
    self.clock = clock
    last = Mutex(clock.now)
  }
  func touch() {
    let now = clock.now
    last.withLock { $0 = now }
  }
  var sinceLast: Duration {
    let now = clock.now
    return now - last.withLock { $0 }
  }
}

struct LimitHit: Error { var limit: DownloadLimit }

/// A response body as its buffers arrive: counted on the wire (`maxFileBytes`), decoded when its first bytes are gzip
/// (1F 8B) or zlib (78 xx) — whatever the headers say: NDJSON and JSON never start with them, and a body the HTTP
/// client already decoded does not — and bounded in decoded size and compression ratio. Shared by file downloads
/// and the Group read; throws `LimitHit`, and the inflater's errors (`NDJSONError.gzip`).
struct BodyDecoder {
  let policy: DownloadPolicy
  private var inflater: GzipInflater?
  private var decided = false
  /// Bytes received (compressed, if the body is).
  private(set) var wire: Int64 = 0
  /// Bytes decoded so far.
  private(set) var bytes: Int64 = 0

  init(policy: DownloadPolicy) { self.policy = policy }

  var isCompressed: Bool { inflater != nil }

  /// Decodes one buffer, handing the decoded bytes to `out` (each buffer valid only during the call).
  mutating func feed(_ p: UnsafeRawBufferPointer, _ out: (UnsafeRawBufferPointer) throws -> Void) throws {
    wire += Int64(p.count)
    if wire > policy.maxFileBytes { throw LimitHit(limit: .fileBytes(policy.maxFileBytes)) }
    if !decided, p.count >= 2 {
      decided = true
      if (p[0] == 0x1F && p[1] == 0x8B) || (p[0] == 0x78 && (UInt16(p[0]) << 8 | UInt16(p[1])) % 31 == 0) {
        inflater = GzipInflater()
      }
    }
    let (policy, wire) = (self.policy, self.wire)
    var total = bytes
    defer { bytes = total }
    func deliver(_ chunk: UnsafeRawBufferPointer, compressed: Bool) throws {
      guard !chunk.isEmpty else { return }
      total += Int64(chunk.count)
      if total > policy.maxDecompressedBytes { throw LimitHit(limit: .decompressedBytes(policy.maxDecompressedBytes)) }
      if compressed, total > 1 << 20, total > Int64(policy.maxCompressionRatio) * max(wire, 1) {
        throw LimitHit(limit: .compressionRatio(policy.maxCompressionRatio))
      }
      try out(chunk)
    }
    // Copies of an inflater share its stream: the copy leaves `self` free for the closure.
    if var inflater {
      try inflater.inflate(p) { try deliver($0, compressed: true) }
    } else {
      try deliver(p, compressed: false)
    }
  }

  /// Throws when a compressed body ended inside a gzip member.
  func finish() throws { try inflater?.finish() }
}

private struct BodyResult: Sendable {
  var bytes: Int64
  var lines: Int
  var sha256: String
}

extension BulkClient {
  /// Downloads one planned file into `directory/relativePath`: streamed to a temporary name,
  /// verified (complete body, sha256, lines, resourceType, id, count) and renamed (C43–C48).
  public func download(
    _ file: PlannedFile, requiresAccessToken: Bool, into directory: String, statusURL: String?
  ) async throws -> DownloadedFile {
    let finalPath = (directory as NSString).appendingPathComponent(file.relativePath)
    let tempPath =
      ((finalPath as NSString).deletingLastPathComponent as NSString)
      .appendingPathComponent("." + (finalPath as NSString).lastPathComponent + ".part")
    let started = clock.now
    var item = file.item
    var attempt = 0
    var renewed = false
    var refreshed = false
    var forceRenew = false
    var countRetried = false
    emit(.downloadRequest(url: item.url, kind: file.kind, type: item.type))
    while true {
      attempt += 1
      let tok = requiresAccessToken ? try await token(forceRenew: forceRenew, for: .download) : nil
      forceRenew = false
      let failure: AttemptFailure
      do {
        let body = try await downloadOnce(item, kind: file.kind, token: tok, tempPath: tempPath)
        if let count = item.count, count != body.lines {
          let msg = "\(file.relativePath): the manifest count is \(count) but the file has \(body.lines) resources"
          if downloadPolicy.strictCount {
            unlink(tempPath)
            if !countRetried {
              countRetried = true
              emit(.retry(reason: msg + "; downloading it once more", after: .zero))
              continue
            }
            let e = BulkError.dataFault(
              file: file.relativePath, line: nil,
              reason: "the manifest count is \(count) but the file had \(body.lines) resources on two downloads")
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
          bytes: body.bytes, lines: body.lines, sha256: body.sha256, expectedCount: item.count, attempts: attempt,
          seconds: PollPolicy.seconds(clock.since(started)))
        emit(.downloadComplete(done))
        if file.kind == .error && body.lines > 0 { surfaceErrorFile(path: finalPath, name: file.relativePath) }
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
      try await clock.sleep(for: delay)
    }
  }

  /// Says once each warning/information issue of a downloaded error file, and how many errors it holds.
  private func surfaceErrorFile(path: String, name: String) {
    guard let summary = try? OperationOutcomeFile.summarize(path: path) else { return }
    for outcome in summary.notes { surfaceWarnings(outcome, from: name) }
    if summary.errorIssues > 0 {
      let first = summary.errors.first.map { ": \($0)" } ?? ""
      emit(.warning("the server reported \(summary.errorIssues) error issue(s) in \(name)\(first)"))
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

  /// One attempt: GET, then stream to `tempPath` — decoding gzip/deflate within the size and ratio
  /// limits, with SHA-256 and line verification — under a watchdog for stalls and duration.
  private func downloadOnce(_ item: ManifestItem, kind: FileKind, token: String?, tempPath: String) async throws -> BodyResult {
    let policy = downloadPolicy
    var headers = HTTPHeaders()
    headers.add(name: "Accept", value: "application/fhir+ndjson")
    headers.add(name: "Accept-Encoding", value: "gzip, deflate")
    if URLText.origin(item.url) == URLText.origin(endpoint.baseURL) {
      for (k, v) in endpoint.extraHeaders { headers.add(name: k, value: v) }
    }
    let started = clock.now
    let response: HTTPClientResponse
    do {
      (response, _) = try await perform(
        .download, method: .GET, url: item.url, headers: headers, token: token, body: nil,
        timeout: Self.timeAmount(max(policy.stallTimeout, .seconds(30))))
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
    let declared = response.headers.first(name: "Content-Length").flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
    if let declared, declared > policy.maxFileBytes {
      throw AttemptFailure.fatal(.limitExceeded(url: item.url, limit: .fileBytes(policy.maxFileBytes)))
    }
    let encoding = (response.headers.first(name: "Content-Encoding") ?? "").lowercased()
    let chunked = response.headers[canonicalForm: "Transfer-Encoding"].contains { $0.lowercased().contains("chunked") }
    let fd = open(tempPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw AttemptFailure.fatal(.io(path: tempPath, message: String(cString: strerror(errno))))
    }
    defer { close(fd) }
    let arrivals = ByteClock(clock)
    let url = item.url
    let type = item.type
    let body = response.body
    do {
      return try await withThrowingTaskGroup(of: BodyResult?.self) { group in
        group.addTask {
          try await self.consume(
            body, url: url, type: type, requireID: kind == .output, fd: fd, tempPath: tempPath,
            declaredLength: encoding.isEmpty || encoding == "identity" ? declared : nil,
            closeDelimited: declared == nil && !chunked, arrivals: arrivals)
        }
        group.addTask {
          // The watchdog (the wait for the response head included).
          throw LimitHit(limit: try await self.watchdog(started: started, arrivals: arrivals))
        }
        while let next = try await group.next() {
          if let result = next {
            group.cancelAll()
            return result
          }
        }
        throw CancellationError()
      }
    } catch let hit as LimitHit {
      let e = BulkError.limitExceeded(url: url, limit: hit.limit)
      if case .stall = hit.limit { throw AttemptFailure.transport(e) }
      throw AttemptFailure.fatal(e)
    }
  }

  /// Streams the body to `fd`: decode, bound, hash, verify, write. Throws `AttemptFailure`.
  private func consume(
    _ body: HTTPClientResponse.Body, url: String, type: String, requireID: Bool, fd: Int32, tempPath: String,
    declaredLength: Int64?, closeDelimited: Bool, arrivals: ByteClock
  ) async throws -> BodyResult {
    let policy = downloadPolicy
    var hasher = SHA256()
    var verifier = LineVerifier(type: type, requireID: requireID, maxLineLength: policy.maxLineLength)
    var decoder = BodyDecoder(policy: policy)
    var lastByte: UInt8 = 0x0A
    var nextProgress = policy.progressEvery

    do {
      for try await buffer in body {
        arrivals.touch()
        try buffer.withUnsafeReadableBytes { p in
          try decoder.feed(p) { out in
            hasher.update(bufferPointer: out)
            try verifier.feed(out)
            try Self.writeAll(fd, out, path: tempPath)
            lastByte = out[out.count - 1]
          }
        }
        let bytes = decoder.bytes
        if bytes >= nextProgress {
          nextProgress = bytes + policy.progressEvery
          emit(.downloadProgress(url: url, bytes: bytes))
        }
      }
      let wire = decoder.wire
      if decoder.isCompressed {
        do {
          try decoder.finish()
        } catch {
          throw AttemptFailure.transport(
            .network(operation: .download, url: url, message: "the compressed body ended early after \(wire) bytes"))
        }
      }
      if let declaredLength, wire != declaredLength {
        throw AttemptFailure.transport(
          .network(operation: .download, url: url, message: "body of \(wire) bytes, Content-Length \(declaredLength)"))
      }
      if closeDelimited, decoder.bytes > 0, lastByte != 0x0A {
        // Without Content-Length or chunked encoding only the connection's close ends the body:
        // a close in the middle of a line is a cut, not an end.
        throw AttemptFailure.transport(
          .network(operation: .download, url: url, message: "the connection closed in the middle of a line after \(wire) bytes"))
      }
      try verifier.finish()
    } catch let f as AttemptFailure {
      throw f
    } catch let hit as LimitHit {
      throw hit
    } catch let v as VerifyFailure {
      throw AttemptFailure.fatal(.invalidFile(url: url, type: type, reason: v.reason))
    } catch let n as NDJSONError {
      if case .gzip(let why) = n {
        throw AttemptFailure.fatal(.invalidFile(url: url, type: type, reason: "the compressed body is corrupt (\(why))"))
      }
      throw AttemptFailure.fatal(.invalidFile(url: url, type: type, reason: n.description))
    } catch let e as BulkError {
      throw AttemptFailure.fatal(e)
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      if Task.isCancelled { throw CancellationError() }
      throw AttemptFailure.transport(
        .network(operation: .download, url: url, message: "body interrupted after \(decoder.wire) bytes: \(Self.describe(error))"))
    }
    let sha = hasher.finalize().map { String(format: "%02x", $0) }.joined()
    return BodyResult(bytes: decoder.bytes, lines: verifier.lines, sha256: sha)
  }

  /// Returns the limit a body reached: no byte for `stallTimeout`, or longer than `maxDuration` since `started`
  /// (checked every quarter of the stall limit, at most every second, on the client's clock).
  func watchdog(started: Duration, arrivals: ByteClock) async throws -> DownloadLimit {
    let policy = downloadPolicy
    let tick = max(min(policy.stallTimeout / 4, .seconds(1)), .milliseconds(10))
    while true {
      try await clock.sleep(for: tick)
      if clock.since(started) > policy.maxDuration { return .duration(seconds: Int(policy.maxDuration.components.seconds)) }
      if arrivals.sinceLast > policy.stallTimeout { return .stall(seconds: Int(policy.stallTimeout.components.seconds)) }
    }
  }

  static func timeAmount(_ d: Duration) -> TimeAmount {
    let c = d.components
    return .nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
  }

  static func writeAll(_ fd: Int32, _ p: UnsafeRawBufferPointer, path: String) throws {
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

  /// Downloads every file of the manifest, `parallel` at a time (1…10, C49). Files whose relative
  /// path (`Type.N.ndjson`, `deleted/…`, `error/…`: deterministic from the manifest) is in `skip`
  /// are left alone (resume keyed by what lands, not by URL). `onFileDone` runs for each file as
  /// it completes, one at a time. Network failures are retried per `downloadPolicy`; if some
  /// files still fail, the others finish and `BulkError.downloadsFailed` is thrown at the end. A
  /// failure that no retry can fix (bad data, token policy, local disk) stops the other downloads.
  @discardableResult
  public func downloadAll(
    _ manifest: Manifest, into directory: String, parallel: Int = 4, statusURL: String?,
    skip: Set<String> = [], onFileDone: @escaping @Sendable (DownloadedFile) async throws -> Void = { _ in }
  ) async throws -> [DownloadedFile] {
    let started = clock.now
    let plan = try FileNaming.plan(manifest).filter { !skip.contains($0.relativePath) }
    let requires = manifest.requiresAccessToken
    // The token policy, before anything is fetched (C12): one clear error naming the host.
    if requires && endpoint.auth != nil {
      let policy = endpoint.tokenPolicy
      if let foreign = plan.first(where: { !policy.allows($0.item.url) }) {
        throw BulkError.tokenOriginRefused(
          operation: .download, host: URLText.hostPort(foreign.item.url) ?? "an unusable URL",
          server: URLText.hostPort(endpoint.baseURL) ?? endpoint.baseURL)
      }
    }
    for sub in Set(plan.map { ($0.relativePath as NSString).deletingLastPathComponent }) {
      let dir = sub.isEmpty ? directory : (directory as NSString).appendingPathComponent(sub)
      do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      } catch {
        throw BulkError.io(path: dir, message: "cannot create the folder")
      }
    }
    let width = min(max(parallel, 1), 10)
    var done: [DownloadedFile] = []
    var failures: [BulkError] = []
    try await withThrowingTaskGroup(of: Result<DownloadedFile, any Error>.self) { group in
      var next = plan.makeIterator()
      var running = 0
      var stopping = false
      func startNext() -> Bool {
        guard !stopping, let file = next.next() else { return false }
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
          if error is CancellationError {
            if stopping && !Task.isCancelled { continue }
            throw error
          }
          let e = (error as? BulkError) ?? .io(path: directory, message: TerminalText.escape(String(describing: error)))
          failures.append(e)
          switch e.failureClass {
          case .data, .policy, .localIO, .usage:
            stopping = true
            group.cancelAll()
          default: break
          }
        }
        if startNext() { running += 1 }
      }
    }
    if !failures.isEmpty {
      let first = failures.enumerated().min { ($0.element.failureClass.rank, $0.offset) < ($1.element.failureClass.rank, $1.offset) }!.element
      throw BulkError.downloadsFailed(failed: failures.count, total: plan.count, first: first)
    }
    let outputs = done.filter { $0.kind == .output }
    emit(
      .exportComplete(
        ExportTotals(
          files: done.count, resources: outputs.reduce(0) { $0 + $1.lines },
          bytes: done.reduce(0) { $0 + $1.bytes }, seconds: PollPolicy.seconds(clock.since(started)))))
    return done
  }
}
