import CohortStore
import Foundation
import NDJSON
import Synchronization

/// Stages verified files into the store while the others still download, in two stages: a scanning queue reads and
/// parses each file (line hashes, keys) into batches of entries, and the writing queue inserts them into the store
/// (SQLite writes never run on the cooperative pool). The two overlap, file by file; a bounded channel between them
/// (a few batches) keeps memory independent of the file's size. Both are fed with file records (tiny), so indexing
/// overlaps the network. A joiners' file keeps only the joiners' resources.
final class Stager: Sendable {
  private struct State {
    var error: (any Error)?
    var abandoned = false
    var droppedOtherPatients = 0
  }
  /// Entries per batch handed from the scanner to the writer, and batches in flight per file.
  static let batchSize = 1024
  static let batchesInFlight = 4
  private let store: Store
  private let exportID: Int64
  private let cohortFolder: String
  private let queue = DispatchQueue(label: "cohort.stager", qos: .userInitiated)
  private let scanQueue = DispatchQueue(label: "cohort.stager.scan", qos: .userInitiated)
  private let state = Mutex(State())

  init(store: Store, exportID: Int64, cohortFolder: String) {
    self.store = store
    self.exportID = exportID
    self.cohortFolder = cohortFolder
  }

  /// Resources of other patients dropped from joiners' files.
  var droppedOtherPatients: Int { state.withLock { $0.droppedOtherPatients } }

  /// Queues one verified output file for staging. `only`: keep only these patients' resources (resources that
  /// belong to no patient, such as Practitioner, are kept). `record`: also record the file as downloaded, in the
  /// staging transaction (so a download never waits for the store's writer, and a file is recorded together with
  /// its rows); a record is written even after `abandon`, so that a resumed export does not fetch it again.
  func enqueue(_ file: FileRecord, only patients: Set<String>?, record: Bool = false) {
    let channel = EntryChannel(capacity: Self.batchesInFlight)
    let path = cohortFolder + "/" + file.path
    scanQueue.async { [self] in
      if state.withLock({ $0.error != nil || $0.abandoned }) {
        channel.finish(throwing: StagingAbandoned())
        return
      }
      do {
        var batch: [IndexEntry] = []
        batch.reserveCapacity(Self.batchSize)
        var dropped = 0
        try NDJSONFile.scan(path: path) { line in
          guard let type = line.resourceType, let id = line.id else { return }
          let patient = type == "Patient" ? id : line.patientID
          if let patients, let patient, !patients.contains(patient) {
            dropped += 1
            return
          }
          batch.append(
            IndexEntry(
              type: type, id: id, versionId: line.versionId, lastUpdated: line.lastUpdated, hash: line.contentHash,
              patient: patient, file: file.path, offset: line.offset, length: line.length))
          if batch.count == Self.batchSize {
            if state.withLock({ $0.abandoned }) { throw StagingAbandoned() }
            guard channel.send(batch) else { throw StagingAbandoned() }
            batch = []
            batch.reserveCapacity(Self.batchSize)
          }
        }
        if !batch.isEmpty, !channel.send(batch) { throw StagingAbandoned() }
        state.withLock { $0.droppedOtherPatients += dropped }
        channel.finish()
      } catch {
        channel.finish(throwing: error)
      }
    }
    queue.async { [self] in
      let (failed, abandoned) = state.withLock { ($0.error != nil, $0.abandoned) }
      if failed {
        channel.cancel()
        return
      }
      do {
        if abandoned {
          channel.cancel()
          if record { try store.addFile(file) }
          return
        }
        _ = try store.stage(exportID: exportID, file: file.path, recording: record ? file : nil) { sink in
          while let batch = try channel.receive() {
            for entry in batch { try sink(entry) }
          }
        }
      } catch is StagingAbandoned {
        channel.cancel()
        if record { try? store.addFile(file) }
      } catch {
        channel.cancel()
        state.withLock { if $0.error == nil { $0.error = error } }
      }
    }
  }

  /// Runs `work` on the staging queue, after everything queued before it (a job's files are recorded before its
  /// phase says they are). Skipped after a staging error; run after `abandon` too.
  func then(_ work: @escaping @Sendable () throws -> Void) {
    queue.async { [self] in
      if state.withLock({ $0.error != nil }) { return }
      do { try work() } catch { state.withLock { if $0.error == nil { $0.error = error } } }
    }
  }

  /// Waits until every queued file is staged; rethrows the first staging error.
  func finish() async throws {
    await drained()
    if let error = state.withLock({ $0.error }) { throw error }
  }

  /// Stops staging what is still queued (files still get recorded) and waits for the file in progress.
  func abandon() async {
    state.withLock { $0.abandoned = true }
    await drained()
  }

  /// Both queues have run everything queued so far (the writer last consumes what the scanner produced).
  private func drained() async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in queue.async { done.resume() } }
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in scanQueue.async { done.resume() } }
  }
}

/// The scanner stopped because the export is abandoned (or the writer no longer wants the file).
private struct StagingAbandoned: Error {}

/// A bounded hand-over of entry batches from the scanning queue to the writing queue, for one file. Both sides run
/// on dispatch queues (never on the cooperative pool), so blocking is fine: the scanner waits while `capacity`
/// batches are pending, the writer while none is. All state is guarded by `condition`.
final class EntryChannel: @unchecked Sendable {
  private let condition = NSCondition()
  private let capacity: Int
  private var batches: [[IndexEntry]] = []
  private var finished = false
  private var failure: (any Error)?
  private var cancelled = false

  init(capacity: Int) { self.capacity = max(1, capacity) }

  /// Scanner: hands over a batch, waiting while the channel is full. False when the writer cancelled.
  func send(_ batch: [IndexEntry]) -> Bool {
    condition.lock()
    defer { condition.unlock() }
    while batches.count >= capacity && !cancelled { condition.wait() }
    if cancelled { return false }
    batches.append(batch)
    condition.broadcast()
    return true
  }

  /// Scanner: no more batches; `error` (the scan failed) is thrown to the writer after the pending batches.
  func finish(throwing error: (any Error)? = nil) {
    condition.lock()
    defer { condition.unlock() }
    finished = true
    failure = error
    condition.broadcast()
  }

  /// Writer: the next batch, nil at the end; throws the scanner's error.
  func receive() throws -> [IndexEntry]? {
    condition.lock()
    defer { condition.unlock() }
    while batches.isEmpty && !finished { condition.wait() }
    if !batches.isEmpty {
      let batch = batches.removeFirst()
      condition.broadcast()
      return batch
    }
    if let failure { throw failure }
    return nil
  }

  /// Writer: wants no more (the scanner stops at its next batch).
  func cancel() {
    condition.lock()
    defer { condition.unlock() }
    cancelled = true
    batches.removeAll()
    condition.broadcast()
  }
}
