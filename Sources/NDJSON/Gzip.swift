import CZlib

/// Streaming gzip (or zlib) inflater over CZlib. Handles concatenated gzip members (as produced by
/// `cat a.gz b.gz` or parallel compressors) and ignores zero padding after the last member.
/// Copies of a value share one zlib stream: use one value per stream.
public struct GzipInflater {
  private let box: ZStreamBox

  /// `windowBits` 15+32 (the default) auto-detects gzip or zlib headers; 15+16 accepts gzip only.
  public init(windowBits: Int32 = 15 + 32) {
    box = ZStreamBox(windowBits: windowBits)
  }

  /// Inflates `chunk`, calling `out` with decompressed bytes (each buffer valid only during the call).
  public mutating func inflate(
    _ chunk: UnsafeRawBufferPointer, _ out: (UnsafeRawBufferPointer) throws -> Void
  ) throws {
    try box.inflate(chunk, out)
  }

  /// Throws when the input ended inside a gzip member (truncated download).
  public func finish() throws {
    try box.finish()
  }

  /// Total compressed bytes consumed so far.
  public var bytesIn: Int64 { box.bytesIn }
  /// Total decompressed bytes produced so far.
  public var bytesOut: Int64 { box.bytesOut }
}

final class ZStreamBox {
  private let strm: UnsafeMutablePointer<z_stream>
  private let outBuf: UnsafeMutablePointer<UInt8>
  private let outCap = 1 << 20
  private var initError: Int32 = Z_OK
  private var memberDone = false  // the current member ended; more input starts a new one
  private var padding = false  // reading zero padding after a member
  private var sawInput = false
  private(set) var bytesIn: Int64 = 0
  private(set) var bytesOut: Int64 = 0

  init(windowBits: Int32) {
    strm = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    strm.initialize(to: z_stream())
    outBuf = UnsafeMutablePointer<UInt8>.allocate(capacity: outCap)
    initError = cohort_inflateInit2(strm, windowBits)
  }

  deinit {
    if initError == Z_OK { inflateEnd(strm) }
    strm.deinitialize(count: 1)
    strm.deallocate()
    outBuf.deallocate()
  }

  private func zmessage(_ rc: Int32) -> String {
    if let m = strm.pointee.msg { return String(cString: m) }
    return "zlib error \(rc)"
  }

  func inflate(_ chunk: UnsafeRawBufferPointer, _ out: (UnsafeRawBufferPointer) throws -> Void)
    throws
  {
    guard initError == Z_OK else { throw NDJSONError.gzip("inflateInit2 failed (\(initError))") }
    guard let raw = chunk.baseAddress, chunk.count > 0 else { return }
    let base = raw.assumingMemoryBound(to: UInt8.self)
    sawInput = true
    var pos = 0
    while pos < chunk.count {
      if padding || memberDone {
        // Between members: zero padding is skipped; anything else must start a new member.
        if base[pos] == 0 {
          padding = true
          pos += 1
          continue
        }
        if padding { throw NDJSONError.gzip("trailing garbage after gzip data") }
        guard inflateReset(strm) == Z_OK else { throw NDJSONError.gzip("inflateReset failed") }
        memberDone = false
      }
      let avail = min(chunk.count - pos, Int(Int32.max))
      strm.pointee.next_in = UnsafeMutablePointer(mutating: base + pos)
      strm.pointee.avail_in = UInt32(avail)
      var rc: Int32 = Z_OK
      repeat {
        strm.pointee.next_out = outBuf
        strm.pointee.avail_out = UInt32(outCap)
        rc = CZlib.inflate(strm, Z_NO_FLUSH)
        let produced = outCap - Int(strm.pointee.avail_out)
        if produced > 0 {
          bytesOut += Int64(produced)
          try out(UnsafeRawBufferPointer(start: outBuf, count: produced))
        }
        switch rc {
        case Z_OK:
          break
        case Z_STREAM_END:
          memberDone = true
        case Z_BUF_ERROR:
          // No progress possible: needs more input (avail_in is 0) — fine.
          if strm.pointee.avail_in != 0 && produced == 0 {
            throw NDJSONError.gzip(zmessage(rc))
          }
        default:
          throw NDJSONError.gzip(zmessage(rc))
        }
      } while !memberDone && (strm.pointee.avail_in > 0 || strm.pointee.avail_out == 0)
        && rc != Z_BUF_ERROR
      let consumed = avail - Int(strm.pointee.avail_in)
      bytesIn += Int64(consumed)
      pos += consumed
    }
  }

  func finish() throws {
    guard sawInput else { return }
    if !memberDone && !padding { throw NDJSONError.gzip("truncated gzip data (unexpected end of stream)") }
  }
}
