import Foundation

/// Tuning knobs read from the environment (each one is listed in the man page's ENVIRONMENT section).
public enum Environment {
  /// `name`'s value when it is set to an integer; nil otherwise.
  public static func integer(_ name: String) -> Int? {
    ProcessInfo.processInfo.environment[name].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
  }

  /// `name`'s value when it is an integer within `range`; `value` otherwise (unset, not a number, out of range).
  public static func integer(_ name: String, default value: Int, in range: ClosedRange<Int>) -> Int {
    guard let n = integer(name), range.contains(n) else { return value }
    return n
  }
}
