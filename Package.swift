// swift-tools-version:6.0
import PackageDescription

// Strict settings for every Swift target, set once (see shared/STYLE.md).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "keysat-webhooks",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "keysat-enqueue", targets: ["keysat-enqueue"]),
        .executable(name: "keysat-deliver", targets: ["keysat-deliver"]),
        .executable(name: "keysat-webhooks", targets: ["keysat-webhooks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        // MARK: - System libraries and the libcurl shim
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        // OpenSSL's headers only: CCurlShim loads libcrypto's HMAC at run time (see its header).
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        // libcurl's headers only: CCurlShim loads the library at run time (see its header).
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CCurlShim", dependencies: ["CCurl", "COpenSSL"]),
        // libc's variadic calls (prctl) at fixed arity.
        .target(name: "CSystemShim"),

        // MARK: - Libraries
        // Links SQLite only: keysat-enqueue depends on nothing else.
        .target(name: "KeysatStore", dependencies: ["CSQLite"], swiftSettings: strict),
        // Links libcurl and libcrypto.
        .target(
            name: "KeysatDelivery",
            dependencies: ["KeysatStore", "CCurl", "CCurlShim", "CSystemShim"],
            swiftSettings: strict),

        // MARK: - Executables (thin mains)
        .executableTarget(
            name: "keysat-enqueue", dependencies: ["KeysatStore"], swiftSettings: strict),
        // Hand-parsed command line: its idle run is budgeted (see docs/BENCHMARKS.md).
        .executableTarget(
            name: "keysat-deliver", dependencies: ["KeysatStore", "KeysatDelivery"], swiftSettings: strict),
        .executableTarget(
            name: "keysat-webhooks",
            dependencies: [
                "KeysatStore", "KeysatDelivery",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),

        // MARK: - Tests
        .testTarget(name: "KeysatStoreTests", dependencies: ["KeysatStore"], swiftSettings: strict),
        .testTarget(
            name: "KeysatDeliveryTests", dependencies: ["KeysatDelivery", "KeysatStore"],
            swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests", dependencies: ["KeysatStore"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict),
    ]
)
