import Foundation
import XCTest

/// One program, three names (issue 24): what runs is decided by the name the program was run
/// by (the last component of argv[0]), whatever the file is called or how it is linked.
final class ProgramNameTests: XCTestCase {
    /// The line of `--help` that names the program: "USAGE: NAME ...".
    private func usageLine(_ result: ProcessResult) -> String {
        result.lines.first { $0.hasPrefix("USAGE:") } ?? "(no USAGE line in: \(result.output))"
    }

    func testEachNameRunsItsOwnCommandThroughALinkAnywhere() throws {
        let scratch = try Scratch()
        let program = Binaries.path("keysat-webhooks")
        for name in ["keysat-enqueue", "keysat-deliver", "keysat-webhooks"] {
            let link = scratch.file(name)
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: program)
            let help = try runTool(link, ["--help"])
            XCTAssertEqual(help.status, 0, name + ": " + help.stderr)
            XCTAssertTrue(usageLine(help).hasPrefix("USAGE: \(name) "), "\(name): \(usageLine(help))")
        }
    }

    func testTheNameComesFromArgvZeroNotFromTheFile() throws {
        // bash's `exec -a` runs the file keysat-webhooks with another argv[0], as a supervisor may.
        let program = Binaries.path("keysat-webhooks")
        for (argv0, expected) in [
            ("keysat-enqueue", "keysat-enqueue"), ("/opt/x/keysat-deliver", "keysat-deliver"),
            ("keysat-webhooks", "keysat-webhooks"),
        ] {
            let help = try runTool(
                "/bin/bash", ["-c", "exec -a \"$1\" \"$2\" --help", "bash", argv0, program])
            XCTAssertEqual(help.status, 0, argv0 + ": " + help.stderr)
            XCTAssertTrue(usageLine(help).hasPrefix("USAGE: \(expected) "), "\(argv0): \(usageLine(help))")
        }
    }

    func testAnyOtherNameRunsTheOperatorsCommand() throws {
        let scratch = try Scratch()
        let renamed = scratch.file("keysat-webhooks-1.0")
        try FileManager.default.createSymbolicLink(
            atPath: renamed, withDestinationPath: Binaries.path("keysat-webhooks"))
        for argv in [
            [renamed, "--help"],
            ["/bin/bash", "-c", "exec -a '' \"$0\" --help", Binaries.path("keysat-webhooks")],
        ] {
            let help = try runTool(argv[0], Array(argv.dropFirst()))
            XCTAssertEqual(help.status, 0, argv.joined(separator: " ") + ": " + help.stderr)
            XCTAssertTrue(usageLine(help).hasPrefix("USAGE: keysat-webhooks "), usageLine(help))
        }
        // A usage error names the operator's command, so a mistaken name is plain to see.
        let wrong = try runTool(renamed, ["enqueue", "license.issued", "{}"])
        XCTAssertEqual(wrong.status, 64)
        XCTAssertTrue(wrong.stderr.hasPrefix("keysat-webhooks: error: "), wrong.stderr)
    }

    func testTheBuildFolderHoldsOneProgramAndLinksToIt() throws {
        // What the tests run by name is what the package installs: links to the one program.
        for name in Binaries.linkedNames {
            let path = Binaries.path(name)
            XCTAssertEqual(
                try FileManager.default.destinationOfSymbolicLink(atPath: path), "keysat-webhooks", path)
        }
        let enqueue = try runTool("keysat-enqueue", ["--version"])
        let webhooks = try runTool("keysat-webhooks", ["--version"])
        XCTAssertEqual(enqueue.status, 0)
        XCTAssertEqual(enqueue.output, webhooks.output)
    }
}
