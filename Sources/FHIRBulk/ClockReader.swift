// The injected clock: token lifetimes (C9), polling and retry waits (C26, C30–C32, C48) and download
// stall/duration limits are measured and slept on one `any Clock<Duration>`, `ContinuousClock()` by default.
// Tests pass a virtual clock (swift-clocks' `TestClock`) and advance it, so a lifetime passes in no real time.

/// Readings of an injected clock as durations since the reader was made: instants of an `any Clock<Duration>`
/// have no common type, durations do.
struct ClockReader: Sendable {
  let clock: any Clock<Duration>
  private let elapsed: @Sendable () -> Duration

  init(_ clock: any Clock<Duration>) {
    self.clock = clock
    self.elapsed = Self.reader(clock)
  }

  private static func reader<C: Clock<Duration>>(_ clock: C) -> @Sendable () -> Duration {
    let origin = clock.now
    return { origin.duration(to: clock.now) }
  }

  /// The clock's time now, as a duration since this reader was made.
  var now: Duration { elapsed() }

  /// Time on the clock from `start` (a reading of `now`) until now.
  func since(_ start: Duration) -> Duration { now - start }

  func sleep(for duration: Duration) async throws {
    try await clock.sleep(for: duration)
  }
}
