//! fsck.logfs: a read-only consistency check of a logfs volume (`docs/format.md`).
//!
//! [`check`] runs seven passes in the manner of e2fsck and returns a [`Report`]:
//!
//! 1. **superblocks**: both copies decode and agree; the version and features are supported;
//!    the file system fits the device.
//! 2. **checkpoint packs**: which packs are valid and which is current; counters and log
//!    positions in range; the orphan list.
//! 3. **tables**: the current copy of every node address table block (below `nat_written`) and
//!    every segment usage table block verifies; NAT entries map into the main area, never to
//!    `NEW_ADDR`, and no two to one block; usage entries are self-consistent.
//! 4. **directory tree**: from the root and the orphan list, every inode, index node and xattr
//!    node verifies (checksum, kind, nid, owner, tree offset), data addresses lie in the main
//!    area and are used once, directory blocks verify and their entries hash to their bucket
//!    and name allocated inodes; inode fields (type, inline size, block count, size) agree.
//! 5. **connectivity and reference counts**: every allocated nid is reachable or an orphan;
//!    entry types match inodes, directories have one name and the right parent, link counts
//!    equal the names (directories: 2 + subdirectories).
//! 6. **segment usage and counters**: the usage table's live-block bitmaps equal exactly the
//!    blocks referenced; segments hold one kind of block, matching their log type; nothing is
//!    live past an active log's position; the checkpoint's block, node and inode counts.
//! 7. **segment summaries**: every live block's summary entry names its owner.
//!
//! The check never writes and never panics, whatever the device holds: every index is checked,
//! every loop is bounded by the volume's geometry (each node and block is visited at most
//! once, so cycles end), and memory is bounded by the device size.

#![forbid(unsafe_code)]

mod checker;
mod connect;
mod space;
mod tables;
mod tree;
mod util;
mod volume;

pub mod report;
pub mod udev;

use bento_api::ks::block::BlockDevice;

pub use report::{
    Finding, Issue, Object, Operational, Pass, Report, Severity, Stats, format_uuid, show_name,
};

/// How to check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Keep informational findings too.
    pub verbose: bool,
    /// Findings kept in the report; past it they are only counted (`Report::suppressed`).
    pub max_findings: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            verbose: false,
            max_findings: 10_000,
        }
    }
}

/// Check the logfs on `dev`, read-only.
pub fn check<D: BlockDevice + ?Sized>(dev: &D, opts: &CheckOptions) -> Report {
    checker::run(dev, opts)
}
