import CohortStore
import FHIRBulk
import Foundation

/// Errors of the export workflow. Each maps to one documented exit status in `exitCode` (the only place):
/// usage 64; not found / conflict 1; the server said no 2; network 2 (resumable); bad data from the server 1
/// (not resumable); local I/O 1 (resumable after freeing space); interrupted 130.
public enum ExportError: Error, CustomStringConvertible, Sendable {
  /// The command line asks for something impossible; nothing was sent.
  case usage(String)
  /// Another process is exporting this cohort.
  case locked(cohort: String, holder: String)
  /// The cohort has an unfinished export and the options ask for a new one.
  case unfinished(cohort: String, seq: Int, phase: String)
  case noOpenJob(cohort: String)
  case missingToken(String)
  /// A protocol failure; `resumable` says whether `export COHORT` continues the same server job.
  case bulk(BulkError, exportSeq: Int?, resumable: Bool, cohort: String)
  /// The server sent data that cannot be trusted (deterministic: resuming would fail again).
  case badData(String, exportSeq: Int, cohort: String)
  /// The local disk or file system failed (resumable once fixed).
  case localIO(String, exportSeq: Int?, cohort: String)
  case interrupted(exportSeq: Int, cohort: String)
  case failed(String)

  public var description: String {
    switch self {
    case .usage(let text), .missingToken(let text), .failed(let text):
      return text
    case .locked(let cohort, let holder):
      return "cohort \(cohort) is being exported by \(holder); wait for it to finish (or stop it) and try again"
    case .unfinished(let cohort, let seq, let phase):
      return
        "cohort \(cohort) has an unfinished export #\(seq) (\(phase)); `export \(cohort) --resume` continues it, `export \(cohort) --cancel` cancels it"
    case .noOpenJob(let cohort):
      return "cohort '\(cohort)' has no unfinished export to cancel"
    case .bulk(let error, let seq, let resumable, let cohort):
      var text = error.description
      if let seq, resumable {
        text += " — export #\(seq) is kept: `export \(cohort)` resumes it, `export \(cohort) --cancel` cancels it"
      }
      return text
    case .badData(let text, let seq, let cohort):
      return
        "export #\(seq) of \(cohort) failed: \(text); the server's data is unusable as sent — report it to the server's operators, or export again with other parameters"
    case .localIO(let text, let seq, let cohort):
      let resume = seq.map { " — export #\($0) is kept: free space or fix permissions, then `export \(cohort)` resumes it" } ?? ""
      return text + resume
    case .interrupted(let seq, let cohort):
      return "export #\(seq) interrupted; `export \(cohort)` resumes the same server job, `export \(cohort) --cancel` cancels it"
    }
  }
}

extension ExportError: CohortFailure {
  public var exitCode: Int32 {
    switch self {
    case .usage: return 64
    case .locked, .unfinished, .noOpenJob, .missingToken, .failed, .badData, .localIO: return 1
    case .bulk(let error, _, _, _): return error.exitCode
    case .interrupted: return 130
    }
  }
}

extension BulkError: CohortFailure {
  public var exitCode: Int32 {
    switch self {
    case .invalidParameter: return 64
    case .io, .invalidFile, .invalidManifest: return 1
    default: return 2
    }
  }
}

extension SMARTError: CohortFailure {
  public var exitCode: Int32 {
    switch self {
    case .discovery, .tokenRejected, .tokenResponse, .network: return 2
    default: return 1
    }
  }
}
