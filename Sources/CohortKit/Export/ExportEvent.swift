import FHIRBulk

/// What an export reports while it runs (kick-off, polling, manifest, each download, warnings, totals): the
/// protocol engine's events, published by CohortKit so that reporters (the shell's terminal and plain lines, the
/// `log.ndjson` writer) render them without depending on the engine. Server text in them is already escaped.
public typealias ExportEvent = BulkEvent
