//! Crash states that once broke logfs, found by the crash test (`tests/crash.rs`), each as a
//! small workload and the crash point that exposed it. See `tests/crash/oracle.rs` for what is
//! checked: the recovered tree against the model history, then fsck after unmount.

#[path = "crash/mod.rs"]
mod harness;

use harness::model::{FALLOC_ALLOCATE, FALLOC_PUNCH, Op};
use harness::run::{Base, POPULATE, make_base};
use harness::{Crash, check_one, check_two};

fn base() -> Base {
    make_base(POPULATE)
}

/// Crash right after the last operation returned, every write on disk.
fn assert_recovers(ops: &[Op]) {
    let out = check_one(&base(), ops, Crash::AfterAll);
    assert_eq!(out.states, 1);
    assert!(out.violations.is_empty(), "{}", out.violations.join("\n"));
}

/// Punching a hole over a whole direct node frees the node; fsync then wrote only the inode,
/// and recovery, which replays the nodes it finds, left the old blocks under the checkpoint's
/// direct node: the hole showed stale data.
#[test]
fn punched_direct_node_stays_a_hole() {
    assert_recovers(&[
        Op::Create("n"),
        Op::Write {
            path: "n",
            off: 0,
            len: 2100 * 4096,
            seed: 7,
        },
        Op::SyncFs,
        Op::Fallocate {
            path: "n",
            off: 913 * 4096,
            len: 1014 * 4096,
            mode: FALLOC_PUNCH,
        },
        Op::Fsync("n"),
    ]);
}

/// A block punched and preallocated again (`NEW_ADDR`) after the checkpoint: recovery kept the
/// checkpoint's block, so the fsync'd zeros came back as old data.
#[test]
fn preallocated_block_replaces_the_old_one() {
    assert_recovers(&[
        Op::Fallocate {
            path: "a",
            off: 4096,
            len: 4096,
            mode: FALLOC_PUNCH,
        },
        Op::Fallocate {
            path: "a",
            off: 4096,
            len: 4096,
            mode: FALLOC_ALLOCATE,
        },
        Op::Fsync("a"),
    ]);
}

/// A new file fsync'd under the name of a directory removed since the checkpoint: recovery
/// unhooked the directory as if it were a file (link counts wrong, the new file disconnected).
#[test]
fn new_file_over_a_removed_directory_name() {
    assert_recovers(&[Op::Rmdir("e"), Op::Create("e"), Op::Fsync("e")]);
}

/// A new file fsync'd, renamed, and another new file fsync'd under its old name: recovery
/// restored the first name, then let the second file take it and freed the first, fsync'd,
/// file.
#[test]
fn fsynced_new_file_survives_a_new_file_taking_its_old_name() {
    assert_recovers(&[
        Op::Create("n"),
        Op::Fsync("n"),
        Op::Rename {
            from: "n",
            to: "d/m",
        },
        Op::Create("n"),
        Op::Fsync("n"),
    ]);
}

/// A multi-node fsync record torn so that its first block is lost: recovery finds no record,
/// and the next mount (which did not checkpoint) wrote a shorter record at the same place,
/// whose chain ran on into the rest of the torn one. After a second crash, recovery replayed
/// it: a file whose fsync never returned came back, over data blocks the second mount reused.
#[test]
fn torn_fsync_record_is_not_replayed_after_the_next_mount() {
    let first = [
        Op::Create("n"),
        Op::Write {
            path: "n",
            off: 0,
            len: 2100 * 4096,
            seed: 8,
        },
        Op::Fsync("n"),
    ];
    let then = [
        Op::Append {
            path: "b",
            len: 200,
            seed: 9,
        },
        Op::Fsync("b"),
    ];
    let out = check_two(
        &base(),
        &first,
        Crash::LastTornHead,
        Some((&then, Crash::AfterAll)),
    );
    assert_eq!(out.states, 2);
    assert!(out.violations.is_empty(), "{}", out.violations.join("\n"));
}

/// Recovery moved the logs on to fresh segments, one of which held the rest of the fsync
/// chain it had just replayed (free as of the checkpoint), and its checkpoint wrote nodes
/// over it. A crash before that checkpoint committed lost the end of the chain: fsync'd
/// writes were gone after the next recovery.
#[test]
fn crash_during_recovery_keeps_the_fsync_chain() {
    let mut first = Vec::new();
    for i in 0..600 {
        first.push(Op::Write {
            path: "a",
            off: (i % 3) * 10,
            len: 10,
            seed: i,
        });
        first.push(Op::Fsync("a"));
    }
    let out = check_two(
        &base(),
        &first,
        Crash::AfterAll,
        Some((&[], Crash::BeforeLast)),
    );
    assert_eq!(out.states, 2);
    assert!(out.violations.is_empty(), "{}", out.violations.join("\n"));
}
