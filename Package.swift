// swift-tools-version: 6.0
// The module picture of ../shared/design/nsae.md §2: dependencies point one way, downwards.
//   nsae (CLI) / REPL / JupyterKernel  ->  Workbench  ->  SAE, Activations, GPT2  ->  Tensor  ->  C system libraries
import PackageDescription

let package = Package(
    name: "nsae",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "nsae", targets: ["nsae"]),
        .executable(name: "Benchmarks", targets: ["Benchmarks"]),
        .library(name: "Tensor", targets: ["Tensor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries, linked by name (Debian's libzmq.pc makes SwiftPM warn about a prohibited -isystem flag).
        .systemLibrary(name: "CZMQ", path: "Sources/CZMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CReadline", path: "Sources/CReadline", providers: [.apt(["libreadline-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", providers: [.apt(["libssl-dev"])]),

        // Every module builds with checked arithmetic and bounds: they are what stop a crafted file or size cleanly.
        .target(name: "Tensor", dependencies: ["COpenBLAS"]),
        .target(name: "GPT2", dependencies: ["Tensor"], swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug)), .unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux], configuration: .release))]),  // -O in debug: the tests run real forwards over a 50257-token vocabulary; AVX2 for the loops over it
        .target(name: "SAE", dependencies: ["Tensor"], swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug)), .unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux], configuration: .release))]),  // -O in debug: the tests train real models; AVX2+FMA (this machine kind) for the sparse step
        .target(name: "Activations", dependencies: ["Tensor", "GPT2", "SAE"]),
        .target(name: "Workbench", dependencies: ["Tensor", "GPT2", "SAE", "Activations"]),
        // The terminal front ends' module: the readline loop, `nsae run`'s script runner, the terminal sink and progress
        // bar, SIGINT. The kernel does not link it (its interrupts and progress are messages).
        .target(name: "REPL", dependencies: ["Workbench", "CReadline"]),
        .target(name: "JupyterKernel", dependencies: ["Workbench", "CZMQ", "COpenSSL"]),
        .executableTarget(name: "nsae", dependencies: [
            "Workbench", "REPL", "JupyterKernel", "Tensor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "Benchmarks", dependencies: [
            "Tensor", "GPT2", "SAE", "Activations", "Workbench", "COpenBLAS",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Benchmarks", exclude: ["kernel_bench.py", "peer_run.py", "scan_peer.py", "sae_numpy_nsae.py"]),

        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "GPT2Tests", dependencies: ["GPT2", "Tensor"], exclude: ["Fixtures"]),
        .testTarget(name: "SAETests", dependencies: ["SAE", "Tensor"], exclude: ["Fixtures"]),
        .testTarget(name: "ActivationsTests", dependencies: ["Activations", "GPT2", "SAE", "Tensor"], exclude: ["Fixtures"]),
        .testTarget(name: "WorkbenchTests", dependencies: ["Workbench", "REPL"]),
        .testTarget(name: "JupyterKernelTests", dependencies: ["JupyterKernel", "Workbench"]),
    ]
)
