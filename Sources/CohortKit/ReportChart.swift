/// Compact text charts for a terminal (`history --chart`, `summary --chart`): sparklines and bars drawn with
/// Unicode block characters.
public enum TextChart {
  static let levels: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
  static let eighths: [Character] = ["▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"]

  /// One character per value, scaled between the smallest and the largest value (a flat series is drawn at
  /// mid height; nil — no value — is a space).
  public static func sparkline(_ values: [Int?]) -> String {
    let present = values.compactMap { $0 }
    guard let low = present.min(), let high = present.max() else { return String(repeating: " ", count: values.count) }
    return String(
      values.map { value -> Character in
        guard let value else { return " " }
        if high == low { return levels[3] }
        let index = Int((Double(value - low) / Double(high - low) * Double(levels.count - 1)).rounded())
        return levels[min(max(index, 0), levels.count - 1)]
      })
  }

  /// A horizontal bar of `value` on a scale where `maximum` fills `width` cells (eighths of a cell resolution;
  /// a value above zero always shows at least a sliver).
  public static func bar(_ value: Int, maximum: Int, width: Int) -> String {
    guard maximum > 0, value > 0, width > 0 else { return "" }
    let eighthsTotal = max(1, Int((Double(value) / Double(maximum) * Double(width * 8)).rounded()))
    let full = min(eighthsTotal / 8, width)
    let rest = full == width ? 0 : eighthsTotal % 8
    return String(repeating: "█", count: full) + (rest > 0 ? String(eighths[rest - 1]) : "")
  }
}
