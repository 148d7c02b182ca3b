// Where the trainer and evaluator get activations: one [rows, d_l] matrix per layer per call, all from the same
// tokens. The Activations store, the synthetic generator and `InMemoryBatchSource` conform.
import Foundation
import Tensor

public protocol BatchSource: AnyObject {
    /// Number of layers (matrices per batch).
    var layerCount: Int { get }
    /// d of each layer.
    var dims: [Int] { get }
    /// The next `rows` tokens, one matrix per layer with the same tokens in the same row order.
    func nextBatch(rows: Int) throws -> [Matrix]
}

/// Batches from matrices held in memory (one per layer, same row count), in a seeded random order that is
/// reshuffled at each pass; with `shuffle: false`, in order (wrapping around), as an evaluation wants.
public final class InMemoryBatchSource: BatchSource {
    public let layers: [Matrix]
    public var layerCount: Int { layers.count }
    public var dims: [Int] { layers.map(\.cols) }
    public var tokenCount: Int { layers.first?.rows ?? 0 }
    private var order: [Int]
    private var position = 0
    private var rng: RNG
    private let shuffle: Bool

    public init(layers: [Matrix], shuffle: Bool = true, seed: UInt64 = 1) throws {
        guard let first = layers.first else { throw SAEError("batch source: no layers given") }
        guard first.rows > 0 else { throw SAEError("batch source: layer 0 has no rows") }
        for (i, l) in layers.enumerated() where l.rows != first.rows {
            throw SAEError("batch source: layer \(i) has \(l.rows) rows but layer 0 has \(first.rows); every layer needs the same tokens")
        }
        self.layers = layers
        self.shuffle = shuffle
        rng = RNG(seed: seed)
        order = shuffle ? rng.permutation(first.rows) : Array(0..<first.rows)
    }

    public func nextBatch(rows: Int) throws -> [Matrix] {
        guard rows > 0 else { throw SAEError("batch source: batch size must be positive, got \(rows)") }
        var picks = [Int]()
        picks.reserveCapacity(rows)
        while picks.count < rows {
            if position == order.count {
                position = 0
                if shuffle { rng.shuffle(&order) }
            }
            let take = min(rows - picks.count, order.count - position)
            picks.append(contentsOf: order[position..<(position + take)])
            position += take
        }
        return layers.map { layer in
            var out = Matrix(rows: rows, cols: layer.cols)
            let d = layer.cols
            layer.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    for (r, i) in picks.enumerated() { (dst.baseAddress! + r * d).update(from: src.baseAddress! + i * d, count: d) }
                }
            }
            return out
        }
    }
}
