//! What a check finds: structured findings (what is wrong, and where), summary statistics, and
//! whether the check could run at all.
//!
//! Findings are data, not text: an [`Object`] names the structure (with its nid, inode or block
//! address) and an [`Issue`] says what is wrong with it. Both render as one line through
//! `Display`, and a later repair pass can dispatch on them.
//!
//! `finding` is the catalogue of what can be wrong and where; `text` renders it.

mod finding;
mod text;

use bento_api::Errno;

pub use finding::{Finding, Issue, Object, Severity};
pub use text::{format_uuid, show_name};

/// The passes of a check, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pass {
    Superblock,
    Checkpoint,
    Tables,
    Tree,
    Connectivity,
    Space,
    Summaries,
}

impl Pass {
    pub const ALL: [Pass; 7] = [
        Pass::Superblock,
        Pass::Checkpoint,
        Pass::Tables,
        Pass::Tree,
        Pass::Connectivity,
        Pass::Space,
        Pass::Summaries,
    ];

    /// 1-based pass number, as printed ("Pass 3: ...").
    pub fn number(self) -> u32 {
        match self {
            Pass::Superblock => 1,
            Pass::Checkpoint => 2,
            Pass::Tables => 3,
            Pass::Tree => 4,
            Pass::Connectivity => 5,
            Pass::Space => 6,
            Pass::Summaries => 7,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Pass::Superblock => "Checking superblocks",
            Pass::Checkpoint => "Checking checkpoint packs",
            Pass::Tables => "Checking the node address and segment usage tables",
            Pass::Tree => "Checking the directory tree, inodes and node trees",
            Pass::Connectivity => "Checking connectivity and reference counts",
            Pass::Space => "Checking segment usage and block counts",
            Pass::Summaries => "Checking segment summaries",
        }
    }
}

/// Why the check could not run (fsck exit code 8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operational {
    /// Neither superblock copy carries the logfs signature.
    NotLogfs,
    DeviceTooSmall {
        blocks: u64,
    },
    /// A logfs this fsck does not understand (version or features).
    Unsupported {
        why: String,
    },
    Io {
        block: u64,
        errno: Errno,
    },
    OutOfMemory {
        what: &'static str,
    },
}

/// Counts gathered by the check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inodes found (reachable, orphaned or disconnected).
    pub inodes: u64,
    pub directories: u64,
    pub regular_files: u64,
    pub symlinks: u64,
    pub special_files: u64,
    pub orphans: u64,
    /// Most inodes the volume can hold (`max_nid - 1`).
    pub max_inodes: u64,
    /// Allocated nodes (inodes, index and xattr nodes).
    pub nodes: u64,
    /// Data blocks referenced, including preallocated (`NEW_ADDR`) ones.
    pub data_blocks: u64,
    pub preallocated_blocks: u64,
    /// Blocks in use: data (with preallocated) plus nodes.
    pub used_blocks: u64,
    /// Blocks users may fill: `(main_segments - reserved_segments) * 512`.
    pub capacity_blocks: u64,
    pub total_blocks: u64,
    pub main_segments: u64,
    pub free_segments: u64,
    /// Sequence number of the current checkpoint.
    pub checkpoint_seq: u64,
    pub clean: bool,
}

/// The result of [`crate::check`].
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Findings in the order found (errors and warnings; infos only with `verbose`), at most
    /// `CheckOptions::max_findings` of them.
    pub findings: Vec<Finding>,
    /// Errors found, including those not kept in `findings`.
    pub errors: u64,
    pub warnings: u64,
    /// Findings dropped because `max_findings` was reached.
    pub suppressed: u64,
    /// Set when the check could not run (or not finish) for a reason other than corruption.
    pub operational: Option<Operational>,
    /// Passes that ran (the last may have stopped early when the volume was too damaged).
    pub passes: Vec<Pass>,
    /// All passes ran to the end.
    pub completed: bool,
    pub stats: Stats,
    pub label: String,
    pub uuid: Option<[u8; 16]>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }

    /// A complete check that found no errors (warnings allowed).
    pub fn is_clean(&self) -> bool {
        self.operational.is_none() && self.errors == 0 && self.completed
    }

    /// The fsck(8) exit code: 0 clean, 4 errors left uncorrected, 8 operational error.
    pub fn exit_code(&self) -> i32 {
        if self.operational.is_some() {
            8
        } else if self.errors > 0 || !self.completed {
            4
        } else {
            0
        }
    }

    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }
}
