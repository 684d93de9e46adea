/// Helpers for FHIR `Reference.reference` strings.
public enum FHIRReference {
  /// The Patient id a reference points at, or nil when it does not name a Patient by id.
  ///
  /// - "Patient/123" → "123" (relative literal reference)
  /// - "Patient/123/_history/2" → "123" (version-specific)
  /// - "https://x/fhir/Patient/123" (also with "/_history/2") → "123" (absolute http(s) URL whose
  ///   path ends in Patient/id)
  /// - anything else → nil: other types ("Group/1"), "urn:uuid:…"/"urn:oid:…" (need a Bundle to
  ///   resolve), local "#contained" references, query strings or fragments, empty or malformed ids.
  ///
  /// The id must be a FHIR id: 1–64 characters of `A–Z a–z 0–9 - .`; the same holds for the
  /// version after `_history/`.
  public static func patientID(fromReference reference: String) -> String? {
    let bytes = Array(reference.utf8)
    // Split on '/' (empty segments kept so that "Patient//1" or a trailing '/' do not match).
    var segments: [ArraySlice<UInt8>] = []
    var start = 0
    for (k, c) in bytes.enumerated() where c == UInt8(ascii: "/") {
      segments.append(bytes[start..<k])
      start = k + 1
    }
    segments.append(bytes[start..<bytes.count])

    var end = segments.count
    if end >= 4, segments[end - 2].elementsEqual("_history".utf8), isFHIRId(segments[end - 1]) {
      end -= 2
    }
    guard end >= 2, segments[end - 2].elementsEqual("Patient".utf8), isFHIRId(segments[end - 1])
    else { return nil }
    if end > 2 {
      // Absolute: scheme "http:" or "https:" then "//host…" (segments "http:", "", host, …).
      let scheme = segments[0]
      guard scheme.elementsEqual("http:".utf8) || scheme.elementsEqual("https:".utf8),
        end >= 5, segments[1].isEmpty, !segments[2].isEmpty
      else { return nil }
    }
    return String(decoding: segments[end - 1], as: UTF8.self)
  }

  /// FHIR id grammar: [A-Za-z0-9\-\.]{1,64}.
  static func isFHIRId(_ s: ArraySlice<UInt8>) -> Bool {
    guard (1...64).contains(s.count) else { return false }
    return s.allSatisfy { c in
      (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D
        || c == 0x2E
    }
  }
}
