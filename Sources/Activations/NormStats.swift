import Foundation

/// Running statistics of ‖x‖₂ for one hook over non-BOS positions: count, mean, std, min, max and a histogram on
/// fixed log-spaced bins, so statistics of shards merge exactly and no pass needs the range in advance.
public struct NormStats: Codable, Sendable, Equatable {
    /// Bin edges are 10^(lowExponent + i / binsPerDecade); values below the first edge count in bin 0 and above
    /// the last edge in the last bin.
    public static let lowExponent = -3.0
    public static let binsPerDecade = 10
    public static let binCount = 80   // 1e-3 … 1e5

    public var count: Int = 0
    public var sum: Double = 0
    public var sumOfSquares: Double = 0
    public var min: Double = .infinity
    public var max: Double = -.infinity
    public var histogram: [Int] = Array(repeating: 0, count: NormStats.binCount)

    public init() {}

    public var mean: Double { count > 0 ? sum / Double(count) : .nan }
    /// Population standard deviation.
    public var std: Double {
        guard count > 0 else { return .nan }
        let m = mean
        return (Swift.max(0, sumOfSquares / Double(count) - m * m)).squareRoot()
    }

    public static var binEdges: [Double] {
        (0...binCount).map { pow(10, lowExponent + Double($0) / Double(binsPerDecade)) }
    }

    public mutating func add(_ norm: Float) {
        let v = Double(norm)
        count += 1
        sum += v
        sumOfSquares += v * v
        if v < min { min = v }
        if v > max { max = v }
        let position = v > 0 ? (log10(v) - Self.lowExponent) * Double(Self.binsPerDecade) : -1
        let bin = position.isFinite ? Swift.min(Self.binCount - 1, Swift.max(0, Int(position.rounded(.down)))) : 0
        histogram[bin] += 1
    }

    public mutating func merge(_ other: NormStats) {
        count += other.count
        sum += other.sum
        sumOfSquares += other.sumOfSquares
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
        for i in histogram.indices { histogram[i] += other.histogram[i] }
    }

    // Manifest form: the derived figures are written too so the JSON is readable by other tools.
    enum CodingKeys: String, CodingKey { case count, sum, sumOfSquares = "sum_of_squares", min, max, mean, std, histogram, binEdges = "bin_edges_log10" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        count = try c.decode(Int.self, forKey: .count)
        sum = try c.decode(Double.self, forKey: .sum)
        sumOfSquares = try c.decode(Double.self, forKey: .sumOfSquares)
        min = try c.decodeIfPresent(Double.self, forKey: .min) ?? .infinity
        max = try c.decodeIfPresent(Double.self, forKey: .max) ?? -.infinity
        histogram = try c.decode([Int].self, forKey: .histogram)
        guard histogram.count == Self.binCount else {
            throw ActivationsError("norm histogram has \(histogram.count) bins, expected \(Self.binCount)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(sum, forKey: .sum)
        try c.encode(sumOfSquares, forKey: .sumOfSquares)
        if count > 0 {
            try c.encode(min, forKey: .min); try c.encode(max, forKey: .max)
            try c.encode(mean, forKey: .mean); try c.encode(std, forKey: .std)
        }
        try c.encode(histogram, forKey: .histogram)
        try c.encode([Self.lowExponent, 1.0 / Double(Self.binsPerDecade)], forKey: .binEdges)
    }
}
