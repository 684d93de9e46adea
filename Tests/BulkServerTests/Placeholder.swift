import Testing
@testable import BulkServer
@Test func placeholder() {}
