// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "carddesk",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "carddesk-server", targets: ["carddesk-server"]),
        .executable(name: "carddesk", targets: ["carddesk"]),
        .executable(name: "carddesk-bench", targets: ["carddesk-bench"]),
        .executable(name: "carddesk-fuzz", targets: ["carddesk-fuzz"]),
        // Test support: a PKCS#11 module whose token a test can take away (Tests/Support/TestToken).
        .library(name: "carddesk-test-token", type: .dynamic, targets: ["CardDeskTestToken"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/async-kit.git", from: "1.22.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        // The benchmark's HTTP client (tests have it already, through HummingbirdTesting).
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // Value types and domain rules. No I/O.
        .target(
            name: "CardDeskCore",
            dependencies: [],
            swiftSettings: swiftSettings
        ),
        // The storage seam (narrow protocols per consumer), the SQL implementation for SQLite and
        // PostgreSQL, migrations and the hash-chained audit log.
        .target(
            name: "CardDeskStore",
            dependencies: [
                "CardDeskCore",
                "CSQLiteDirect",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "AsyncKit", package: "async-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The SQLite C calls of the store, bound to the SQLite build sqlite-nio vendors (one SQLite per process).
        .target(name: "CSQLiteDirect"),
        // Issuing CAs: keys, profiles, prepare + issue, revocation, CRL and OCSP.
        .target(
            name: "CertificateAuthority",
            dependencies: [
                "CardDeskCore",
                "CardDeskStore",
                "PKCS11",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The card seam: a session with one smartcard (PIN, keys, certificates, server-authorised administration),
        // APDUs and BER-TLV, and the PIV card application's host side.
        .target(
            name: "Smartcard",
            dependencies: [
                "CardDeskCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // pcsc-lite, the PC/SC service every smartcard reader is reached through (libpcsclite-dev).
        .systemLibrary(name: "CPCSC", pkgConfig: "libpcsclite", providers: [.apt(["libpcsclite-dev"])]),
        // PC/SC from Swift: readers, card events, APDUs through pcscd (blocking calls on their own threads).
        .target(
            name: "PCSC",
            dependencies: ["CardDeskCore", "CPCSC", "Smartcard"],
            swiftSettings: swiftSettings
        ),
        // PKCS#11 (libp11-kit-dev's header): the interface every HSM offers. The vendor's module is loaded with dlopen.
        .systemLibrary(name: "CPKCS11", pkgConfig: "p11-kit-1", providers: [.apt(["libp11-kit-dev"])]),
        // PKCS#11 from Swift: a module, a token with a pool of logged-in sessions, key generation and signing.
        .target(
            name: "PKCS11",
            dependencies: ["CardDeskCore", "CPKCS11"],
            swiftSettings: swiftSettings
        ),
        // A software card with the semantics of a PIV card, one file per card.
        .target(
            name: "VirtualSmartcard",
            dependencies: [
                "CardDeskCore",
                "Smartcard",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // The JSON bodies of the HTTP API, shared by the server and the `carddesk` client.
        .target(
            name: "CardDeskAPI",
            dependencies: ["CardDeskCore", "Smartcard", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The workflows: card issuing and the renewal engine (later unlock and RA actions).
        .target(
            name: "RegistrationAuthority",
            dependencies: [
                "CardDeskAPI",
                "CardDeskCore",
                "CardDeskStore",
                "CertificateAuthority",
                "Smartcard",
                "VirtualSmartcard",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Hummingbird application: health, CA downloads, CRL, OCSP.
        .target(
            name: "CardDeskWeb",
            dependencies: [
                "CardDeskAPI",
                "CardDeskCore",
                "CardDeskStore",
                "CertificateAuthority",
                "RegistrationAuthority",
                "Smartcard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            // The pages' templates and the files they load, read at run time (so they can be linted and cached).
            resources: [.copy("Pages/Templates"), .copy("Pages/Static")],
            swiftSettings: swiftSettings
        ),
        // Sending one-time codes: the outbox worker, SMTP (STARTTLS, AUTH) and an HTTP text-message gateway.
        .target(
            name: "Messaging",
            dependencies: [
                "CardDeskCore",
                "CardDeskStore",
                "CertificateAuthority",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layered settings (flags > environment > file > defaults) and opening a data directory.
        .target(
            name: "CardDeskServerKit",
            dependencies: [
                "CardDeskCore",
                "CardDeskStore",
                "CertificateAuthority",
                "RegistrationAuthority",
                "Smartcard",
                "VirtualSmartcard",
                "CardDeskWeb",
                "Messaging",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "carddesk-server",
            dependencies: ["CardDeskCore", "CardDeskServerKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        // The workstation agent: talks to the server, drives the card.
        .target(
            name: "CardAgent",
            dependencies: [
                "CardDeskAPI",
                "CardDeskCore",
                "PCSC",
                "Smartcard",
                "VirtualSmartcard",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "carddesk",
            dependencies: [
                "CardAgent",
                "CardDeskCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Fuzz targets for what attackers send (CSR, OCSP, CRL, JSON bodies, forms): a corpus replayer in a normal
        // build, a libFuzzer program when scripts/fuzz builds it with -sanitize=fuzzer,address.
        .target(name: "CLibFuzzerDriver"),
        .executableTarget(
            name: "carddesk-fuzz",
            dependencies: ["CardDeskAPI", "CardDeskCore", "CardDeskWeb", "CertificateAuthority", "CLibFuzzerDriver"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "carddesk-bench",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                "CardAgent",
                "Smartcard",
                "CardDeskAPI",
                "CardDeskServerKit",
                "CardDeskWeb",
                "VirtualSmartcard",
                .product(name: "Hummingbird", package: "hummingbird"),
                "CardDeskCore",
                "CardDeskStore",
                "CertificateAuthority",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support: a virtual card in vpcd's reader that is pulled out, or kills the agent, at the Nth APDU (the
        // PC/SC interruption tests). Fault injection lives here, on the card's side, not in the agent or the server.
        .executableTarget(
            name: "carddesk-test-card",
            dependencies: ["Smartcard", "VirtualSmartcard"],
            path: "Tests/Support/TestCard",
            swiftSettings: swiftSettings
        ),
        // Test support: a PKCS#11 module that forwards to SoftHSMv2 and can pretend its token was pulled out (the
        // HSM-outage tests). Built as libcarddesk-test-token.so beside the binaries.
        .target(
            name: "CardDeskTestToken",
            dependencies: ["CPKCS11"],
            path: "Tests/Support/TestToken",
            linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("pthread")]
        ),
        // Test support: the server, killing itself just before or after its Nth renewal commit (the crash tests).
        .executableTarget(
            name: "carddesk-server-faults",
            dependencies: [
                "CardDeskServerKit", "RegistrationAuthority", .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support/ServerFaults",
            swiftSettings: swiftSettings
        ),
        // Test support: a data directory with its server instance, and the HTTP application on a free port, for the
        // suites that need a real server.
        .target(
            name: "CardDeskTestSupport",
            dependencies: [
                "CardAgent", "CardDeskAPI", "CardDeskCore", "CardDeskServerKit", "CardDeskStore", "CardDeskWeb",
                "CertificateAuthority", "RegistrationAuthority", "Smartcard", "VirtualSmartcard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support/Fixtures",
            swiftSettings: swiftSettings
        ),
        // The workstation agent: its state as a value (events in, effects out), and the agent driving a real card
        // against a real server.
        .testTarget(
            name: "CardAgentTests",
            dependencies: [
                "CardAgent", "CardDeskAPI", "CardDeskCore", "CardDeskTestSupport", "Smartcard", "VirtualSmartcard",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CardDeskCoreTests",
            dependencies: ["CardDeskCore", "CardDeskTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VirtualSmartcardTests",
            dependencies: [
                "CardDeskCore", "Smartcard", "VirtualSmartcard", "PCSC",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CardDeskStoreTests",
            dependencies: [
                "CardDeskCore", "CardDeskStore", "CSQLiteDirect", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SQLKit", package: "sql-kit"), .product(name: "SQLiteKit", package: "sqlite-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CertificateAuthorityTests",
            dependencies: [
                "CardDeskCore",
                "CardDeskStore",
                "CardDeskTestSupport",
                "CertificateAuthority",
                "CPKCS11",
                "PKCS11",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RegistrationAuthorityTests",
            dependencies: [
                "CardDeskAPI", "CardDeskCore", "CardDeskStore", "CertificateAuthority", "RegistrationAuthority",
                "Smartcard", "VirtualSmartcard", "CardAgent", "CardDeskServerKit", "CardDeskWeb", "Messaging",
                "CardDeskTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CardDeskServerKitTests",
            dependencies: ["CardDeskServerKit", "CardDeskStore", "CardDeskCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CardDeskWebTests",
            dependencies: [
                "CardDeskWeb",
                "CardDeskServerKit",
                "CardDeskTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Attacks on the server, the agent and the files: each reproduces a confirmed defect and passes only with its fix.
        .testTarget(
            name: "SecurityTests",
            dependencies: [
                "CardDeskAPI", "CardDeskCore", "CardDeskStore", "CertificateAuthority", "RegistrationAuthority",
                "Smartcard", "VirtualSmartcard", "CardAgent", "CardDeskServerKit", "CardDeskWeb", "Messaging",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Security",
            swiftSettings: swiftSettings
        ),
        // Drives the real carddesk-server binary with openssl, Python cryptography and pkilint.
        .testTarget(
            name: "ServerEndToEndTests",
            dependencies: [
                "CardDeskCore", "CertificateAuthority", "PCSC", "Smartcard", "VirtualSmartcard", "CardDeskServerKit", "CardAgent", "CardDeskStore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
