// Delay computation for polling and retries (C26, C30–C32, C48), as pure functions.
import Foundation

public struct PollPolicy: Sendable {
  /// Retry-After is clamped to [minDelay, maxDelay] (C31).
  public var minDelay: Duration
  public var maxDelay: Duration
  /// Backoff without Retry-After: initial ×factor, capped, ± jitter (C30).
  public var initialBackoff: Duration
  public var backoffFactor: Double
  public var maxBackoff: Duration
  /// 0.2 = ±20 %. Tests use 0.
  public var jitter: Double
  /// Transient errors (C34) tolerated in a row before giving up.
  public var maxTransientRetries: Int
  /// Give up polling after this long (nil: never).
  public var jobTimeout: Duration?
  /// A manifest `transactionTime` later than now by more than this is "in the future" (a warning;
  /// the caller must not store it as a watermark).
  public var clockSkew: Duration

  public init(
    minDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(15 * 60),
    initialBackoff: Duration = .seconds(2), backoffFactor: Double = 2,
    maxBackoff: Duration = .seconds(5 * 60), jitter: Double = 0.2, maxTransientRetries: Int = 5,
    jobTimeout: Duration? = .seconds(24 * 3600), clockSkew: Duration = .seconds(60)
  ) {
    self.minDelay = minDelay
    self.maxDelay = maxDelay
    self.initialBackoff = initialBackoff
    self.backoffFactor = backoffFactor
    self.maxBackoff = maxBackoff
    self.jitter = jitter
    self.maxTransientRetries = maxTransientRetries
    self.jobTimeout = jobTimeout
    self.clockSkew = clockSkew
  }

  /// A policy for tests: tiny clamps, no jitter.
  public static func fast(maxTransientRetries: Int = 3) -> PollPolicy {
    PollPolicy(
      minDelay: .milliseconds(5), maxDelay: .milliseconds(50), initialBackoff: .milliseconds(5),
      backoffFactor: 2, maxBackoff: .milliseconds(20), jitter: 0,
      maxTransientRetries: maxTransientRetries, jobTimeout: .seconds(30))
  }

  public func clamp(_ d: Duration) -> Duration { min(max(d, minDelay), maxDelay) }

  /// The n-th (0-based) backoff delay without jitter: initial × factor^n, capped.
  public func backoff(attempt n: Int) -> Duration {
    let initial = Self.seconds(initialBackoff)
    let value = initial * pow(backoffFactor, Double(max(0, min(n, 60))))
    return min(.seconds(value), maxBackoff)
  }

  /// The backoff with jitter applied; `unit` in [0, 1) comes from the random source.
  public func backoff(attempt n: Int, unit: Double) -> Duration {
    let base = Self.seconds(backoff(attempt: n))
    let factor = 1 + jitter * (2 * unit - 1)
    return .seconds(max(0, base * factor))
  }

  /// The delay before the next poll: Retry-After (clamped) when the server sent one, else backoff.
  public func nextDelay(retryAfter: Duration?, attempt: Int, unit: Double = Double.random(in: 0..<1)) -> Duration {
    if let retryAfter { return clamp(retryAfter) }
    return backoff(attempt: attempt, unit: unit)
  }

  static func seconds(_ d: Duration) -> Double {
    let c = d.components
    return Double(c.seconds) + Double(c.attoseconds) / 1e18
  }
}

public enum RetryAfter {
  /// The server's requested delay, unclamped: `Retry-After` as delta-seconds or an HTTP-date
  /// (against the response `Date`, else `now`), or Netsmart's `X-RetryAfter` (C30, C31).
  /// A date in the past gives zero (the caller clamps it to the minimum).
  public static func delay(retryAfter: String?, xRetryAfter: String? = nil, date: String? = nil, now: Date = Date())
    -> Duration?
  {
    if let v = retryAfter?.trimmingCharacters(in: .whitespaces), !v.isEmpty {
      if let d = parse(v, date: date, now: now) { return d }
    }
    if let v = xRetryAfter?.trimmingCharacters(in: .whitespaces), !v.isEmpty {
      if let d = parse(v, date: date, now: now) { return d }
    }
    return nil
  }

  static func parse(_ v: String, date: String?, now: Date) -> Duration? {
    if v.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
      // Huge values (epochs in s or ms, as REF sends) saturate; the caller clamps them.
      guard let n = Int64(v.prefix(12)) else { return nil }
      return .seconds(n)
    }
    guard let target = httpDate(v) else { return nil }
    let reference = date.flatMap(httpDate) ?? now
    let delta = target.timeIntervalSince(reference)
    return delta <= 0 ? .zero : .milliseconds(Int64(delta * 1000))
  }

  /// IMF-fixdate, RFC 850 and asctime forms.
  public static func httpDate(_ s: String) -> Date? {
    let formats = ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"]
    for f in formats {
      let fmt = DateFormatter()
      fmt.locale = Locale(identifier: "en_US_POSIX")
      fmt.timeZone = TimeZone(secondsFromGMT: 0)
      fmt.dateFormat = f
      if let d = fmt.date(from: s) { return d }
    }
    return nil
  }
}

/// One status request's outcome (C29, C33, C35).
public enum PollResult: Sendable {
  /// 202: still running. `retryAfter` is the server's (unclamped) request, if any.
  /// `partial` is a partial manifest in the 202 body (C64), if any.
  case inProgress(progress: String?, retryAfter: Duration?, partial: Manifest?)
  /// 429 on the status URL: slow down (C32).
  case throttled(retryAfter: Duration?)
  /// 200: the manifest (first page only; `waitForManifest` follows `next`).
  case complete(Manifest)
  /// 404/410: the job was deleted or expired (C35).
  case gone
}
