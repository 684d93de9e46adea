import Dispatch
import Foundation

/// Ctrl-C: cancels the running command (which leaves the store consistent) and returns to the
/// prompt; with no command running in a non-interactive run, exits 130.
final class Interrupts: @unchecked Sendable {
  static let shared = Interrupts()
  private let lock = NSLock()
  private var cancelCurrent: (@Sendable () -> Void)?
  private var source: (any DispatchSourceSignal)?
  private(set) var count = 0
  var interactive = false

  func install() {
    signal(SIGINT, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    source.setEventHandler { [weak self] in self?.fire() }
    source.resume()
    self.source = source
  }

  func setCurrent(_ cancel: (@Sendable () -> Void)?) {
    lock.withLock { cancelCurrent = cancel }
  }

  private func fire() {
    let cancel = lock.withLock { () -> (@Sendable () -> Void)? in
      count += 1
      return cancelCurrent
    }
    if let cancel {
      FileHandle.standardError.write("\n^C — stopping…\n".data(using: .utf8)!)
      cancel()
    } else if !interactive {
      exit(130)
    }
  }
}
