import Foundation
import Testing

@testable import FHIRBulk

/// Delay computation as pure functions: no test waits real seconds (C30–C32).
@Suite struct DelayTests {
  let policy = PollPolicy(jitter: 0)

  @Test func c30_deltaSecondsHonoured() throws {
    let d = try #require(RetryAfter.delay(retryAfter: "120"))
    #expect(d == .seconds(120))
    #expect(policy.nextDelay(retryAfter: d, attempt: 0) == .seconds(120))
  }

  @Test func c30_httpDateAgainstResponseDate() throws {
    let d = try #require(
      RetryAfter.delay(
        retryAfter: "Wed, 21 Oct 2015 07:28:30 GMT", date: "Wed, 21 Oct 2015 07:28:00 GMT"))
    #expect(d == .seconds(30))
  }

  @Test func c30_httpDateInThePastGivesTheMinimum() throws {
    let d = try #require(RetryAfter.delay(retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT", now: Date()))
    #expect(d == .zero)
    #expect(policy.nextDelay(retryAfter: d, attempt: 0) == .seconds(1))
  }

  @Test func c30_noHeaderBacksOffExponentially() {
    #expect(RetryAfter.delay(retryAfter: nil) == nil)
    #expect((0..<4).map { policy.nextDelay(retryAfter: nil, attempt: $0, unit: 0.5) } == [.seconds(2), .seconds(4), .seconds(8), .seconds(16)])
    #expect(policy.backoff(attempt: 20) == .seconds(300))
  }

  @Test func c30_jitterStaysWithin20Percent() {
    let p = PollPolicy()
    #expect(p.backoff(attempt: 1, unit: 0) == .seconds(3.2))
    #expect(p.backoff(attempt: 1, unit: 1) == .seconds(4.8))
  }

  @Test func c31_hugeValuesAreClamped() throws {
    let d = try #require(RetryAfter.delay(retryAfter: "1767225600"))
    #expect(policy.clamp(d) == .seconds(900))
    let ms = try #require(RetryAfter.delay(retryAfter: "1767225600000"))
    #expect(policy.clamp(ms) == .seconds(900))
    #expect(policy.clamp(.zero) == .seconds(1))
  }

  @Test func c31_netsmartXRetryAfterUsedWhenAlone() throws {
    #expect(RetryAfter.delay(retryAfter: nil, xRetryAfter: "120") == .seconds(120))
    #expect(RetryAfter.delay(retryAfter: "5", xRetryAfter: "120") == .seconds(5))
    #expect(RetryAfter.delay(retryAfter: "soon", xRetryAfter: nil) == nil)
  }
}
