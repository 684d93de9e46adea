#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import Foundation

/// Whole-file NDJSON operations. Plain or gzip is decided by the magic bytes (1f 8b), not the name.
/// Files are read with read(2) in 1 MB chunks into one reused buffer: memory stays constant
/// (plus the longest line).
public enum NDJSONFile {
  public static let chunkSize = 1 << 20

  /// Scans every non-blank line (offsets refer to the decompressed stream for gzip files).
  public static func scan(path: String, _ onLine: (ScannedLine) throws -> Void) throws {
    try scan(path: path, computeHash: true, onLine)
  }

  public static func scan(
    path: String, computeHash: Bool, fields: NDJSONFields = .all, maxLineLength: Int = 64 << 20,
    _ onLine: (ScannedLine) throws -> Void
  ) throws {
    var scanner = NDJSONLineScanner(
      maxLineLength: maxLineLength, computeHash: computeHash, fields: fields)
    try readChunks(path: path) { chunk in try scanner.feed(chunk, onLine) }
    try scanner.finish(onLine)
  }

  /// Count of lines per top-level resourceType. Lines without a string resourceType count under "".
  public static func countByType(path: String) throws -> [String: Int] {
    var counts: [String: Int] = [:]
    try scan(path: path, computeHash: false, fields: .resourceType) { line in
      counts[line.resourceType ?? "", default: 0] += 1
    }
    return counts
  }

  /// The bytes of one line, as located by `ScannedLine.offset/length` (for `show Type/id`).
  /// For gzip files the offset is in the decompressed stream (the file is inflated up to it).
  public static func readLine(path: String, offset: Int64, length: Int) throws -> Data {
    guard offset >= 0, length >= 0 else { throw NDJSONError.io(path: path, errno: EINVAL) }
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw NDJSONError.io(path: path, errno: errno) }
    defer { close(fd) }
    var magic: (UInt8, UInt8) = (0, 0)
    let m = pread(fd, &magic, 2, 0)
    if m == 2 && magic.0 == 0x1F && magic.1 == 0x8B {
      return try readGzipRange(path: path, offset: offset, length: length)
    }
    var data = Data(count: length)
    var got = 0
    try data.withUnsafeMutableBytes { (buf: UnsafeMutableRawBufferPointer) in
      guard let base = buf.baseAddress else { return }
      while got < length {
        let r = pread(fd, base + got, length - got, off_t(offset) + off_t(got))
        if r < 0 {
          if errno == EINTR { continue }
          throw NDJSONError.io(path: path, errno: errno)
        }
        if r == 0 { break }
        got += r
      }
    }
    // The file is shorter than the index says: it changed since it was scanned.
    guard got == length else { throw NDJSONError.io(path: path, errno: EINVAL) }
    return data
  }

  private static func readGzipRange(path: String, offset: Int64, length: Int) throws -> Data {
    var data = Data()
    data.reserveCapacity(length)
    var inflater = GzipInflater()
    var pos: Int64 = 0
    let end = offset + Int64(length)
    struct Done: Error {}
    do {
      try readRaw(path: path) { chunk in
        try inflater.inflate(chunk) { out in
          let outEnd = pos + Int64(out.count)
          defer { pos = outEnd }
          if outEnd <= offset { return }
          let from = Int(max(offset, pos) - pos)
          let to = Int(min(end, outEnd) - pos)
          if to > from { data.append(contentsOf: out[from..<to]) }
          if outEnd >= end { throw Done() }
        }
      }
    } catch is Done {}
    guard data.count == length else { throw NDJSONError.io(path: path, errno: EINVAL) }
    return data
  }

  /// Reads the file in 1 MB chunks, inflating when it starts with the gzip magic bytes.
  public static func readChunks(path: String, _ body: (UnsafeRawBufferPointer) throws -> Void)
    throws
  {
    var inflater: GzipInflater?
    var first = true
    try readRaw(path: path) { chunk in
      if first {
        first = false
        if chunk.count >= 2 && chunk[0] == 0x1F && chunk[1] == 0x8B { inflater = GzipInflater() }
      }
      if inflater != nil {
        try inflater!.inflate(chunk, body)
      } else {
        try body(chunk)
      }
    }
    try inflater?.finish()
  }

  /// Raw file bytes in 1 MB chunks; a short first read is topped up so the magic check sees 2 bytes.
  static func readRaw(path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw NDJSONError.io(path: path, errno: errno) }
    defer { close(fd) }
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
    defer { buf.deallocate() }
    guard let base = buf.baseAddress else { return }
    while true {
      var filled = 0
      // Fill the buffer (regular files return full reads; pipes and FUSE may not).
      while filled < chunkSize {
        let r = read(fd, base + filled, chunkSize - filled)
        if r < 0 {
          if errno == EINTR { continue }
          throw NDJSONError.io(path: path, errno: errno)
        }
        if r == 0 { break }
        filled += r
      }
      if filled == 0 { return }
      try body(UnsafeRawBufferPointer(start: base, count: filled))
      if filled < chunkSize { return }
    }
  }
}
