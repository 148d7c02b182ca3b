import XCTest
@testable import Tensor

final class RNGTests: XCTestCase {
    func testSameSeedSameStreamDifferentSeedDifferentStream() {
        var a = RNG(seed: 42), b = RNG(seed: 42), c = RNG(seed: 43)
        let sa = (0..<100).map { _ in a.next() }, sb = (0..<100).map { _ in b.next() }, sc = (0..<100).map { _ in c.next() }
        XCTAssertEqual(sa, sb)
        XCTAssertNotEqual(sa, sc)
    }

    func testStreamIsPinnedAcrossPlatforms() {
        // The first outputs for seed 0 are fixed forever: saved experiments depend on them.
        var r = RNG(seed: 0)
        let first = (0..<3).map { _ in r.next() }
        var again = RNG(seed: 0)
        XCTAssertEqual(first, (0..<3).map { _ in again.next() })
        XCTAssertEqual(Set(first).count, 3)
    }

    func testUniformMomentsAndRange() {
        var r = RNG(seed: 1)
        let n = 200_000
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<n {
            let u = Double(r.uniform())
            XCTAssert(u >= 0 && u < 1)
            sum += u; sumSq += u * u
        }
        let mean = sum / Double(n), variance = sumSq / Double(n) - mean * mean
        XCTAssertEqual(mean, 0.5, accuracy: 0.005)
        XCTAssertEqual(variance, 1.0 / 12, accuracy: 0.002)
    }

    func testNormalMoments() {
        var r = RNG(seed: 2)
        let n = 200_000
        var s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0
        for _ in 0..<n {
            let x = Double(r.normal())
            s1 += x; s2 += x * x; s3 += x * x * x; s4 += x * x * x * x
        }
        let m = s1 / Double(n)
        XCTAssertEqual(m, 0, accuracy: 0.01)
        XCTAssertEqual(s2 / Double(n), 1, accuracy: 0.02)
        XCTAssertEqual(s3 / Double(n), 0, accuracy: 0.05)
        XCTAssertEqual(s4 / Double(n), 3, accuracy: 0.1, "kurtosis of a normal is 3")
        var scaled = RNG(seed: 2)
        let y = (0..<50_000).map { _ in Double(scaled.normal(mean: 5, std: 2)) }
        XCTAssertEqual(y.reduce(0, +) / Double(y.count), 5, accuracy: 0.05)
    }

    func testIntBelowIsUniformAndInRange() {
        var r = RNG(seed: 3)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[r.int(below: 7)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 400) }
    }

    func testShuffleIsAPermutationAndReproducible() {
        var r1 = RNG(seed: 4), r2 = RNG(seed: 4)
        let p1 = r1.permutation(1000), p2 = r2.permutation(1000)
        XCTAssertEqual(p1, p2)
        XCTAssertEqual(p1.sorted(), Array(0..<1000))
        XCTAssertNotEqual(p1, Array(0..<1000))
        // Every position is roughly equally likely to receive element 0.
        var firstCounts = [Int](repeating: 0, count: 4)
        var r = RNG(seed: 5)
        for _ in 0..<40_000 { var a = [0, 1, 2, 3]; r.shuffle(&a); firstCounts[a.firstIndex(of: 0)!] += 1 }
        for c in firstCounts { XCTAssertEqual(Double(c), 10_000, accuracy: 400) }
    }
}
