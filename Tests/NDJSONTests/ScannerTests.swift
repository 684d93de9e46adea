import Foundation
import Testing

@testable import NDJSON

@Suite struct ScannerFieldTests {
  @Test func simpleResource() throws {
    let text =
      #"{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2024-01-02T03:04:05Z"},"name":[{"family":"Doe"}]}"#
    let line = try scanOne(text).get()
    #expect(line.resourceType == "Patient")
    #expect(line.id == "p1")
    #expect(line.versionId == "3")
    #expect(line.lastUpdated == "2024-01-02T03:04:05Z")
    #expect(line.lineNumber == 1)
    #expect(line.offset == 0)
    #expect(line.length == text.utf8.count)
    // contentHash = first 128 bits of SHA-256 of the line bytes.
    let expected = Array(text.utf8).withUnsafeBytes { contentHashHex($0) }
    #expect(line.contentHash == expected)
    #expect(line.contentHash.count == 32)
    // Known vector: SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    #expect(Array("abc".utf8).withUnsafeBytes { contentHashHex($0) } == "ba7816bf8f01cfea414140de5dae2223")
  }

  @Test func keysInAnyOrderAndMetaFirst() throws {
    let line = try scanOne(
      #"{"meta":{"lastUpdated":"L","versionId":"V"},"status":"final","id":"o1","resourceType":"Observation"}"#
    ).get()
    #expect(line.resourceType == "Observation")
    #expect(line.id == "o1")
    #expect(line.versionId == "V")
    #expect(line.lastUpdated == "L")
  }

  @Test func nestedIdsAndTypesAreIgnored() throws {
    let text = #"""
      {"contained":[{"resourceType":"Practitioner","id":"nested","meta":{"versionId":"9","lastUpdated":"X"}}],"extension":[{"id":"ext","url":"u"}],"code":{"id":"c","coding":[{"id":"d"}]},"meta":{"tag":[{"id":"tagid","versionId":"no","lastUpdated":"no"}],"source":{"lastUpdated":"deep"}},"resourceType":"Observation","id":"top"}
      """#
    let line = try scanOne(text).get()
    #expect(line.resourceType == "Observation")
    #expect(line.id == "top")
    #expect(line.versionId == nil)
    #expect(line.lastUpdated == nil)
  }

  @Test func idAfterHugeNestedArray() throws {
    var big = "[" + (0..<20_000).map { #"{"id":"n\#($0)","v":[1,2,{"x":"}]\"{"}]}"# }.joined(separator: ",")
    big += "]"
    let text = #"{"resourceType":"Bundle","entry":\#(big),"id":"after"}"#
    let line = try scanOne(text).get()
    #expect(line.resourceType == "Bundle")
    #expect(line.id == "after")
  }

  @Test func escapesInValuesAndKeys() throws {
    let text =
      #"{"resource\u0054ype":"Pa\"ti\\ent","\u0069d":"a\/b\u00e9\ud83d\ude00\n","me\u0074a":{"version\u0049d":"\u0031","lastUpdated":"t\\"}}"#
    let line = try scanOne(text).get()
    #expect(line.resourceType == "Pa\"ti\\ent")
    #expect(line.id == "a/bé😀\n")
    #expect(line.versionId == "1")
    #expect(line.lastUpdated == "t\\")
  }

  @Test func stringsWithBracesQuotesAndBackslashes() throws {
    let text =
      #"{"text":{"div":"<div>{ \"id\": \"fake\" } [ \\\\\" ]}</div>\\"},"note":"\\","id":"real\\\\","resourceType":"Condition"}"#
    let line = try scanOne(text).get()
    #expect(line.id == #"real\\"#)
    #expect(line.resourceType == "Condition")
  }

  @Test func unicodeAndWhitespace() throws {
    let text = " \t{ \"resourceType\" :\t\"Patient\" ,\r \"name\" : [ { \"text\" : \"José 日本 😀\" } ] , \"id\" : \"ü-1\" , \"meta\" : { \"versionId\" : \"2\" } }  \t"
    let line = try scanOne(text).get()
    #expect(line.resourceType == "Patient")
    #expect(line.id == "ü-1")
    #expect(line.versionId == "2")
  }

  @Test func nonStringFieldsAreNil() throws {
    let line = try scanOne(#"{"resourceType":7,"id":{"id":"x"},"meta":[{"versionId":"1"}]}"#).get()
    #expect(line.resourceType == nil)
    #expect(line.id == nil)
    #expect(line.versionId == nil)
  }

  @Test func literalsAndNumbers() throws {
    let line = try scanOne(
      #"{"a":true,"b":false,"c":null,"d":-0.5e+10,"e":[0,1.25,3E2,-7],"id":"x"}"#
    ).get()
    #expect(line.id == "x")
  }
}

@Suite struct ScannerStreamTests {
  // C44: blank lines are skipped, a missing final newline is accepted, CRLF is handled.
  @Test func blankLinesCRLFAndNoFinalNewline() throws {
    let text = "\n{\"id\":\"a\"}\r\n   \n\t\r\n{\"id\":\"b\"}\n\n{\"id\":\"c\"}"
    let lines = try scanAll(text)
    #expect(lines.map(\.id) == ["a", "b", "c"])
    #expect(lines.map(\.lineNumber) == [2, 5, 7])
    let bytes = Array(text.utf8)
    for l in lines {
      let slice = Array(bytes[Int(l.offset)..<(Int(l.offset) + l.length)])
      #expect(slice.first == UInt8(ascii: "{") && slice.last == UInt8(ascii: "}"))
    }
    #expect(lines[0].offset == 1 && lines[0].length == 10)
  }

  @Test func byteOrderMarkAtStart() throws {
    let lines = try scanAll([0xEF, 0xBB, 0xBF] + Array("{\"id\":\"a\"}\n".utf8))
    #expect(lines.count == 1)
    #expect(lines[0].offset == 3)
    #expect(lines[0].id == "a")
  }

  @Test(arguments: [
    "[1]", "\"x\"", "42", "null", "true", "x",
  ])
  func rejectsNonObjects(_ text: String) {
    #expect(scanOne(text) == .failure(.notAnObject(line: 1)))
  }

  @Test(arguments: [
    "{\"a\":", "{", "{\"a\"", "{\"a\":1", "{\"a\":\"x}", "{\"a\":[1,2}", "{\"a\":{\"b\":1}",
    "{\"a\":1}}", "{\"a\":1} x", "{\"a\" 1}", "{\"a\":1,}", "{,}", "{\"a\":[1,]}", "{\"a\":1 2}",
    "{\"a\":tru}", "{\"a\":nulll}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}", "{1:2}", "{\"a\"::1}",
    "{\"a\":1]", "{\"a\":[}]}", "{\"a\":\"\\\"}", "{\"a\":{}}{}", "{\"id\":\"\\q\"}",
    "{\"id\":\"\\ud800\"}", "{\"a\":[[[[[[[[[[",
  ])
  func rejectsInvalidJSON(_ text: String) {
    switch scanOne(text) {
    case .failure(.invalidJSON(line: 1, _)): break
    case let other: Issue.record("\(text) gave \(other)")
    }
  }

  @Test func errorCarriesPhysicalLineNumber() {
    #expect(throws: NDJSONError.notAnObject(line: 4)) {
      _ = try scanAll("{\"id\":\"a\"}\n\n{\"id\":\"b\"}\n[1]\n{\"id\":\"c\"}\n")
    }
  }

  @Test func deepNestingIsRejectedNotCrashing() {
    let deep = "{\"a\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
    switch scanOne(deep) {
    case .failure(.invalidJSON(line: 1, let reason)): #expect(reason.contains("nesting"))
    case let other: Issue.record("got \(other)")
    }
    let ok = "{\"a\":" + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}"
    #expect((try? scanOne(ok).get()) != nil)
  }

  // C44: cap the line length — a 20 MB line is an error, also when it arrives in small chunks.
  @Test(arguments: [1 << 20, 4096, 7])
  func lineTooLong(chunk: Int) {
    let limit = 1 << 20
    var big = Array("{\"id\":\"a\"}\n{\"x\":\"".utf8)
    big += [UInt8](repeating: UInt8(ascii: "y"), count: chunk == 7 ? limit + 10 : 20 << 20)
    big += Array("\"}\n".utf8)
    var seen: [ScannedLine] = []
    var scanner = NDJSONLineScanner(maxLineLength: limit)
    #expect(throws: NDJSONError.lineTooLong(line: 2, limit: limit)) {
      try big.withUnsafeBytes { all in
        var p = 0
        while p < all.count {
          let n = min(chunk, all.count - p)
          try scanner.feed(UnsafeRawBufferPointer(rebasing: all[p..<(p + n)])) { seen.append($0) }
          p += n
        }
        try scanner.finish { seen.append($0) }
      }
    }
    #expect(seen.count == 1)
  }

  @Test func lineExactlyAtLimitPasses() throws {
    let text = "{\"x\":\"" + String(repeating: "y", count: 100) + "\"}"
    let n = text.utf8.count
    for chunk in [1, 3, n, 4096] {
      let ok = try scanAll(Array((text + "\r\n").utf8), chunk: chunk, maxLineLength: n)
      #expect(ok.count == 1 && ok[0].length == n)
    }
    #expect(throws: NDJSONError.lineTooLong(line: 1, limit: n - 1)) {
      _ = try scanAll(Array(text.utf8), maxLineLength: n - 1)
    }
  }

  @Test func onLineErrorsPropagate() {
    struct Stop: Error {}
    #expect(throws: Stop.self) {
      var s = NDJSONLineScanner()
      try Array("{}\n".utf8).withUnsafeBytes { try s.feed($0) { _ in throw Stop() } }
    }
  }

  @Test func hashCanBeDisabled() throws {
    var s = NDJSONLineScanner(computeHash: false)
    var got: [ScannedLine] = []
    try Array("{\"id\":\"a\"}".utf8).withUnsafeBytes { try s.feed($0) { got.append($0) } }
    try s.finish { got.append($0) }
    #expect(got.count == 1 && got[0].contentHash == "" && got[0].id == "a")
  }
}
