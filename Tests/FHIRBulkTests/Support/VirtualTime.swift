// Virtual time for tests: token lifetimes, polling waits and retry backoff run on swift-clocks' `TestClock`,
// which the test advances, so they take no real time and a loaded machine cannot stretch them.
import Clocks
import Testing

/// Waits until something sleeps on `clock` (or the task is cancelled). Only how often it looks is real time; with
/// `giveUpAfter`, a code path that never sleeps on the clock (a real-time sleep) is recorded as a failure instead
/// of hanging the test.
func untilAsleep(_ clock: TestClock<Duration>, giveUpAfter limit: Duration? = .seconds(60)) async {
  let started = ContinuousClock.now
  while !Task.isCancelled {
    do {
      try await clock.checkSuspension()  // throws when a sleep is pending
    } catch {
      return
    }
    if let limit, started.duration(to: .now) > limit {
      Issue.record("nothing slept on the test clock within \(limit)")
      return
    }
    try? await Task.sleep(for: .milliseconds(2))
  }
}

/// Runs `work`, advancing `clock` by `step` whenever something sleeps on it (and only then): polling waits pass
/// in virtual time while each HTTP exchange runs at its own pace, so a loaded machine changes nothing.
@discardableResult
func advancingWhileAsleep<T: Sendable>(
  _ clock: TestClock<Duration>, by step: Duration, _ work: @escaping @Sendable () async throws -> T
) async throws -> T {
  let task = Task { try await work() }
  let driver = Task {
    while true {
      await untilAsleep(clock, giveUpAfter: nil)  // HTTP exchanges in between may take long on a loaded machine
      if Task.isCancelled { return }
      await clock.advance(by: step)
    }
  }
  let result = await task.result
  driver.cancel()
  await driver.value
  return try result.get()
}
