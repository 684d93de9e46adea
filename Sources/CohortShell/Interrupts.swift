import CCohortSupport
import Foundation
import Synchronization

/// Ctrl-C: cancels the running command (which leaves the store consistent) and returns to the
/// prompt; at the prompt it clears the line (see `cohort_getc`); with no command running in a
/// non-interactive run, it exits 130.
final class Interrupts: Sendable {
  static let shared = Interrupts()
  private struct State {
    var cancelCurrent: (@Sendable () -> Void)?
    var seen = 0
    var interactive = false
  }
  private let state = Mutex(State())

  /// At the REPL's prompt Ctrl-C clears the line; elsewhere, with no command running, it exits 130.
  var interactive: Bool {
    get { state.withLock { $0.interactive } }
    set { state.withLock { $0.interactive = newValue } }
  }

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
    state.withLock { $0.cancelCurrent = cancel }
  }

  private func poll() {
    let total = cohort_sigint_total()
    let (cancel, interactive) = state.withLock { s -> ((@Sendable () -> Void)??, Bool) in
      guard total != s.seen else { return (.none, s.interactive) }
      s.seen = total
      return (.some(s.cancelCurrent), s.interactive)
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
