import FHIRBulk
import Foundation

/// Text from servers and files made safe for a terminal and for one-line messages: control characters
/// (ESC, C0, C1, DEL) are shown escaped, never interpreted.
public enum Sanitize {
  /// One line: newlines and tabs become spaces, other control characters are escaped (FHIRBulk's rule).
  public static func line(_ text: String) -> String {
    TerminalText.escape(text.replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " "))
  }

  /// Several lines: newlines and tabs stay, other control characters are escaped.
  public static func text(_ text: String) -> String {
    guard TerminalText.needsEscaping(text.replacingOccurrences(of: "\n", with: "")) else { return text }
    return text.split(separator: "\n", omittingEmptySubsequences: false).map { TerminalText.escape(String($0)) }
      .joined(separator: "\n")
  }
}
