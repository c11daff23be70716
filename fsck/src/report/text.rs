//! The text rendering of findings: one line each, through `Display`.

use std::fmt;

use super::{Finding, Issue, Object, Operational, Severity};

/// A name as printed: quoted, with unprintable bytes escaped.
pub fn show_name(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if c.is_control() => s.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('"');
    s
}

fn node_kind_name(kind: u8) -> &'static str {
    match kind {
        logfs::format::node::KIND_INODE => "inode",
        logfs::format::node::KIND_DIRECT => "direct node",
        logfs::format::node::KIND_INDIRECT => "indirect node",
        logfs::format::node::KIND_XATTR => "xattr node",
        _ => "node of unknown kind",
    }
}

fn log_kind_name(log: u8) -> &'static str {
    match log {
        logfs::format::tables::LOG_NONE => "none",
        logfs::format::tables::LOG_NODE => "node",
        logfs::format::tables::LOG_DATA => "data",
        _ => "invalid",
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Device => write!(f, "device"),
            Object::Superblock { copy } => write!(f, "superblock copy {copy} (block {copy})"),
            Object::Superblocks => write!(f, "superblocks"),
            Object::CheckpointPack { pack, addr } => {
                write!(f, "checkpoint pack {pack} (block {addr})")
            }
            Object::Checkpoint { seq } => write!(f, "checkpoint {seq}"),
            Object::Log { index, segno } => {
                let name = match index {
                    0 => "node log",
                    1 => "data log",
                    _ => "log",
                };
                write!(f, "{name} {index} (segment {segno})")
            }
            Object::Orphan { ino } => write!(f, "orphan list entry inode {ino}"),
            Object::SutBlock { index, addr } => {
                write!(f, "segment usage table block {index} (block {addr})")
            }
            Object::Segment { segno } => write!(f, "segment {segno}"),
            Object::NatBlock { index, addr } => {
                write!(f, "node address table block {index} (block {addr})")
            }
            Object::Nid { nid } => write!(f, "nid {nid}"),
            Object::Inode { ino } => write!(f, "inode {ino}"),
            Object::IndexNode { ino, nid, offset } => {
                write!(f, "inode {ino}: index node nid {nid} (offset {offset})")
            }
            Object::XattrNode { ino, nid } => write!(f, "inode {ino}: xattr node nid {nid}"),
            Object::FileBlock { ino, index } => write!(f, "inode {ino}: file block {index}"),
            Object::DirBlock { dir, index, addr } => {
                write!(f, "directory {dir}: directory block {index} (block {addr})")
            }
            Object::DirEntry { dir, name } => {
                write!(f, "directory {dir}: entry {}", show_name(name))
            }
            Object::Summary { segno, off, addr } => {
                write!(f, "segment {segno} block {off} (block {addr}): summary")
            }
        }
    }
}

fn features(bits: u64) -> String {
    format!("{bits:#x}")
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Issue::*;
        match self {
            BadChecksum => write!(f, "bad magic or checksum"),
            NodeChecksum { addr } => write!(f, "node at block {addr}: bad magic or checksum"),
            Corrupt { reason } => write!(f, "{reason}"),

            NoSignature => write!(f, "no logfs signature"),
            CopiesDiffer { fields } => write!(f, "the two copies differ ({fields})"),
            LargerThanDevice {
                fs_blocks,
                device_blocks,
            } => write!(
                f,
                "file system has {fs_blocks} blocks but the device only {device_blocks} \
                 (truncated image or wrong device?)"
            ),
            SmallerThanDevice {
                fs_blocks,
                device_blocks,
            } => write!(
                f,
                "file system covers {fs_blocks} of the device's {device_blocks} blocks"
            ),
            AddressesOverflow { end } => write!(
                f,
                "main area ends at block {end}, past 32-bit block addresses"
            ),
            UnknownCompatFeatures { bits } => write!(
                f,
                "unknown compatible features {}: ignored",
                features(*bits)
            ),
            NewerMinorVersion { minor } => write!(
                f,
                "format version 1.{minor} is newer than this fsck (1.{}): its additions are not \
                 checked",
                logfs::format::superblock::FORMAT_MINOR
            ),

            PackInvalid { reason } => write!(
                f,
                "invalid ({reason}); not in use, so harmless (a checkpoint torn by a crash?)"
            ),
            PackEmpty => write!(f, "never written"),
            NoValidCheckpoint => write!(f, "no valid checkpoint pack"),
            CurrentCheckpoint { pack, clean } => write!(
                f,
                "current (pack {pack}), {}",
                if *clean {
                    "cleanly unmounted"
                } else {
                    "not cleanly unmounted"
                }
            ),
            CounterMismatch {
                field,
                recorded,
                counted,
            } => write!(f, "{field} is {recorded}, counted {counted}"),
            FieldOutOfRange {
                field,
                value,
                limit,
            } => {
                write!(f, "{field} is {value}, beyond its limit {limit}")
            }
            AllocationHint { hint, free_nid } => write!(
                f,
                "next_free_nid is {hint} but nid {free_nid} below it is free"
            ),
            SummaryLogType { expected, found } => write!(
                f,
                "summary is for a {} segment, expected {}",
                log_kind_name(*found),
                log_kind_name(*expected)
            ),
            OrphanDuplicate => write!(f, "listed twice"),
            OrphanHasLinks { nlink } => {
                write!(f, "orphan has link count {nlink}, expected 0")
            }
            OrphanNamed { names } => {
                write!(f, "orphan is still named by {names} directory entries")
            }

            NatEntryOutsideMain { addr } => {
                write!(f, "maps to block {addr}, outside the main area")
            }
            NatEntryNewAddr => write!(f, "maps to NEW_ADDR, which is never written to disk"),
            NatEntryNidZero { addr } => write!(f, "nid 0 maps to block {addr}; must be 0"),
            NatSharedBlock { addr } => {
                write!(f, "maps to block {addr}, which another nid maps to as well")
            }

            SutValidCount { recorded, counted } => write!(
                f,
                "usage entry counts {recorded} live blocks but its bitmap has {counted}"
            ),
            SutBadLog { log } => write!(f, "usage entry has invalid log type {log}"),
            SutLiveWithoutLog { valid } => {
                write!(f, "usage entry has {valid} live blocks but no log type")
            }

            NidZero => write!(f, "refers to nid 0"),
            NidOutOfRange { limit } => write!(f, "nid out of range (limit {limit})"),
            NodeNotAllocated => write!(f, "node is free in the node address table"),
            NatEntryUnusable => write!(f, "its node address table entry is unusable"),
            NodeWrongNid { addr, found } => {
                write!(f, "node at block {addr} belongs to nid {found}")
            }
            NodeBadKind { addr, kind } => {
                write!(f, "node at block {addr} has unknown kind {kind}")
            }
            NodeWrongKind { expected, found } => write!(
                f,
                "is a {}, expected a {}",
                node_kind_name(*found),
                node_kind_name(*expected)
            ),
            NodeWrongOwner { expected, found } => {
                write!(f, "node belongs to inode {found}, expected {expected}")
            }
            NodeWrongOffset { expected, found } => {
                write!(f, "node has tree offset {found}, expected {expected}")
            }
            NodeFromFuture { cp_ver, seq } => write!(
                f,
                "node was written after checkpoint {cp_ver}, but the current checkpoint is {seq}"
            ),
            NodeReferencedTwice => write!(f, "node is referenced more than once"),
            Unreferenced { kind, ino, addr } => {
                if *kind == logfs::format::node::KIND_INODE {
                    write!(
                        f,
                        "inode (block {addr}) is allocated but not referenced by any directory \
                         or the orphan list"
                    )
                } else {
                    write!(
                        f,
                        "{} of inode {ino} (block {addr}) is allocated but not referenced",
                        node_kind_name(*kind)
                    )
                }
            }
            UnreferencedUnreadable { addr } => write!(
                f,
                "allocated (block {addr}) but unreadable and not referenced"
            ),
            Disconnected { nlink } => write!(
                f,
                "not referenced by any directory entry (disconnected; link count {nlink})"
            ),

            BadMode { mode } => write!(f, "invalid file type in mode {mode:#o}"),
            RootNotDirectory => write!(f, "root inode is not a directory"),
            RootParent { parent } => {
                write!(f, "root directory's parent is {parent}, expected itself")
            }
            InlineNotAllowed => write!(f, "inline data flag on an inode that cannot be inline"),
            InlineTooLarge { size, max } => {
                write!(f, "inline inode has size {size}, more than {max}")
            }
            InlineWithNodes => write!(f, "inline inode has index nodes"),
            UnknownInodeFlags { flags } => write!(f, "unknown inode flags {flags:#x}"),
            SizeTooLarge { size, max } => {
                write!(f, "size {size} exceeds the maximum file size {max}")
            }
            BlocksMismatch { recorded, counted } => write!(
                f,
                "block count is {recorded}, counted {counted} (data, index and xattr nodes)"
            ),
            DataPastEof { count, size } => write!(
                f,
                "{count} written data blocks lie past the end of the file (size {size})"
            ),
            SpecialHasData { size, blocks } => write!(
                f,
                "special file has size {size} and {blocks} data blocks, expected none"
            ),
            SymlinkSize { size } => write!(f, "symlink has size {size}, expected 1..4095"),
            NameLen { len } => write!(f, "recorded name length {len} exceeds 256"),
            GenerationAhead { generation, next } => write!(
                f,
                "generation {generation} is not below the checkpoint's next generation {next}"
            ),
            LinkCount { recorded, counted } => {
                write!(f, "link count is {recorded}, should be {counted}")
            }
            DirDepth { depth } => write!(
                f,
                "directory depth {depth} exceeds {}",
                logfs::format::dir::MAX_DEPTH
            ),
            DirSize { size, expected } => write!(
                f,
                "directory size is {size}, expected {expected} for its depth"
            ),
            DirBlockBeyondDepth { depth } => {
                write!(f, "lies beyond the directory's {depth} hash levels")
            }
            DirBlockNeverWritten => write!(f, "directory block is preallocated (NEW_ADDR)"),
            DirMultipleNames { names } => write!(f, "directory has {names} names"),
            DirParent { recorded, actual } => write!(
                f,
                "parent field is {recorded}, but directory {actual} holds its name"
            ),
            DirName { recorded, actual } => write!(
                f,
                "recorded name {} differs from its entry {}",
                show_name(recorded),
                show_name(actual)
            ),

            AddrOutsideMain { addr } => write!(f, "address {addr} is outside the main area"),
            BlockUsedTwice { addr, by_node } => write!(
                f,
                "block {addr} is already in use by {}",
                if *by_node {
                    "a node"
                } else {
                    "another file block"
                }
            ),

            XattrEntries => write!(f, "xattr entries do not parse"),

            EntryDotName => write!(f, "\".\" and \"..\" must not be stored"),
            EntryHash { stored, computed } => write!(
                f,
                "stored hash {stored:#010x} differs from the name's hash {computed:#010x}"
            ),
            EntryWrongBucket { index, level } => write!(
                f,
                "directory block {index} (level {level}) is not in the name's hash bucket: \
                 lookups cannot find it"
            ),
            EntryDuplicate => write!(f, "name occurs more than once"),
            EntryNamesRoot => write!(f, "names the root directory"),
            EntryTarget { ino, why } => write!(f, "names inode {ino}: {why}"),
            EntryNotInode { ino, kind } => {
                write!(f, "names nid {ino}, which is a {}", node_kind_name(*kind))
            }
            EntryType { ino, entry, inode } => write!(
                f,
                "entry type {entry} does not match inode {ino}'s type {inode}"
            ),

            LiveNotReferenced { count, first } => write!(
                f,
                "{count} blocks marked live in the usage table are not referenced (first: \
                 block {first} of the segment)"
            ),
            ReferencedNotLive { count, first } => write!(
                f,
                "{count} referenced blocks are not marked live in the usage table (first: \
                 block {first} of the segment)"
            ),
            MixedSegment { nodes, data } => {
                write!(
                    f,
                    "holds both node blocks ({nodes}) and data blocks ({data})"
                )
            }
            SegmentLogMismatch { sut_log, content } => write!(
                f,
                "usage table says {} segment, but it holds {} blocks",
                log_kind_name(*sut_log),
                log_kind_name(*content)
            ),
            PastLogPosition {
                count,
                first,
                next_off,
            } => write!(
                f,
                "{count} blocks at or past the log position {next_off} are in use (first: \
                 block {first})"
            ),
            FreeSegments { recorded, counted } => write!(
                f,
                "free_segments is {recorded}, counted {counted} (recomputed at mount)"
            ),

            SummaryInvalid { addr, reason } => {
                write!(f, "summary block {addr} is invalid ({reason})")
            }
            SummaryOwner {
                found_nid,
                found_ofs,
                detail,
            } => write!(
                f,
                "names owner nid {found_nid} slot {found_ofs}, but {detail}"
            ),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        write!(f, "{sev}: {}: {}", self.object, self.issue)
    }
}

impl fmt::Display for Operational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operational::NotLogfs => write!(f, "no logfs superblock found"),
            Operational::DeviceTooSmall { blocks } => write!(
                f,
                "device too small to hold a logfs ({blocks} blocks of 4096 bytes)"
            ),
            Operational::Unsupported { why } => {
                write!(f, "unsupported logfs: {why}; a newer fsck.logfs is needed")
            }
            Operational::Io { block, errno } => {
                write!(f, "I/O error reading block {block}: {errno}")
            }
            Operational::OutOfMemory { what } => write!(f, "out of memory ({what})"),
        }
    }
}

/// A UUID in its standard text form.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}
