//! The finding catalogue: what a finding is about ([`Object`]), what is wrong with it
//! ([`Issue`]), and how much that matters ([`Severity`]).

use super::Pass;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// An inconsistency: the check fails (exit 4).
    Error,
    /// Something odd that does not make the volume inconsistent.
    Warning,
    /// Informational (shown with -v).
    Info,
}

/// The structure a finding is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Device,
    /// One superblock copy (0 or 1; it lives at block `copy`).
    Superblock {
        copy: u32,
    },
    /// Both superblock copies together.
    Superblocks,
    /// Checkpoint pack 0 or 1, starting at block `addr`.
    CheckpointPack {
        pack: u32,
        addr: u64,
    },
    /// The current checkpoint.
    Checkpoint {
        seq: u64,
    },
    /// Active log `index` (0 node, 1 data) of the current checkpoint.
    Log {
        index: u32,
        segno: u32,
    },
    /// An entry of the checkpoint's orphan list.
    Orphan {
        ino: u32,
    },
    /// The current copy of segment usage table block `index`, at block `addr`.
    SutBlock {
        index: u32,
        addr: u64,
    },
    /// A main-area segment (its usage entry or its contents).
    Segment {
        segno: u32,
    },
    /// The current copy of node address table block `index`, at block `addr`.
    NatBlock {
        index: u32,
        addr: u64,
    },
    /// A node id (its node address table entry, or the node it maps to).
    Nid {
        nid: u32,
    },
    Inode {
        ino: u32,
    },
    /// An index node (direct or indirect) of inode `ino` at tree position `offset`.
    IndexNode {
        ino: u32,
        nid: u32,
        offset: u32,
    },
    XattrNode {
        ino: u32,
        nid: u32,
    },
    /// File block `index` of inode `ino`.
    FileBlock {
        ino: u32,
        index: u64,
    },
    /// Directory block `index` of directory `dir`, stored at block `addr`.
    DirBlock {
        dir: u32,
        index: u64,
        addr: u32,
    },
    /// An entry of directory `dir`.
    DirEntry {
        dir: u32,
        name: Vec<u8>,
    },
    /// The summary entry of block `off` of segment `segno` (block `addr`).
    Summary {
        segno: u32,
        off: u32,
        addr: u32,
    },
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Issue {
    // ---- generic -----------------------------------------------------------------------------
    /// Magic or CRC does not verify (the object names the block).
    BadChecksum,
    /// A node's magic or CRC does not verify.
    NodeChecksum {
        addr: u32,
    },
    /// Fails a structural check of logfs's own decoder (the reason is logfs's).
    Corrupt {
        reason: String,
    },

    // ---- superblocks -------------------------------------------------------------------------
    NoSignature,
    CopiesDiffer {
        fields: String,
    },
    LargerThanDevice {
        fs_blocks: u64,
        device_blocks: u64,
    },
    SmallerThanDevice {
        fs_blocks: u64,
        device_blocks: u64,
    },
    AddressesOverflow {
        end: u64,
    },
    UnknownCompatFeatures {
        bits: u64,
    },
    NewerMinorVersion {
        minor: u16,
    },

    // ---- checkpoint --------------------------------------------------------------------------
    PackInvalid {
        reason: String,
    },
    PackEmpty,
    NoValidCheckpoint,
    CurrentCheckpoint {
        pack: u32,
        clean: bool,
    },
    /// A checkpoint counter disagrees with what the check counted.
    CounterMismatch {
        field: &'static str,
        recorded: u64,
        counted: u64,
    },
    FieldOutOfRange {
        field: &'static str,
        value: u64,
        limit: u64,
    },
    AllocationHint {
        hint: u32,
        free_nid: u32,
    },
    SummaryLogType {
        expected: u8,
        found: u8,
    },
    OrphanDuplicate,
    OrphanHasLinks {
        nlink: u32,
    },
    OrphanNamed {
        names: u32,
    },

    // ---- node address table -----------------------------------------------------------------
    NatEntryOutsideMain {
        addr: u32,
    },
    NatEntryNewAddr,
    NatEntryNidZero {
        addr: u32,
    },
    NatSharedBlock {
        addr: u32,
    },

    // ---- segment usage table -----------------------------------------------------------------
    SutValidCount {
        recorded: u16,
        counted: u32,
    },
    SutBadLog {
        log: u8,
    },
    SutLiveWithoutLog {
        valid: u16,
    },

    // ---- nodes -------------------------------------------------------------------------------
    NidZero,
    NidOutOfRange {
        limit: u32,
    },
    NodeNotAllocated,
    NatEntryUnusable,
    NodeWrongNid {
        addr: u32,
        found: u32,
    },
    NodeBadKind {
        addr: u32,
        kind: u8,
    },
    NodeWrongKind {
        expected: u8,
        found: u8,
    },
    NodeWrongOwner {
        expected: u32,
        found: u32,
    },
    NodeWrongOffset {
        expected: u32,
        found: u32,
    },
    NodeFromFuture {
        cp_ver: u64,
        seq: u64,
    },
    NodeReferencedTwice,
    Unreferenced {
        kind: u8,
        ino: u32,
        addr: u32,
    },
    UnreferencedUnreadable {
        addr: u32,
    },
    Disconnected {
        nlink: u32,
    },

    // ---- inodes ------------------------------------------------------------------------------
    BadMode {
        mode: u32,
    },
    RootNotDirectory,
    RootParent {
        parent: u32,
    },
    InlineNotAllowed,
    InlineTooLarge {
        size: u64,
        max: u64,
    },
    InlineWithNodes,
    UnknownInodeFlags {
        flags: u32,
    },
    SizeTooLarge {
        size: u64,
        max: u64,
    },
    BlocksMismatch {
        recorded: u64,
        counted: u64,
    },
    DataPastEof {
        count: u64,
        size: u64,
    },
    SpecialHasData {
        size: u64,
        blocks: u64,
    },
    SymlinkSize {
        size: u64,
    },
    NameLen {
        len: u32,
    },
    GenerationAhead {
        generation: u32,
        next: u64,
    },
    LinkCount {
        recorded: u32,
        counted: u32,
    },
    DirDepth {
        depth: u32,
    },
    DirSize {
        size: u64,
        expected: u64,
    },
    DirBlockBeyondDepth {
        depth: u32,
    },
    DirBlockNeverWritten,
    DirMultipleNames {
        names: u32,
    },
    DirParent {
        recorded: u32,
        actual: u32,
    },
    DirName {
        recorded: Vec<u8>,
        actual: Vec<u8>,
    },

    // ---- blocks ------------------------------------------------------------------------------
    AddrOutsideMain {
        addr: u32,
    },
    BlockUsedTwice {
        addr: u32,
        by_node: bool,
    },

    // ---- xattrs ------------------------------------------------------------------------------
    XattrEntries,

    // ---- directory entries -------------------------------------------------------------------
    EntryDotName,
    EntryHash {
        stored: u32,
        computed: u32,
    },
    EntryWrongBucket {
        index: u64,
        level: u32,
    },
    EntryDuplicate,
    EntryNamesRoot,
    EntryTarget {
        ino: u32,
        why: Box<Issue>,
    },
    EntryNotInode {
        ino: u32,
        kind: u8,
    },
    EntryType {
        ino: u32,
        entry: u8,
        inode: u8,
    },

    // ---- space -------------------------------------------------------------------------------
    LiveNotReferenced {
        count: u32,
        first: u32,
    },
    ReferencedNotLive {
        count: u32,
        first: u32,
    },
    MixedSegment {
        nodes: u32,
        data: u32,
    },
    SegmentLogMismatch {
        sut_log: u8,
        content: u8,
    },
    PastLogPosition {
        count: u32,
        first: u32,
        next_off: u32,
    },
    FreeSegments {
        recorded: u32,
        counted: u32,
    },

    // ---- summaries ---------------------------------------------------------------------------
    SummaryInvalid {
        addr: u64,
        reason: String,
    },
    SummaryOwner {
        found_nid: u32,
        found_ofs: u16,
        detail: String,
    },
}

/// One thing the check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub pass: Pass,
    pub object: Object,
    pub issue: Issue,
}
