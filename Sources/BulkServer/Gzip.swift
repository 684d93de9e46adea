import CZlib

/// Streaming gzip compressor (zlib, window bits 31).
final class GzipStream {
  private var stream = z_stream()
  private var open = false

  init() throws {
    let rc = cohort_deflateInit2(&stream, 6, 31)
    guard rc == Z_OK else { throw BulkServerError.invalidConfiguration("zlib deflateInit2 failed (\(rc))") }
    open = true
  }

  deinit {
    if open { deflateEnd(&stream) }
  }

  /// Compresses `input`; with `finish`, also flushes the gzip trailer.
  func compress(_ input: [UInt8], finish: Bool) -> [UInt8] {
    var output: [UInt8] = []
    var inputCopy = input
    let chunk = 64 * 1024
    var out = [UInt8](repeating: 0, count: chunk)
    inputCopy.withUnsafeMutableBufferPointer { inBuf in
      stream.next_in = inBuf.baseAddress
      stream.avail_in = uInt(inBuf.count)
      repeat {
        let produced: Int = out.withUnsafeMutableBufferPointer { outBuf in
          stream.next_out = outBuf.baseAddress
          stream.avail_out = uInt(chunk)
          _ = deflate(&stream, finish ? Z_FINISH : Z_NO_FLUSH)
          return chunk - Int(stream.avail_out)
        }
        output.append(contentsOf: out[0..<produced])
      } while stream.avail_out == 0
    }
    stream.next_in = nil
    return output
  }
}
