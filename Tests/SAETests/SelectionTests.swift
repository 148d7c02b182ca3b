import XCTest
import Tensor
@testable import SAE

/// BatchTopK's batch selection (sampled threshold, exact fallbacks) and TopK's per-row selection (16 lanes compared
/// at a time once its heap is full), each against sorting.
final class SelectionTests: XCTestCase {
    /// The k-th largest positive value of a batch against sorting, on batches where the sampled threshold holds
    /// (uniform rows) and on each way it can misjudge the batch, which the exact fallback must then cover (no
    /// positive value in the sample, fewer than k values at or above t₀, more candidates than the buffer holds),
    /// with ties at the answer, and with fewer positives than k.
    func testBatchSelectionMatchesSortingOnFastAndFallbackPaths() {
        var rng = RNG(seed: 3)
        func check(_ name: String, _ B: Int, _ m: Int, _ k: Int, _ value: (Int, Int) -> Float) {
            let pre = (0..<(B * m)).map { value($0 / m, $0 % m) }
            let bias = (0..<m).map { _ in Float(0) }
            let sorted = pre.filter { $0 > 0 }.sorted(by: >)
            let want: Float = k <= sorted.count ? sorted[k - 1] : 0
            let got = pre.withUnsafeBufferPointer { p in bias.withUnsafeBufferPointer { b in
                BatchSelection.kthLargestPositive(p.baseAddress!, b.baseAddress!, rows: B, cols: m, k: k) } }
            XCTAssertEqual(got, want, name)
        }
        check("uniform rows", 300, 131, 5 * 300, { _, _ in rng.normal() })
        // The sample takes rows s·B/64 = 0, 4, 8, … here.
        check("no positive value in the sample", 256, 64, 4 * 256, { b, _ in b % 4 == 1 ? 10 + rng.normal() : rng.normal() - 3 })
        check("sample overestimates: fewer than k at or above t0", 256, 64, 4 * 256,
              { b, _ in b % 4 == 0 ? 10 + rng.normal() : rng.normal() - 3 })
        check("sample underestimates: more candidates than the buffer", 256, 64, 4 * 256,
              { b, _ in b % 2 == 1 ? 10 + rng.normal() : rng.normal() })
        check("ties at the answer", 200, 48, 3 * 200, { _, j in Float(j % 5) })
        check("fewer positives than k", 100, 33, 40 * 100, { _, _ in rng.normal() - 2 })
        XCTAssertNotNil(BatchSelection.sampledThreshold([Float](repeating: 1, count: 300 * 131), [Float](repeating: 0, count: 131),
                                                        rows: 300, cols: 131, k: 1500), "the fast path must be taken on uniform rows")
    }

    /// TopK's selection (16 lanes compared at a time once its heap is full) against sorting each row: the k largest
    /// positive values, ties to the lower feature, in feature order; rows whose widths are not multiples of 16.
    func testTopKSelectionMatchesSorting() {
        var rng = RNG(seed: 8)
        for (m, k) in [(37, 5), (100, 16), (300, 32), (64, 64), (50, 80)] {
            for row in 0..<20 {
                let p = (0..<m).map { _ in (rng.normal() * 4).rounded() / 4 }   // quarter steps: many ties
                let b = (0..<m).map { j in row % 2 == 0 ? Float(0) : Float(j % 3) * 0.25 - 0.25 }
                let v = (0..<m).map { p[$0] + b[$0] }
                let want = (0..<m).filter { v[$0] > 0 }.sorted { v[$0] > v[$1] || (v[$0] == v[$1] && $0 < $1) }
                    .prefix(k).sorted()
                var feature = [Int32](repeating: -1, count: m), value = [Float](repeating: 0, count: m)
                let found = TopKSelection.topPositive(p, b, m, k: k, &feature, &value)
                XCTAssertEqual(feature.prefix(found).map(Int.init), Array(want), "m \(m) k \(k) row \(row)")
                XCTAssertEqual(Array(value.prefix(found)), want.map { v[$0] }, "m \(m) k \(k) row \(row)")
            }
        }
    }
}
