import CohortBasics
import Foundation
import Testing

@Suite struct BasicsTests {
  @Test("JSON string literals: quotes, backslashes and control characters escaped, Unicode kept")
  func jsonStrings() {
    #expect(JSONString.quote("plain") == #""plain""#)
    #expect(JSONString.quote("a\"b\\c\nd\te\u{1}") == #""a\"b\\c\nd\te\u0001""#)
    #expect(JSONString.quote("é ✓ 😀") == "\"é ✓ 😀\"")
    let round = try? JSONSerialization.jsonObject(with: Data(("[" + JSONString.quote("x\u{1F}\r\"y") + "]").utf8)) as? [String]
    #expect(round == ["x\u{1F}\r\"y"])
  }

  @Test("C41: FHIR instants with Z, offsets and fractions order by the moment they name")
  func instants() {
    #expect(FHIRInstant.isValid("2024-01-15T10:00:00Z") && FHIRInstant.isValid("2024-01-15T10:00:00.123+02:00"))
    #expect(!FHIRInstant.isValid("2024-01-15") && !FHIRInstant.isValid("2024-01-15T10:00:00") && !FHIRInstant.isValid("yesterday"))
    #expect(instantOrder("2024-01-15T10:00:00+02:00", "2024-01-15T09:00:00Z") == .orderedAscending)
    #expect(instantOrder("2024-01-15T10:00:00.000Z", "2024-01-15T10:00:00Z") == .orderedSame)
    #expect(parseInstant("2024-01-15T10:00:00.5Z")!.timeIntervalSince(parseInstant("2024-01-15T10:00:00Z")!) == 0.5)
  }

  @Test("did you mean: the closest name within the distance, case-insensitive, nil when nothing is close")
  func nearestNames() {
    #expect(nearest("sever", in: ["server", "cohort"]) == "server")
    #expect(nearest("OBSERVATON", in: ["Observation", "Patient"]) == "Observation")
    #expect(nearest("xyz", in: ["server", "cohort"]) == nil)
    #expect(nearest("Patients", in: ["Patient", "Practitioner"], maxDistance: 1) == "Patient")
    #expect(editDistance("kitten", "sitting") == 3)
  }

  @Test("timestamps without ICU: isoUTC writes what ISO8601DateFormatter writes, with and without milliseconds")
  func isoTimestamps() {
    let plain = ISO8601DateFormatter()
    plain.formatOptions = [.withInternetDateTime]
    let fractional = ISO8601DateFormatter()
    fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    var generator = SystemRandomNumberGenerator()
    // Whole milliseconds (the formatter's own rounding of sub-millisecond fractions is not part of the contract).
    var moments: [Double] = [0, -1, 86_399, 86_400, 951_782_400, 4_107_542_399, -2_208_988_800, 1_709_164_800.5]
    for _ in 0..<2_000 { moments.append(Double(Int64.random(in: -2_208_988_800_000...4_102_444_800_000, using: &generator)) / 1000) }
    for t in moments {
      let date = Date(timeIntervalSince1970: t)
      #expect(isoUTC(date) == plain.string(from: date), "\(t)")
      #expect(isoUTC(date, milliseconds: true) == fractional.string(from: date), "\(t)")
      // And back: FHIRInstant.parse (arithmetic, no Calendar) reads what was written, to the millisecond.
      let back = FHIRInstant.parse(isoUTC(date, milliseconds: true))?.timeIntervalSince1970
      #expect(back.map { abs($0 - t) < 0.0005 } == true, "\(t)")
      #expect(FHIRInstant.parse(fractional.string(from: date)) == fractional.date(from: fractional.string(from: date)))
    }
    #expect(FHIRInstant.parse("2024-01-15T10:00:00+02:00") == FHIRInstant.parse("2024-01-15T08:00:00Z"))
    #expect(FHIRInstant.parse("2024-01-15T08:00:00Z")?.timeIntervalSince1970 == 1_705_305_600)
    #expect(isoUTC(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00Z")
  }

  @Test("JSON string bodies: one decoder for every reader, strict or lenient about what it forgives")
  func unescaping() {
    func run(_ text: String, _ rules: JSONString.Unescaping) -> Result<(String, Int), JSONString.UnescapeError> {
      let bytes = Array(text.utf8)
      return bytes.withUnsafeBytes { raw in
        Result { () throws(JSONString.UnescapeError) in
          let (utf8, next) = try JSONString.unescape(raw, from: 1, rules)
          return (String(decoding: utf8, as: UTF8.self), next)
        }
      }
    }
    func decoded(_ text: String, _ rules: JSONString.Unescaping = .strict) -> String? {
      if case .success(let (s, _)) = run(text, rules) { return s }
      return nil
    }
    func failure(_ text: String, _ rules: JSONString.Unescaping) -> JSONString.UnescapeError? {
      if case .failure(let e) = run(text, rules) { return e }
      return nil
    }
    #expect(decoded(#""a\"b\\c\/d\b\f\n\r\t""#) == "a\"b\\c/d\u{8}\u{C}\n\r\t")
    #expect(decoded(#""caf\u00e9 \u00C9 \ud83d\ude00 é""#) == "café É 😀 é", "BMP, a surrogate pair, raw UTF-8")
    // The index after the closing quote, whatever follows.
    if case .success(let (_, next)) = run(#""x\ny", 1"#, .strict) { #expect(next == 6) } else { Issue.record("no success") }
    #expect(failure(#""a\qb""#, .lenient) == .invalidEscape)
    #expect(failure(#""a\u12G4""#, .lenient) == .invalidUnicodeEscape)
    #expect(failure(#""a\u12"#, .lenient) == .truncatedUnicodeEscape)
    #expect(failure(#""abc\n"#, .lenient) == .unterminated)
    // Raw control characters and lone surrogates: errors when strict, passed or U+FFFD when lenient.
    #expect(failure("\"a\u{1}b\\n\"", .strict) == .controlCharacter)
    #expect(decoded("\"a\u{1}b\\n\"", .lenient) == "a\u{1}b\n")
    #expect(failure(#""\ud83d x""#, .strict) == .loneSurrogate)
    #expect(failure(#""\ude00""#, .strict) == .loneSurrogate)
    #expect(failure(#""\ud83d\u0041""#, .strict) == .loneSurrogate)
    #expect(decoded(#""\ud83d x""#, .lenient) == "\u{FFFD} x")
    #expect(decoded(#""\ude00""#, .lenient) == "\u{FFFD}")
  }

  @Test("tuning knobs: an integer within its range, else the default")
  func environmentIntegers() {
    let name = "COHORT_BASICS_TEST_KNOB_\(getpid())"
    defer { unsetenv(name) }
    #expect(Environment.integer(name) == nil)
    #expect(Environment.integer(name, default: 7, in: 1...10) == 7)
    for (text, expected) in [("4", 4), (" 9 ", 9), ("11", 7), ("0", 7), ("x", 7), ("", 7)] {
      setenv(name, text, 1)
      #expect(Environment.integer(name, default: 7, in: 1...10) == expected, "\(text)")
    }
  }
}
