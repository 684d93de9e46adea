import CCohortSupport
import Foundation

/// Ctrl-C: cancels the running command (which leaves the store consistent) and returns to the
/// prompt; at the prompt it clears the line (see `cohort_getc`); with no command running in a
/// non-interactive run, it exits 130.
final class Interrupts: @unchecked Sendable {
  static let shared = Interrupts()
  private let lock = NSLock()
  private var cancelCurrent: (@Sendable () -> Void)?
  private var seen = 0
  var interactive = false

  func install() {
    cohort_install_sigint()
    let thread = Thread { [self] in
      while true {
        usleep(50_000)
        poll()
      }
    }
    thread.stackSize = 64 << 10
    thread.start()
  }

  func setCurrent(_ cancel: (@Sendable () -> Void)?) {
    lock.withLock { cancelCurrent = cancel }
  }

  private func poll() {
    let total = cohort_sigint_total()
    let cancel = lock.withLock { () -> (@Sendable () -> Void)?? in
      guard total != seen else { return .none }
      seen = total
      return .some(cancelCurrent)
    }
    guard case .some(let current) = cancel else { return }
    if let current {
      FDWriter(fd: 2).write("\n^C — stopping…\n")
      current()
    } else if !interactive {
      exit(130)
    }
  }
}
