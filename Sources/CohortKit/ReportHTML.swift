import Foundation

/// The report as one self-contained HTML page: inline CSS and SVG, no script, no fonts or images from
/// anywhere (a Content-Security-Policy forbids every fetch), light and dark (prefers-color-scheme),
/// printable, and accessible: every chart is an `<svg role="img">` with a `<title>` and `<desc>`, followed by
/// the table of its data. Each plotted value is one element marked `data-point` (tests count them).
extension CohortReport {
  /// `generator`: what made it (e.g. `cohort 0.1.0 (commit …)`), printed under the title.
  public func html(generator: String = "cohort") -> String {
    var page = HTMLPage(title: "cohort report: \(cohort.name)")
    page.raw("<header><h1>Cohort <code>\(h(cohort.name))</code></h1>")
    page.raw("<p class=\"meta\">Report generated \(h(generatedAt)) by \(h(generator)). "
      + "\(snapshots.count) snapshot\(snapshots.count == 1 ? "" : "s"), \(exports.count) export\(exports.count == 1 ? "" : "s").</p></header>")
    page.raw("<main>")
    definitionSection(&page)
    timelineSection(&page)
    countsSection(&page)
    diffSection(&page)
    membershipSection(&page)
    watermarkSection(&page)
    page.raw("</main>")
    return page.finish()
  }

  // MARK: Sections

  private func definitionSection(_ page: inout HTMLPage) {
    page.raw("<section aria-labelledby=\"def\"><h2 id=\"def\">Definition</h2><dl class=\"def\">")
    let rows: [(String, String)] = [
      ("Server", cohort.server + (serverURL.map { " (\($0))" } ?? "")),
      ("Group", "Group/" + cohort.groupID),
      ("Resource types", cohort.defaultTypes.map { $0.replacingOccurrences(of: ",", with: ", ") } ?? "everything the server offers"),
      ("Note", cohort.note ?? ""),
      ("Created", cohort.createdAt),
    ]
    for (k, v) in rows where !v.isEmpty { page.raw("<dt>\(h(k))</dt><dd>\(h(v))</dd>") }
    page.raw("</dl></section>")
  }

  private func timelineSection(_ page: inout HTMLPage) {
    page.raw("<section aria-labelledby=\"tl\"><h2 id=\"tl\">Export history</h2>")
    guard !exports.isEmpty else {
      page.raw("<p>No exports yet: run <code>export \(h(cohort.name))</code>.</p></section>")
      return
    }
    let durations = exports.map { $0.seconds ?? 0 }
    let maxSeconds = max(durations.max() ?? 1, 1)
    let failures = exports.filter { !$0.committed }.count
    var chart = SVGChart(
      id: "timeline", width: 720, height: 200,
      title: "Export history of \(cohort.name)",
      desc: "\(exports.count) exports in order, bar height = duration (longest \(Self.duration(maxSeconds))); "
        + "\(exports.count - failures) committed, \(failures) not committed. The table below lists each one.")
    let plot = chart.plot
    chart.axisY(max: maxSeconds, label: Self.duration)
    let step = plot.width / Double(exports.count)
    let barWidth = min(40, step * 0.7)
    for (i, e) in exports.enumerated() {
      let x = plot.x + step * (Double(i) + 0.5)
      let height = max(2, plot.height * (e.seconds ?? 0) / maxSeconds)
      let style = e.committed ? "ok" : (e.outcome == "cancelled" ? "cancel" : "bad")
      chart.raw(
        "<rect data-point class=\"bar \(style)\" x=\"\(f(x - barWidth / 2))\" y=\"\(f(plot.bottom - height))\" width=\"\(f(barWidth))\" height=\"\(f(height))\">"
          + "<title>#\(e.seq) \(h(e.kind)), \(h(e.seconds.map(Self.duration) ?? "unfinished")), \(h(e.outcome))</title></rect>")
      chart.raw("<text class=\"tick\" x=\"\(f(x))\" y=\"\(f(plot.bottom + 14))\" text-anchor=\"middle\">#\(e.seq)</text>")
      chart.raw("<text class=\"kind\" x=\"\(f(x))\" y=\"\(f(plot.bottom - height - 4))\" text-anchor=\"middle\">\(e.kind == "full" ? "F" : "I")</text>")
    }
    page.raw(chart.finish())
    page.raw("<p class=\"legend\"><span class=\"sw ok\"></span>committed <span class=\"sw bad\"></span>failed or unfinished "
      + "<span class=\"sw cancel\"></span>cancelled · F full, I incremental</p>")
    page.table(
      caption: "Exports of \(cohort.name)",
      columns: ["export", "kind", "started", "duration", "outcome", "since", "types", "transactionTime", "files", "resources", "bytes", "server software"],
      numeric: [8, 9, 10],
      rows: exports.map { e in
        [
          "#\(e.seq)", e.kind, e.startedAt, e.seconds.map(Self.duration) ?? "", e.outcome + (e.error.map { ": " + String($0.prefix(200)) } ?? ""),
          e.since ?? "", e.types ?? "(all)", e.transactionTime ?? "", String(e.files), String(e.resources), String(e.bytes),
          e.serverSoftware ?? "",
        ]
      })
    page.raw("</section>")
  }

  private func countsSection(_ page: inout HTMLPage) {
    page.raw("<section aria-labelledby=\"counts\"><h2 id=\"counts\">Resources per type across snapshots</h2>")
    guard !snapshots.isEmpty else {
      page.raw("<p>No snapshots yet.</p></section>")
      return
    }
    let maxCount = max(snapshots.flatMap { $0.counts.values }.max() ?? 1, 1)
    let last = snapshots[snapshots.count - 1]
    var chart = SVGChart(
      id: "counts", width: 720, height: 260, title: "Resources per type across the snapshots of \(cohort.name)",
      desc: "One line per resource type (\(types.count) types) over \(snapshots.count) snapshots; at the latest, #\(last.seq): "
        + types.map { "\($0) \(last.counts[$0] ?? 0)" }.joined(separator: ", ") + ". The table below has every value.")
    let plot = chart.plot
    chart.axisY(max: Double(maxCount), label: { String(Int($0)) })
    let step = snapshots.count > 1 ? plot.width / Double(snapshots.count - 1) : 0
    func x(_ i: Int) -> Double { snapshots.count > 1 ? plot.x + step * Double(i) : plot.x + plot.width / 2 }
    for (i, s) in snapshots.enumerated() {
      chart.raw("<text class=\"tick\" x=\"\(f(x(i)))\" y=\"\(f(plot.bottom + 14))\" text-anchor=\"middle\">#\(s.seq)</text>")
    }
    for (t, type) in types.enumerated() {
      let points = snapshots.enumerated().map { i, s in (x(i), plot.bottom - plot.height * Double(s.counts[type] ?? 0) / Double(maxCount)) }
      chart.raw("<polyline class=\"series s\(t % 12)\" points=\"\(points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\"/>")
      for (i, p) in points.enumerated() {
        chart.raw(
          "<circle data-point class=\"dot s\(t % 12)\" cx=\"\(f(p.0))\" cy=\"\(f(p.1))\" r=\"3.5\"><title>\(h(type)) at #\(snapshots[i].seq): \(snapshots[i].counts[type] ?? 0)</title></circle>")
      }
    }
    page.raw(chart.finish())
    page.raw("<ul class=\"keys\">" + types.enumerated().map { "<li><span class=\"sw s\($0 % 12)\"></span>\(h($1))</li>" }.joined() + "</ul>")
    page.table(
      caption: "Resources per type at each snapshot",
      columns: ["type"] + snapshots.map { "#\($0.seq)" }, numeric: Set(1...snapshots.count),
      rows: types.map { t in [t] + snapshots.map { String($0.counts[t] ?? 0) } } + [["total"] + snapshots.map { String($0.total) }])
    page.raw("</section>")
  }

  private func diffSection(_ page: inout HTMLPage) {
    page.raw("<section aria-labelledby=\"diff\"><h2 id=\"diff\">Last change per type</h2>")
    guard let diff = lastDiff, !diff.rows.isEmpty else {
      page.raw("<p>Needs two snapshots.</p></section>")
      return
    }
    let maxChange = max(diff.rows.map { $0.added + $0.changed + $0.removed }.max() ?? 1, 1)
    let rowHeight = 22.0
    var chart = SVGChart(
      id: "diff", width: 720, height: 40 + rowHeight * Double(diff.rows.count), left: 150,
      title: "What changed from snapshot #\(diff.from) to #\(diff.to), per type",
      desc: "Stacked bars per resource type: added, changed, removed. "
        + diff.rows.map { "\($0.type): \($0.added) added, \($0.changed) changed, \($0.removed) removed" }.joined(separator: "; ") + ".")
    let plot = chart.plot
    for (i, row) in diff.rows.enumerated() {
      let y = plot.y + rowHeight * Double(i)
      chart.raw("<text class=\"tick\" x=\"\(f(plot.x - 6))\" y=\"\(f(y + rowHeight / 2 + 4))\" text-anchor=\"end\">\(h(row.type))</text>")
      var x = plot.x
      for (label, value) in [("added", row.added), ("changed", row.changed), ("removed", row.removed)] {
        let width = plot.width * Double(value) / Double(maxChange)
        chart.raw(
          "<rect data-point class=\"bar \(label)\" x=\"\(f(x))\" y=\"\(f(y + 3))\" width=\"\(f(width))\" height=\"\(f(rowHeight - 6))\"><title>\(h(row.type)): \(value) \(label)</title></rect>")
        x += width
      }
      chart.raw("<text class=\"value\" x=\"\(f(x + 4))\" y=\"\(f(y + rowHeight / 2 + 4))\">\(row.added + row.changed + row.removed)</text>")
    }
    page.raw(chart.finish())
    page.raw("<p class=\"legend\"><span class=\"sw added\"></span>added <span class=\"sw changed\"></span>changed <span class=\"sw removed\"></span>removed</p>")
    page.table(
      caption: "Change per type from #\(diff.from) to #\(diff.to)", columns: ["type", "added", "changed", "removed", "unchanged"],
      numeric: [1, 2, 3, 4],
      rows: diff.rows.map { [$0.type, String($0.added), String($0.changed), String($0.removed), String($0.unchanged)] })
    page.raw("</section>")
  }

  private func membershipSection(_ page: inout HTMLPage) {
    page.raw("<section aria-labelledby=\"members\"><h2 id=\"members\">Membership over time</h2>")
    guard !snapshots.isEmpty else {
      page.raw("<p>No snapshots yet.</p></section>")
      return
    }
    let top = max(snapshots.map { max($0.members, $0.joined ?? 0, $0.left ?? 0) }.max() ?? 1, 1)
    var chart = SVGChart(
      id: "members", width: 720, height: 220, title: "Members, joiners and leavers of \(cohort.name) per snapshot",
      desc: snapshots.map { s in
        "#\(s.seq): \(s.members) members" + (s.joined.map { ", \($0) joined" } ?? "") + (s.left.map { ", \($0) left" } ?? "")
      }.joined(separator: "; ") + ".")
    let plot = chart.plot
    chart.axisY(max: Double(top), label: { String(Int($0)) })
    let step = plot.width / Double(snapshots.count)
    let barWidth = min(18, step * 0.25)
    var line: [(Double, Double)] = []
    for (i, s) in snapshots.enumerated() {
      let cx = plot.x + step * (Double(i) + 0.5)
      chart.raw("<text class=\"tick\" x=\"\(f(cx))\" y=\"\(f(plot.bottom + 14))\" text-anchor=\"middle\">#\(s.seq)</text>")
      for (offset, label, value) in [(-1.0, "joined", s.joined ?? 0), (1.0, "left", s.left ?? 0)] {
        let height = plot.height * Double(value) / Double(top)
        chart.raw(
          "<rect data-point class=\"bar \(label)\" x=\"\(f(cx + offset * barWidth * 0.6 - barWidth / 2))\" y=\"\(f(plot.bottom - height))\" width=\"\(f(barWidth))\" height=\"\(f(height))\"><title>#\(s.seq): \(value) \(label)</title></rect>")
      }
      line.append((cx, plot.bottom - plot.height * Double(s.members) / Double(top)))
    }
    chart.raw("<polyline class=\"series members\" points=\"\(line.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\"/>")
    for (i, p) in line.enumerated() {
      chart.raw("<circle data-point class=\"dot members\" cx=\"\(f(p.0))\" cy=\"\(f(p.1))\" r=\"4\"><title>#\(snapshots[i].seq): \(snapshots[i].members) members</title></circle>")
    }
    page.raw(chart.finish())
    page.raw("<p class=\"legend\"><span class=\"sw members\"></span>members <span class=\"sw joined\"></span>joined since the previous snapshot <span class=\"sw left\"></span>left</p>")
    page.table(
      caption: "Members per snapshot", columns: ["snapshot", "transactionTime", "members", "joined", "left"], numeric: [2, 3, 4],
      rows: snapshots.map { ["#\($0.seq)", $0.transactionTime ?? "", String($0.members), $0.joined.map(String.init) ?? "", $0.left.map(String.init) ?? ""] })
    page.raw("</section>")
  }

  private func watermarkSection(_ page: inout HTMLPage) {
    page.raw("<section aria-labelledby=\"wm\"><h2 id=\"wm\">Watermarks</h2>")
    page.raw("<p>Per resource type, the transactionTime the next <code>export \(h(cohort.name)) --incremental</code> sends as <code>_since</code>.</p>")
    if watermarks.isEmpty {
      page.raw("<p>None yet (a committed export sets them).</p>")
    } else {
      page.table(
        caption: "Watermarks", columns: ["type", "transactionTime", "snapshot"], numeric: [],
        rows: watermarks.map { [$0.type, $0.transactionTime, $0.snapshot.map { "#\($0)" } ?? ""] })
    }
    page.raw("</section>")
  }

  static func duration(_ seconds: Double) -> String {
    if seconds < 10 { return String(format: "%.1f s", seconds) }
    if seconds < 120 { return String(format: "%.0f s", seconds) }
    if seconds < 7200 { return String(format: "%.0f min", seconds / 60) }
    return String(format: "%.1f h", seconds / 3600)
  }
}

private func h(_ s: String) -> String { HTMLPage.escape(s) }
private func f(_ d: Double) -> String { String(format: "%.1f", d) }

/// An HTML document being written.
struct HTMLPage {
  private var body = ""
  let title: String
  init(title: String) { self.title = title }

  static func escape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for c in s {
      switch c {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&#39;"
      default: out.append(c)
      }
    }
    return out
  }

  mutating func raw(_ html: String) { body += html + "\n" }

  mutating func table(caption: String, columns: [String], numeric: Set<Int>, rows: [[String]]) {
    var t = "<div class=\"scroll\"><table><caption>\(HTMLPage.escape(caption))</caption><thead><tr>"
    t += columns.map { "<th scope=\"col\">\(HTMLPage.escape($0))</th>" }.joined() + "</tr></thead><tbody>"
    for row in rows {
      t += "<tr>" + row.enumerated().map { i, cell in
        i == 0 ? "<th scope=\"row\">\(HTMLPage.escape(cell))</th>"
          : "<td\(numeric.contains(i) ? " class=\"num\"" : "")>\(HTMLPage.escape(cell))</td>"
      }.joined() + "</tr>"
    }
    raw(t + "</tbody></table></div>")
  }

  func finish() -> String {
    """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
    <meta name="color-scheme" content="light dark">
    <title>\(HTMLPage.escape(title))</title>
    <style>\(HTMLPage.css)</style>
    </head>
    <body>
    \(body)</body>
    </html>

    """
  }

  static let css = """
    :root{--bg:#fff;--fg:#1b1f24;--muted:#57606a;--rule:#d0d7de;--panel:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--cancel:#8c959f;
    --added:#1a7f37;--changed:#bf8700;--removed:#cf222e;--members:#0969da;--joined:#1a7f37;--left:#cf222e;
    --s0:#0969da;--s1:#bf3989;--s2:#1a7f37;--s3:#bc4c00;--s4:#8250df;--s5:#0a7d8c;--s6:#9a6700;--s7:#57606a;
    --s8:#e16f24;--s9:#6e7781;--s10:#2da44e;--s11:#a40e26}
    @media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--rule:#3d444d;--panel:#151b23;
    --ok:#3fb950;--bad:#f85149;--cancel:#9198a1;--added:#3fb950;--changed:#d29922;--removed:#f85149;--members:#4493f8;
    --joined:#3fb950;--left:#f85149;--s0:#4493f8;--s1:#db61a2;--s2:#3fb950;--s3:#f0883e;--s4:#ab7df8;--s5:#39c5cf;--s6:#d29922;--s7:#9198a1;
    --s8:#ffa657;--s9:#b1bac4;--s10:#7ee787;--s11:#ff7b72}}
    *{box-sizing:border-box}
    body{margin:0 auto;max-width:980px;padding:1.5rem;background:var(--bg);color:var(--fg);
    font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
    h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.2rem;margin:2rem 0 .6rem;border-bottom:1px solid var(--rule);padding-bottom:.2rem}
    code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
    .meta,.legend,caption{color:var(--muted);font-size:.88rem}
    dl.def{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}dt{color:var(--muted)}dd{margin:0}
    svg.chart{display:block;width:100%;height:auto;max-width:720px;background:var(--panel);border-radius:6px}
    svg .axis{stroke:var(--rule);stroke-width:1}svg .grid{stroke:var(--rule);stroke-width:.5;stroke-dasharray:3 3}
    svg text{fill:var(--muted);font-size:11px;font-family:inherit}svg text.kind{fill:var(--fg);font-weight:600}svg text.value{fill:var(--fg)}
    .ok{fill:var(--ok);background:var(--ok)}.bad{fill:var(--bad);background:var(--bad)}.cancel{fill:var(--cancel);background:var(--cancel)}
    .added{fill:var(--added);background:var(--added)}.changed{fill:var(--changed);background:var(--changed)}
    .removed{fill:var(--removed);background:var(--removed)}.joined{fill:var(--joined);background:var(--joined)}
    .left{fill:var(--left);background:var(--left)}
    polyline.series{fill:none;stroke-width:2}polyline.members{stroke:var(--members)}circle.members{fill:var(--members)}span.members{background:var(--members)}
    .s0{stroke:var(--s0);fill:var(--s0);background:var(--s0)}.s1{stroke:var(--s1);fill:var(--s1);background:var(--s1)}
    .s2{stroke:var(--s2);fill:var(--s2);background:var(--s2)}.s3{stroke:var(--s3);fill:var(--s3);background:var(--s3)}
    .s4{stroke:var(--s4);fill:var(--s4);background:var(--s4)}.s5{stroke:var(--s5);fill:var(--s5);background:var(--s5)}
    .s6{stroke:var(--s6);fill:var(--s6);background:var(--s6)}.s7{stroke:var(--s7);fill:var(--s7);background:var(--s7)}
    .s8{stroke:var(--s8);fill:var(--s8);background:var(--s8)}.s9{stroke:var(--s9);fill:var(--s9);background:var(--s9)}
    .s10{stroke:var(--s10);fill:var(--s10);background:var(--s10)}.s11{stroke:var(--s11);fill:var(--s11);background:var(--s11)}
    svg polyline.series{fill:none}
    .sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin:0 .3em 0 .8em;vertical-align:-.05em}
    ul.keys{list-style:none;padding:0;margin:.4rem 0;display:flex;flex-wrap:wrap;gap:.1rem .4rem;font-size:.88rem}ul.keys .sw{margin-left:0}
    .scroll{overflow-x:auto;margin:.6rem 0}
    table{border-collapse:collapse;font-size:.85rem;min-width:50%}caption{text-align:left;padding:.2rem 0}
    th,td{border-bottom:1px solid var(--rule);padding:.25rem .6rem;text-align:left;vertical-align:top}
    thead th{border-bottom:2px solid var(--rule)}td.num{text-align:right;font-variant-numeric:tabular-nums}
    @media print{:root{color-scheme:light;--bg:#fff;--fg:#000;--panel:#fff}body{max-width:none;padding:0;font-size:11pt}
    section{break-inside:avoid-page}svg.chart{max-width:100%;border:1px solid #ccc}.scroll{overflow:visible}}
    """
}

/// An inline SVG chart with a plot area, a title and a description (for screen readers).
struct SVGChart {
  struct Plot {
    var x: Double
    var y: Double
    var width: Double
    var height: Double
    var bottom: Double { y + height }
  }

  let id: String
  let width: Double
  let height: Double
  let plot: Plot
  private var body = ""

  init(id: String, width: Double, height: Double, left: Double = 56, title: String, desc: String) {
    self.id = id
    self.width = width
    self.height = height
    plot = Plot(x: left, y: 16, width: width - left - 24, height: height - 16 - 28)
    body =
      "<svg class=\"chart\" data-chart=\"\(id)\" role=\"img\" aria-labelledby=\"\(id)-title \(id)-desc\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
      + "<title id=\"\(id)-title\">\(HTMLPage.escape(title))</title><desc id=\"\(id)-desc\">\(HTMLPage.escape(desc))</desc>"
    body += "<line class=\"axis\" x1=\"\(f(plot.x))\" y1=\"\(f(plot.bottom))\" x2=\"\(f(plot.x + plot.width))\" y2=\"\(f(plot.bottom))\"/>"
  }

  mutating func raw(_ s: String) { body += s }

  /// A y axis from 0 to `max` with a few grid lines.
  mutating func axisY(max: Double, label: (Double) -> String) {
    body += "<line class=\"axis\" x1=\"\(f(plot.x))\" y1=\"\(f(plot.y))\" x2=\"\(f(plot.x))\" y2=\"\(f(plot.bottom))\"/>"
    for i in 1...4 {
      let value = max * Double(i) / 4
      let y = plot.bottom - plot.height * Double(i) / 4
      body += "<line class=\"grid\" x1=\"\(f(plot.x))\" y1=\"\(f(y))\" x2=\"\(f(plot.x + plot.width))\" y2=\"\(f(y))\"/>"
      body += "<text x=\"\(f(plot.x - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(HTMLPage.escape(label(value)))</text>"
    }
    body += "<text x=\"\(f(plot.x - 6))\" y=\"\(f(plot.bottom + 4))\" text-anchor=\"end\">0</text>"
  }

  func finish() -> String { body + "</svg>" }
}
