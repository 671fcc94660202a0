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
    // One program under three names (issue 24): keysat-enqueue and keysat-deliver are symbolic
    // links to keysat-webhooks, made by scripts/link-programs after a build and by the package.
    products: [
        .executable(name: "keysat-webhooks", targets: ["keysat-webhooks"])
    ],
    targets: [
        // MARK: - System libraries and C shims, one per library
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        // Headers only: libcurl and libcrypto are not linked but loaded at run time by their
        // shims (dlopen), so that a start that does not need them does not pay for them.
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // libcurl's calls at fixed arity, through pointers resolved by keysat_curl_load().
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        // libcrypto's SHA-256 and Ed25519, loaded by keysat_crypto_load(), and HMAC-SHA256 over SHA-256.
        .target(name: "CCryptoShim", dependencies: ["COpenSSL"]),
        // libc's variadic calls (prctl) at fixed arity.
        .target(name: "CSystemShim"),
        // Headers only, like libcurl: libpq is loaded by keysat_pq_load() (dlopen) when a
        // PostgreSQL connection is first opened, so an SQLite host neither needs nor loads it.
        .systemLibrary(name: "CPostgres", providers: [.apt(["libpq-dev"])]),
        .target(name: "CPostgresShim", dependencies: ["CPostgres"]),

        // MARK: - Libraries
        // Pure Swift over libc: time, identifiers, JSON, durations, event types and the envelope,
        // endpoint URLs and secrets, errors, files in shared folders, logging and output.
        .target(name: "KeysatCore", swiftSettings: strict),
        // The SQLite store: the only code that writes SQL. Links SQLite only.
        .target(name: "KeysatStore", dependencies: ["KeysatCore", "CSQLite"], swiftSettings: strict),
        // PostgreSQL over libpq: the connection, its session settings, errors mapped to the
        // tool's classes, connection strings. No program depends on it yet; keysat-enqueue on
        // SQLite must never load it (docs/POSTGRES.md).
        .target(
            name: "KeysatPostgres", dependencies: ["KeysatCore", "KeysatStore", "CPostgres", "CPostgresShim"],
            swiftSettings: strict),
        // The one place that chooses a backend by the database's location (a file path or a
        // postgresql:// URI). libpq stays unloaded until a PostgreSQL backend is opened.
        .target(
            name: "KeysatBackends", dependencies: ["KeysatCore", "KeysatStore", "KeysatPostgres"],
            swiftSettings: strict),
        // What the commands share: option parsing (one parser for the three programs: no
        // swift-argument-parser, no Foundation), tables, input files, keysat-enqueue's command
        // (`EnqueueCommand`, its whole program), starting a run on a kick. keysat-enqueue's path
        // uses this, the store and the core only.
        .target(
            name: "KeysatCommandLine", dependencies: ["KeysatCore", "KeysatStore", "KeysatBackends"], swiftSettings: strict),
        // keysat-webhooks' commands: a tree of commands whose options are declared as properties,
        // parsed with OptionParser; their help and bash, zsh and fish completions. Its own target:
        // keysat-enqueue's and keysat-deliver's paths never touch it.
        .target(name: "KeysatCommandTree", dependencies: ["KeysatCore", "KeysatCommandLine"], swiftSettings: strict),
        // The delivery engine: the run, the outcome policy, HTTP over curl multi, signing, the
        // network policy, the lock, metrics; and keysat-deliver's command line (`DeliverCommand`),
        // hand-parsed: its idle run is budgeted (see docs/BENCHMARKS.md).
        .target(
            name: "KeysatDelivery",
            dependencies: [
                "KeysatCore", "KeysatStore", "KeysatBackends", "KeysatCommandLine", "CCurl", "CCurlShim",
                "CCryptoShim", "CSystemShim",
            ],
            swiftSettings: strict),
        // The receiver tools of keysat-webhooks: the test receiver, received webhooks, forwarding.
        .target(
            name: "KeysatReceiver", dependencies: ["KeysatCore", "KeysatDelivery"], swiftSettings: strict),

        // MARK: - The executable (a thin main)
        // The one program: main.swift dispatches on the name it was run by (keysat-enqueue:
        // `EnqueueCommand`, keysat-deliver: `DeliverCommand`, else the operator's command).
        .executableTarget(
            name: "keysat-webhooks",
            dependencies: [
                "KeysatCore", "KeysatStore", "KeysatBackends", "KeysatCommandLine", "KeysatCommandTree",
                "KeysatDelivery", "KeysatReceiver",
            ],
            swiftSettings: strict),

        // MARK: - Tests
        // What the suites run on both backends share: the backend under test
        // (KEYSAT_TEST_BACKEND) and the process's throw-away PostgreSQL cluster. Used only by
        // test targets; no XCTest in it, so a plain build compiles it harmlessly.
        .target(
            name: "KeysatTestSupport", dependencies: ["KeysatPostgres"], path: "Tests/KeysatTestSupport",
            swiftSettings: strict),
        .testTarget(name: "KeysatCoreTests", dependencies: ["KeysatCore"], swiftSettings: strict),
        .testTarget(
            name: "KeysatStoreTests",
            dependencies: ["KeysatCore", "KeysatStore", "KeysatCommandLine", "KeysatBackends", "KeysatTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "KeysatCommandLineTests", dependencies: ["KeysatCore", "KeysatCommandLine"],
            swiftSettings: strict),
        .testTarget(
            name: "KeysatCommandTreeTests", dependencies: ["KeysatCore", "KeysatCommandTree"],
            swiftSettings: strict),
        .testTarget(
            name: "KeysatDeliveryTests", dependencies: ["KeysatCore", "KeysatDelivery", "KeysatStore"],
            swiftSettings: strict),
        .testTarget(
            name: "KeysatPostgresTests",
            dependencies: ["KeysatCore", "KeysatStore", "KeysatPostgres", "KeysatBackends", "KeysatTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests", dependencies: ["KeysatCore", "KeysatStore", "KeysatTestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict),
    ]
)
