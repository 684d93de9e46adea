import ArgumentParser

extension CommandTable {
  /// Commands of the later layers (export, snapshots, serve…), kept out of the registry file.
  static let extraCommands: [any ParsableCommand.Type] = [
    ExportCommand.self, StatusCommand.self, HistoryCommand.self, SnapshotsCommand.self, SummaryCommand.self,
    DiffCommand.self, ShowCommand.self, WatermarksCommand.self, ServeCommand.self, AdvanceCommand.self,
    RecordCommand.self, VerifyCommand.self, ReplayCommand.self, ExpectCommand.self, KeygenCommand.self,
    ViewCommand.self, SQLCommand.self, ReportCommand.self, ClearCommand.self,
  ]
}
