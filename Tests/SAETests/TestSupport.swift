import Foundation
import Tensor
@testable import SAE

/// Paths of the test fixtures, found from this file so the suite runs from any checkout.
enum TestPaths {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func temporaryFolder(_ name: String) -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sae-tests-\(getpid())-\(name)-\(UInt32.random(in: 0...UInt32.max))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }
}

/// A small SAE with random encoder and biases so that a good share of features is active.
func makeRandomSAE(_ architecture: SAEArchitecture, dIn: Int = 6, dSAE: Int = 10, alpha: Float = 0.3,
                   mse: MSEMode = .sum, beta: BetaMode = .batch, seed: UInt64 = 3) throws -> SAE {
    let config = SAEConfig(architecture: architecture, dIn: dIn, dSAE: dSAE, alpha: alpha, sigma: 0.5,
                           mse: mse, beta: beta, layerMeanNorm: beta == .layer ? 2.5 : nil, seed: seed)
    let sae = try SAE(config: config)
    var rng = RNG(seed: seed &+ 100)
    try sae.setParameters(W_enc: rng.normalMatrix(dIn, dSAE, std: 0.7),
                          b_enc: (0..<dSAE).map { _ in rng.normal() * 0.3 + 0.2 },
                          W_dec: rng.normalMatrix(dSAE, dIn, std: 0.5),
                          b_dec: (0..<dIn).map { _ in rng.normal() * 0.2 })
    return sae
}
