import CZlib
import Foundation
import Testing

@testable import NDJSON

/// gzip-compresses `bytes` with CZlib (windowBits 31 = gzip header), one member.
func gzip(_ bytes: [UInt8], level: Int32 = 6) throws -> [UInt8] {
  var strm = z_stream()
  guard cohort_deflateInit2(&strm, level, 31) == Z_OK else { throw NDJSONError.gzip("deflateInit2") }
  defer { deflateEnd(&strm) }
  var out = [UInt8](repeating: 0, count: Int(deflateBound(&strm, UInt(bytes.count))) + 64)
  var input = bytes
  let rc = input.withUnsafeMutableBufferPointer { inp in
    out.withUnsafeMutableBufferPointer { o in
      strm.next_in = inp.baseAddress
      strm.avail_in = UInt32(inp.count)
      strm.next_out = o.baseAddress
      strm.avail_out = UInt32(o.count)
      return deflate(&strm, Z_FINISH)
    }
  }
  guard rc == Z_STREAM_END else { throw NDJSONError.gzip("deflate \(rc)") }
  return Array(out[0..<Int(strm.total_out)])
}

func inflateAll(_ gz: [UInt8], chunk: Int) throws -> [UInt8] {
  var inflater = GzipInflater()
  var out: [UInt8] = []
  try gz.withUnsafeBytes { all in
    var p = 0
    while p < all.count {
      let n = min(chunk, all.count - p)
      try inflater.inflate(UnsafeRawBufferPointer(rebasing: all[p..<(p + n)])) { out += $0 }
      p += n
    }
  }
  try inflater.finish()
  return out
}

func sampleNDJSON(lines: Int, seed: UInt64) -> [UInt8] {
  var f = Fuzzer(rng: SplitMix64(seed: seed))
  var out: [UInt8] = []
  for _ in 0..<lines {
    out += Array(f.serialize(f.resource()).utf8)
    out.append(0x0A)
  }
  return out
}

// C45: gzip bodies decode identically; concatenated members are one stream.
@Suite struct GzipTests {
  @Test(arguments: [1, 7, 4096, 1 << 20])
  func roundTripInChunks(chunk: Int) throws {
    let plain = sampleNDJSON(lines: 300, seed: 11)
    let gz = try gzip(plain)
    #expect(gz[0] == 0x1F && gz[1] == 0x8B)
    #expect(try inflateAll(gz, chunk: chunk) == plain)
  }

  @Test func largeOutputPerInputChunk() throws {
    // Highly compressible: one small input chunk expands far beyond the 1 MB output buffer.
    let plain = [UInt8](repeating: UInt8(ascii: "x"), count: 5 << 20)
    let gz = try gzip(plain, level: 9)
    #expect(gz.count < 64 << 10)
    #expect(try inflateAll(gz, chunk: gz.count) == plain)
  }

  @Test func concatenatedMembersAndZeroPadding() throws {
    let a = sampleNDJSON(lines: 50, seed: 1)
    let b = sampleNDJSON(lines: 70, seed: 2)
    let c = Array("{\"resourceType\":\"Patient\",\"id\":\"last\"}".utf8)  // no final newline
    let gz = try gzip(a) + gzip(b) + gzip([]) + gzip(c)
    for chunk in [1, 3, 1000, gz.count] {
      #expect(try inflateAll(gz, chunk: chunk) == a + b + c)
    }
    #expect(try inflateAll(gz + [0, 0, 0, 0], chunk: 5) == a + b + c)
    #expect(throws: NDJSONError.gzip("trailing garbage after gzip data")) {
      _ = try inflateAll(gz + [0, 0, 7], chunk: 100)
    }
  }

  @Test func truncatedAndCorruptStreamsError() throws {
    let plain = sampleNDJSON(lines: 100, seed: 3)
    let gz = try gzip(plain)
    for cut in [1, 10, gz.count / 2, gz.count - 1] {
      #expect(throws: NDJSONError.self) { _ = try inflateAll(Array(gz[0..<cut]), chunk: 4096) }
    }
    var corrupt = gz
    corrupt[gz.count / 2] ^= 0xFF
    corrupt[gz.count / 2 + 1] ^= 0xFF
    #expect(throws: NDJSONError.self) { _ = try inflateAll(corrupt, chunk: 4096) }
    var badCRC = gz
    badCRC[gz.count - 6] ^= 0x01  // CRC32 in the trailer
    #expect(throws: NDJSONError.self) { _ = try inflateAll(badCRC, chunk: 4096) }
  }

  /// Corrupt gzip input errors or decodes, never crashes or hangs.
  @Test func randomCorruptionNeverCrashes() throws {
    var rng = SplitMix64(seed: 77)
    let gz = try gzip(sampleNDJSON(lines: 40, seed: 9))
    var errors = 0
    for _ in 0..<300 {
      var bad = gz
      for _ in 0..<(1 + Int.random(in: 0..<4, using: &rng)) {
        bad[Int.random(in: 0..<bad.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
      }
      do { _ = try inflateAll(bad, chunk: 1 + Int.random(in: 0..<5000, using: &rng)) } catch {
        errors += 1
      }
    }
    #expect(errors > 250)
  }

  @Test func zlibFormatIsAutodetected() throws {
    let plain = sampleNDJSON(lines: 20, seed: 4)
    var strm = z_stream()
    #expect(cohort_deflateInit2(&strm, 6, 15) == Z_OK)
    var out = [UInt8](repeating: 0, count: plain.count + 1024)
    var input = plain
    _ = input.withUnsafeMutableBufferPointer { i in
      out.withUnsafeMutableBufferPointer { o in
        strm.next_in = i.baseAddress
        strm.avail_in = UInt32(i.count)
        strm.next_out = o.baseAddress
        strm.avail_out = UInt32(o.count)
        return deflate(&strm, Z_FINISH)
      }
    }
    let z = Array(out[0..<Int(strm.total_out)])
    deflateEnd(&strm)
    #expect(try inflateAll(z, chunk: 100) == plain)
  }
}

@Suite struct NDJSONFileTests {
  @Test func plainAndGzipFilesScanIdentically() throws {
    let dir = try TempDir()
    defer { dir.cleanup() }
    // Larger than one 8 MB read chunk so lines straddle read boundaries.
    var plain: [UInt8] = []
    var f = Fuzzer(rng: SplitMix64(seed: 21))
    var n = 0
    while plain.count < 9 << 20 {
      var line = Array(f.serialize(f.resource()).utf8)
      if n % 97 == 0 { line = Array(#"{"resourceType":"Patient","id":"p\#(n)"}"#.utf8) }
      plain += line
      plain.append(0x0A)
      n += 1
    }
    let plainPath = dir.path("Observation.ndjson")
    let gzPath = dir.path("Observation.ndjson.gz")
    try Data(plain).write(to: URL(fileURLWithPath: plainPath))
    // Two members, split in the middle of a line.
    let mid = plain.count / 2 + 3
    try Data(try gzip(Array(plain[0..<mid])) + gzip(Array(plain[mid...]))).write(
      to: URL(fileURLWithPath: gzPath))

    var a: [ScannedLine] = []
    try NDJSONFile.scan(path: plainPath) { a.append($0) }
    var b: [ScannedLine] = []
    try NDJSONFile.scan(path: gzPath) { b.append($0) }
    #expect(a.count == n)
    #expect(a == b)
    #expect(try scanAll(plain) == a)

    let counts = try NDJSONFile.countByType(path: gzPath)
    var expected: [String: Int] = [:]
    for l in a { expected[l.resourceType ?? "", default: 0] += 1 }
    #expect(counts == expected)
    #expect(counts["Patient"] == (n + 96) / 97)

    for l in [a[0], a[a.count / 2], a[a.count - 1]] {
      let want = Data(plain[Int(l.offset)..<(Int(l.offset) + l.length)])
      #expect(try NDJSONFile.readLine(path: plainPath, offset: l.offset, length: l.length) == want)
      #expect(try NDJSONFile.readLine(path: gzPath, offset: l.offset, length: l.length) == want)
    }
  }

  @Test func missingFileAndBadRange() throws {
    #expect(throws: NDJSONError.io(path: "/nonexistent/x.ndjson", errno: ENOENT)) {
      try NDJSONFile.scan(path: "/nonexistent/x.ndjson") { _ in }
    }
    let dir = try TempDir()
    defer { dir.cleanup() }
    let p = dir.path("a.ndjson")
    try Data("{\"id\":\"a\"}".utf8).write(to: URL(fileURLWithPath: p))
    #expect(throws: NDJSONError.self) { _ = try NDJSONFile.readLine(path: p, offset: 5, length: 100) }
    var lines: [ScannedLine] = []
    try NDJSONFile.scan(path: p) { lines.append($0) }
    #expect(lines.map(\.id) == ["a"])
  }

  @Test func emptyAndTruncatedGzipFiles() throws {
    let dir = try TempDir()
    defer { dir.cleanup() }
    let empty = dir.path("empty.ndjson")
    #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
    #expect(try NDJSONFile.countByType(path: empty) == [:])
    let gz = try gzip(sampleNDJSON(lines: 100, seed: 8))
    let cut = dir.path("cut.ndjson.gz")
    try Data(gz[0..<(gz.count - 20)]).write(to: URL(fileURLWithPath: cut))
    #expect(throws: NDJSONError.self) { _ = try NDJSONFile.countByType(path: cut) }
  }
}
