import ArgumentParser

extension CommandTable {
  /// Commands of the later layers (export, snapshots, serve…), kept out of the registry file.
  static let extraCommands: [any ParsableCommand.Type] = []
}
