// HTTP details: content negotiation, HTTP dates, and close-delimited bodies (for `truncatedBody`).
import Foundation
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

enum HTTPNegotiation {
  /// True when `Accept-Encoding` allows gzip: `gzip` (or `x-gzip`) with q > 0, or `*` with q > 0 and
  /// gzip not refused by name. `gzip;q=0` refuses it.
  static func acceptsGzip(_ header: String?) -> Bool {
    guard let header, !header.isEmpty else { return false }
    var named: Double? = nil
    var star: Double? = nil
    for part in header.split(separator: ",") {
      let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
      guard let coding = fields.first, !coding.isEmpty else { continue }
      var q = 1.0
      for p in fields.dropFirst() where p.hasPrefix("q=") {
        q = Double(p.dropFirst(2)) ?? 0
      }
      if coding == "gzip" || coding == "x-gzip" {
        named = max(named ?? 0, q)
      } else if coding == "*" {
        star = q
      }
    }
    if let named { return named > 0 }
    return (star ?? 0) > 0
  }
}

enum HTTPDate {
  /// An IMF-fixdate (RFC 9110), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
  static func format(_ date: Date) -> String {
    let t = Int(date.timeIntervalSince1970.rounded(.down))
    let days = t >= 0 ? t / 86400 : (t - 86399) / 86400
    let secs = t - days * 86400
    let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    let weekday = weekdays[((days % 7) + 7) % 7]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    let (y, m, d) = Instant.civil(fromDays: days)
    func two(_ n: Int) -> String { String(n).leftPad(2) }
    return "\(weekday), \(two(d)) \(months[m - 1]) \(y) \(two(secs / 3600)):\(two(secs % 3600 / 60)):\(two(secs % 60)) GMT"
  }
}

/// Close-delimited responses: a response carrying the `marker` header goes out as HTTP/1.0 with
/// `Connection: close` and neither Content-Length nor chunking, so its body ends where the
/// connection closes (the way a broken proxy or an old server sends it).
enum CloseDelimited {
  static let marker = "X-Cohort-Close-Delimited"

  /// Added to every connection's pipeline; puts a `Rewriter` right after NIO's response encoder.
  final class Installer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    init() {}
    func handlerAdded(context: ChannelHandlerContext) {
      let pipeline = context.pipeline.syncOperations
      if let encoder = try? pipeline.handler(type: HTTPResponseEncoder.self) {
        try? pipeline.addHandler(Rewriter(), position: .after(encoder))
      }
    }
  }

  final class Rewriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
      let part = unwrapOutboundIn(data)
      if case .head(var head) = part, head.headers.contains(name: CloseDelimited.marker) {
        head.headers.remove(name: CloseDelimited.marker)
        head.headers.remove(name: "content-length")
        head.headers.remove(name: "transfer-encoding")
        head.headers.replaceOrAdd(name: "connection", value: "close")
        head.version = .http1_0
        context.write(wrapOutboundOut(.head(head)), promise: promise)
        return
      }
      context.write(data, promise: promise)
    }
  }
}
