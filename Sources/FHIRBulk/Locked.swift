import Synchronization

/// A value behind the standard library's `Mutex`, for the few pieces of mutable state a `Sendable` class needs.
/// A class (not the `~Copyable` `Mutex` itself) so it can be captured by `@Sendable` closures and shared.
final class Locked<Value: Sendable>: Sendable {
  private let mutex: Mutex<Value>
  init(_ value: Value) { mutex = Mutex(value) }
  func withLock<R>(_ body: (inout sending Value) throws -> sending R) rethrows -> sending R {
    try mutex.withLock(body)
  }
  var current: Value { withLock { $0 } }
}
