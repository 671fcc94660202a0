// One program, three names (issue 24): keysat-enqueue, keysat-deliver and keysat-webhooks are
// links to this one executable, which does what the name it was run by says. One copy of the
// Swift runtime instead of three is most of the package's size.
//
// The name is looked at first, before anything else runs: keysat-enqueue and keysat-deliver
// start as they did as programs of their own (their start-up is budgeted, docs/BENCHMARKS.md),
// and nothing of keysat-webhooks' command line is initialised for them.

import KeysatCommandLine
import KeysatDelivery

/// The last path component of argv[0]: the name the program was run by.
func nameRunBy() -> Substring {
    let path = CommandLine.arguments.first ?? ""
    return path.split(separator: "/", omittingEmptySubsequences: true).last ?? ""
}

switch nameRunBy() {
case "keysat-enqueue":
    EnqueueCommand.main()
case "keysat-deliver":
    DeliverCommand.main()
default:
    // keysat-webhooks, and any other name: a renamed copy, or an argv[0] a supervisor chose
    // (`exec -a`), still runs the operator's command, which names itself in its messages.
    KeysatWebhooks.main()
}
