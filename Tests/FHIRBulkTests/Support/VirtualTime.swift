// Virtual time for tests: token lifetimes, polling waits and retry backoff run on swift-clocks' `TestClock`,
// which the test advances, so they take no real time and a loaded machine cannot stretch them.
import Clocks

/// Waits until something sleeps on `clock` (or the task is cancelled). There is no deadline: only how often it
/// looks is real time.
func untilAsleep(_ clock: TestClock<Duration>) async {
  while !Task.isCancelled {
    do {
      try await clock.checkSuspension()  // throws when a sleep is pending
    } catch {
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
      await untilAsleep(clock)
      if Task.isCancelled { return }
      await clock.advance(by: step)
    }
  }
  let result = await task.result
  driver.cancel()
  await driver.value
  return try result.get()
}
