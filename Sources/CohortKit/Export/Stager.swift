import CohortStore
import Foundation
import NDJSON
import Synchronization

/// Stages verified files into the store while the others still download: one serial background queue (SQLite
/// writes never run on the cooperative pool), fed with file records (tiny), so indexing overlaps the network and
/// memory stays bounded by one file's scan buffer. A joiners' file keeps only the joiners' resources.
final class Stager: Sendable {
  private struct State {
    var error: (any Error)?
    var abandoned = false
    var droppedOtherPatients = 0
  }
  private let store: Store
  private let exportID: Int64
  private let cohortFolder: String
  private let queue = DispatchQueue(label: "cohort.stager", qos: .userInitiated)
  private let state = Mutex(State())

  init(store: Store, exportID: Int64, cohortFolder: String) {
    self.store = store
    self.exportID = exportID
    self.cohortFolder = cohortFolder
  }

  /// Resources of other patients dropped from joiners' files.
  var droppedOtherPatients: Int { state.withLock { $0.droppedOtherPatients } }

  /// Queues one verified output file for staging. `only`: keep only these patients' resources (resources that
  /// belong to no patient, such as Practitioner, are kept).
  func enqueue(_ file: FileRecord, only patients: Set<String>?) {
    queue.async { [self] in
      let skip = state.withLock { $0.error != nil || $0.abandoned }
      if skip { return }
      do {
        var dropped = 0
        _ = try store.stage(exportID: exportID, file: file.path) { sink in
          try NDJSONFile.scan(path: cohortFolder + "/" + file.path) { line in
            guard let type = line.resourceType, let id = line.id else { return }
            let patient = type == "Patient" ? id : line.patientID
            if let patients, let patient, !patients.contains(patient) {
              dropped += 1
              return
            }
            try sink(
              IndexEntry(
                type: type, id: id, versionId: line.versionId, lastUpdated: line.lastUpdated, hash: line.contentHash,
                patient: patient, file: file.path, offset: line.offset, length: line.length))
          }
        }
        state.withLock { $0.droppedOtherPatients += dropped }
      } catch {
        state.withLock { if $0.error == nil { $0.error = error } }
      }
    }
  }

  /// Waits until every queued file is staged; rethrows the first staging error.
  func finish() async throws {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in queue.async { done.resume() } }
    if let error = state.withLock({ $0.error }) { throw error }
  }

  /// Stops staging what is still queued and waits for the file in progress.
  func abandon() async {
    state.withLock { $0.abandoned = true }
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in queue.async { done.resume() } }
  }
}

