import Foundation
import Testing

@testable import NDJSON

/// Deterministic RNG (SplitMix64) so that fuzz failures reproduce.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Feeds `bytes` to a fresh scanner in chunks of `chunk` bytes and returns every line.
func scanAll(_ bytes: [UInt8], chunk: Int = Int.max, maxLineLength: Int = 64 << 20) throws
  -> [ScannedLine]
{
  var scanner = NDJSONLineScanner(maxLineLength: maxLineLength)
  var lines: [ScannedLine] = []
  try bytes.withUnsafeBytes { all in
    var p = 0
    while p < all.count {
      let n = min(chunk, all.count - p)
      try scanner.feed(UnsafeRawBufferPointer(rebasing: all[p..<(p + n)])) { lines.append($0) }
      p += n
    }
  }
  try scanner.finish { lines.append($0) }
  #expect(scanner.linesSeen == lines.count)
  return lines
}

func scanAll(_ text: String, chunk: Int = Int.max) throws -> [ScannedLine] {
  try scanAll(Array(text.utf8), chunk: chunk)
}

/// The single line of `text`, or the error it raised.
func scanOne(_ text: String) -> Result<ScannedLine, NDJSONError> {
  do {
    let lines = try scanAll(text)
    guard lines.count == 1, let line = lines.first else {
      return .failure(.invalidJSON(line: 0, reason: "expected one line, got \(lines.count)"))
    }
    return .success(line)
  } catch let e as NDJSONError {
    return .failure(e)
  } catch {
    return .failure(.invalidJSON(line: 0, reason: "\(error)"))
  }
}

/// A temporary directory removed by `cleanup()`.
struct TempDir {
  let url: URL
  init() throws {
    url = FileManager.default.temporaryDirectory.appendingPathComponent(
      "ndjson-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }
  func path(_ name: String) -> String { url.appendingPathComponent(name).path }
  func cleanup() { try? FileManager.default.removeItem(at: url) }
}
