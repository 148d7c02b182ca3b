import Foundation
import XCTest
import Tensor
import SAE
@testable import Activations

final class ShuffledReaderTests: XCTestCase {
    /// Row r of hook h has r in column 0, so each batch row can be traced to its store row.
    private func rowIndices(_ batch: [Matrix]) -> [Int] {
        let ids = (0..<batch[0].rows).map { Int(batch[0][$0, 0]) }
        XCTAssertEqual(ids, (0..<batch[1].rows).map { Int(batch[1][$0, 0]) }, "hooks must be aligned on the same tokens")
        return ids
    }

    func testEveryNonBOSRowComesOutExactlyOncePerEpoch() throws {
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: 500)
        // A buffer of ~60 rows: far smaller than the store, so the buffer is refilled many times.
        let reader = try ShuffledBatchReader(store: store, memoryBudgetBytes: 60 * 13 * 4, chunkRows: 16, seed: 3)
        XCTAssertEqual(reader.bufferRows, 60)
        let expected = (0..<500).filter { $0 % 10 != 0 }
        var firstEpoch: [Int] = []
        for epoch in 0..<2 {
            var seen: [Int] = []
            while let batch = try reader.nextBatchInEpoch(rows: 32) {
                let ids = rowIndices(batch)
                seen += ids
                for (i, r) in ids.enumerated() {
                    XCTAssertEqual(batch[1].row(i), syntheticRows(hook: 1, rows: r..<(r + 1), d: 5).data)
                }
            }
            XCTAssertEqual(seen.count, expected.count)
            XCTAssertEqual(seen.sorted(), expected)
            XCTAssertNotEqual(seen, expected, "rows must come out shuffled")
            if epoch == 0 { firstEpoch = seen } else { XCTAssertNotEqual(seen, firstEpoch, "each epoch has its own order") }
        }
        XCTAssertEqual(reader.epoch, 2)
    }

    func testIncludingBOSServesEveryRow() throws {
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: 90)
        let reader = try ShuffledBatchReader(store: store, memoryBudgetBytes: 1 << 20, includeBOS: true, seed: 1)
        var seen: [Int] = []
        while let batch = try reader.nextBatchInEpoch(rows: 25) { seen += rowIndices(batch) }
        XCTAssertEqual(seen.sorted(), Array(0..<90))
    }

    func testTrainerBatchesWrapAcrossEpochsAndFeedAnSAEGroup() throws {
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: 100)
        let reader = try ShuffledBatchReader(store: store, memoryBudgetBytes: 40 * 13 * 4, chunkRows: 8, seed: 5)
        var counts = [Int: Int]()
        for _ in 0..<9 { for r in rowIndices(try reader.nextBatch(rows: 20)) { counts[r, default: 0] += 1 } }
        // 180 rows over 90 non-BOS rows: exactly two epochs, each row twice.
        XCTAssertEqual(counts.count, 90)
        XCTAssertTrue(counts.values.allSatisfy { $0 == 2 })

        let source: any BatchSource = reader
        XCTAssertEqual(source.dims, [8, 5])
        let group = try SAEGroup.make("relu", dims: source.dims, expansion: 2, alpha: 0.01)
        let log = try GroupTrainer(batchSize: 16, logEvery: 1).train(group, source: source, steps: 3, context: .silent)
        XCTAssertFalse(log.rows.isEmpty)
    }

    func testBudgetTooSmallForTwoRowsIsAnError() throws {
        let store = try makeSyntheticStore(at: temporaryFolder(self), rows: 20)
        XCTAssertThrowsMessage(try ShuffledBatchReader(store: store, memoryBudgetBytes: 60), contains: ["fewer than 2 rows"])
    }
}
