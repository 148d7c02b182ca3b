/// A dense row-major Float32 matrix over contiguous storage.
///
/// A value type: copies are cheap until written (Array copy-on-write). Hot loops reach the storage through
/// `withUnsafeBufferPointer` / `withUnsafeMutableBufferPointer`, and every kernel in this module writes into
/// caller-provided output so that training and forward loops allocate nothing per step.
public struct Matrix: Sendable, Equatable {
    public private(set) var rows: Int
    public private(set) var cols: Int
    public var data: [Float]

    public init(rows: Int, cols: Int, repeating value: Float = 0) {
        precondition(rows >= 0 && cols >= 0, "Matrix shape must be non-negative, got \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
        self.data = [Float](repeating: value, count: rows * cols)
    }

    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(data.count == rows * cols, "Matrix \(rows)x\(cols) needs \(rows * cols) values, got \(data.count)")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    /// A row vector [1, n] or, with `column: true`, a column vector [n, 1].
    public init(vector: [Float], column: Bool = false) {
        self.init(rows: column ? vector.count : 1, cols: column ? 1 : vector.count, data: vector)
    }

    public static func zeros(_ rows: Int, _ cols: Int) -> Matrix { Matrix(rows: rows, cols: cols) }

    public var count: Int { rows * cols }
    public var shape: [Int] { [rows, cols] }

    @inlinable public subscript(r: Int, c: Int) -> Float {
        get { data[r * cols + c] }
        set { data[r * cols + c] = newValue }
    }

    public func row(_ r: Int) -> [Float] { Array(data[(r * cols)..<((r + 1) * cols)]) }

    public mutating func setRow(_ r: Int, _ values: [Float]) {
        precondition(values.count == cols, "row has \(values.count) values, matrix has \(cols) columns")
        data.replaceSubrange((r * cols)..<((r + 1) * cols), with: values)
    }

    /// Rows `range` as a new matrix.
    public func rows(_ range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, cols: cols, data: Array(data[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }

    /// Changes the shape without touching the values; the element count must stay the same.
    public mutating func reshape(rows: Int, cols: Int) {
        precondition(rows * cols == count, "cannot reshape \(self.rows)x\(self.cols) to \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
    }

    /// Resizes to `rows`x`cols`, reusing storage when the capacity suffices; contents are unspecified afterwards.
    public mutating func resize(rows: Int, cols: Int) {
        if rows * cols != data.count {
            if rows * cols < data.count { data.removeLast(data.count - rows * cols) }
            else { data.append(contentsOf: repeatElement(0, count: rows * cols - data.count)) }
        }
        self.rows = rows
        self.cols = cols
    }

    public func transposed() -> Matrix {
        var out = Matrix(rows: cols, cols: rows)
        data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                for r in 0..<rows { for c in 0..<cols { dst[c * rows + r] = src[r * cols + c] } }
            }
        }
        return out
    }

    public mutating func fill(_ value: Float) {
        data.withUnsafeMutableBufferPointer { p in p.update(repeating: value) }
    }
}

extension Matrix: CustomStringConvertible {
    public var description: String {
        let shown = data.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Matrix(\(rows)x\(cols): [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
