//! Passes 1 and 2: the superblocks and the checkpoint packs.

use std::collections::HashSet;

use bento_api::ks::block::BlockDevice;
use logfs::checkpoint::{CP_CLEAN, Checkpoint};
use logfs::error::Error;
use logfs::format::header::{self as csum, MAGIC_SUPERBLOCK};
use logfs::format::layout::{NAT_ENTRIES_PER_BLOCK, NEW_ADDR, SEG_BLOCKS};
use logfs::format::superblock::{
    COMPAT_SUPPORTED, FORMAT_MINOR, INCOMPAT_SUPPORTED, RO_COMPAT_SUPPORTED, Superblock,
    has_signature_at,
};
use logfs::format::tables::{LOG_DATA, LOG_NODE};
use logfs::{BLOCK_SIZE, Error as LfsError};

use crate::checker::{Checker, Vol};
use crate::report::{Issue, Object, Operational, Pass};
use crate::util::{Res, Stop};

/// logfs's reason for refusing a structure, without the block number (findings carry it).
pub(crate) fn reason(e: &LfsError) -> String {
    match e {
        Error::Corrupt { what, .. } => (*what).to_string(),
        Error::NotLogfs => "no logfs signature".to_string(),
        Error::Incompatible(why) => (*why).to_string(),
        Error::Io(e) => format!("I/O error: {e}"),
        Error::Errno(e) => e.to_string(),
    }
}

fn unsupported(why: impl Into<String>) -> Stop {
    Stop::Operational(Operational::Unsupported { why: why.into() })
}

/// Names of the fields in which two decoded superblocks differ.
fn differences(a: &Superblock, b: &Superblock) -> String {
    let mut d = Vec::new();
    if (a.major, a.minor) != (b.major, b.minor) {
        d.push("version");
    }
    if (a.compat, a.ro_compat, a.incompat) != (b.compat, b.ro_compat, b.incompat) {
        d.push("features");
    }
    if a.layout != b.layout {
        d.push("layout");
    }
    if a.uuid != b.uuid {
        d.push("uuid");
    }
    if a.hash_seed != b.hash_seed {
        d.push("hash seed");
    }
    if a.label != b.label {
        d.push("label");
    }
    if a.mkfs_time != b.mkfs_time || a.mkfs_version != b.mkfs_version {
        d.push("mkfs time or version");
    }
    if a.root_ino != b.root_ino {
        d.push("root inode");
    }
    d.join(", ")
}

/// Passes 1 and 2. On success the volume's geometry and current checkpoint are known.
pub(crate) fn open<D: BlockDevice + ?Sized>(c: &mut Checker<'_, D>) -> Res<Vol> {
    c.start(Pass::Superblock);
    let sb = superblocks(c)?;
    c.start(Pass::Checkpoint);
    let cp = checkpoint(c, &sb)?;
    let layout = sb.layout;
    let mut nat_written = cp.nat_written;
    if nat_written > layout.nat_blocks {
        c.err(
            Object::Checkpoint { seq: cp.seq },
            Issue::FieldOutOfRange {
                field: "nat_written",
                value: u64::from(nat_written),
                limit: u64::from(layout.nat_blocks),
            },
        );
        nat_written = layout.nat_blocks;
    }
    let nid_limit = (u64::from(nat_written) * u64::from(NAT_ENTRIES_PER_BLOCK))
        .min(u64::from(layout.max_nid)) as u32;
    let seed = sb.csum_seed();
    Ok(Vol {
        sb,
        layout,
        seed,
        cp,
        nat_written,
        nid_limit,
    })
}

fn superblocks<D: BlockDevice + ?Sized>(c: &mut Checker<'_, D>) -> Res<Superblock> {
    let dev_blocks = c.disk.blocks();
    if dev_blocks < 2 {
        return Err(Stop::Operational(Operational::DeviceTooSmall {
            blocks: dev_blocks,
        }));
    }
    let mut buf = vec![0u8; 2 * BLOCK_SIZE];
    c.disk.read(0, &mut buf)?;
    let mut decoded: [Option<Superblock>; 2] = [None, None];
    let mut failures: Vec<(u32, Issue)> = Vec::new();
    let mut signatures = 0;
    let mut incompatible: Option<String> = None;
    for copy in 0..2u32 {
        let Some(block) = buf
            .get(copy as usize * BLOCK_SIZE..(copy as usize + 1) * BLOCK_SIZE)
            .and_then(|b| <&[u8; BLOCK_SIZE]>::try_from(b).ok())
        else {
            continue;
        };
        if !has_signature_at(block, 0) {
            failures.push((copy, Issue::NoSignature));
            continue;
        }
        signatures += 1;
        if !csum::is_valid(0, MAGIC_SUPERBLOCK, block) {
            failures.push((copy, Issue::BadChecksum));
            continue;
        }
        // The layout is checked against the device below, with a clearer message.
        match Superblock::decode(block, u64::from(copy), u64::MAX) {
            Ok(sb) => decoded[copy as usize] = Some(sb),
            Err(e) => {
                if let Error::Incompatible(why) = e {
                    incompatible.get_or_insert(why.to_string());
                }
                failures.push((copy, Issue::Corrupt { reason: reason(&e) }));
            }
        }
    }
    if signatures == 0 {
        return Err(Stop::Operational(Operational::NotLogfs));
    }
    let chosen = match (&decoded[0], &decoded[1]) {
        (None, None) => {
            if let Some(why) = incompatible {
                return Err(unsupported(why));
            }
            for (copy, issue) in failures {
                c.err(Object::Superblock { copy }, issue);
            }
            return Err(Stop::Fatal);
        }
        (Some(a), Some(b)) => {
            if a != b {
                c.err(
                    Object::Superblocks,
                    Issue::CopiesDiffer {
                        fields: differences(a, b),
                    },
                );
            }
            a.clone()
        }
        (Some(a), None) | (None, Some(a)) => {
            for (copy, issue) in failures {
                c.err(Object::Superblock { copy }, issue);
            }
            a.clone()
        }
    };
    let sb = chosen;
    c.report.label = sb.label_str().to_string();
    c.report.uuid = Some(sb.uuid);

    // Version and features.
    if sb.incompat & !INCOMPAT_SUPPORTED != 0 {
        return Err(unsupported(format!(
            "unknown incompatible features {:#x}",
            sb.incompat & !INCOMPAT_SUPPORTED
        )));
    }
    if sb.ro_compat & !RO_COMPAT_SUPPORTED != 0 {
        return Err(unsupported(format!(
            "unknown read-only compatible features {:#x}",
            sb.ro_compat & !RO_COMPAT_SUPPORTED
        )));
    }
    if sb.compat & !COMPAT_SUPPORTED != 0 {
        c.warn(
            Object::Superblocks,
            Issue::UnknownCompatFeatures {
                bits: sb.compat & !COMPAT_SUPPORTED,
            },
        );
    }
    if sb.minor > FORMAT_MINOR {
        c.warn(
            Object::Superblocks,
            Issue::NewerMinorVersion { minor: sb.minor },
        );
    }

    // Geometry against the device.
    let l = &sb.layout;
    if l.total_blocks > dev_blocks {
        c.err(
            Object::Superblocks,
            Issue::LargerThanDevice {
                fs_blocks: l.total_blocks,
                device_blocks: dev_blocks,
            },
        );
        return Err(Stop::Fatal);
    }
    if l.total_blocks < dev_blocks {
        c.info(
            Object::Superblocks,
            Issue::SmallerThanDevice {
                fs_blocks: l.total_blocks,
                device_blocks: dev_blocks,
            },
        );
    }
    let end = u64::from(l.main_start) + u64::from(l.main_segments) * u64::from(SEG_BLOCKS);
    if end > u64::from(NEW_ADDR) {
        c.err(Object::Superblocks, Issue::AddressesOverflow { end });
        return Err(Stop::Fatal);
    }
    let s = &mut c.report.stats;
    s.total_blocks = l.total_blocks;
    s.main_segments = u64::from(l.main_segments);
    s.capacity_blocks = l.user_capacity();
    s.max_inodes = u64::from(l.max_nid.saturating_sub(1));
    Ok(sb)
}

fn checkpoint<D: BlockDevice + ?Sized>(c: &mut Checker<'_, D>, sb: &Superblock) -> Res<Checkpoint> {
    let l = &sb.layout;
    let dev = c.disk.dev();
    let mut packs: [Option<Checkpoint>; 2] = [None, None];
    let mut failures: Vec<(u32, Issue)> = Vec::new();
    for pack in 0..2u32 {
        let addr = l.cp_pack_start(pack);
        match Checkpoint::read_pack(dev, sb, pack) {
            Ok(cp) => packs[pack as usize] = Some(cp),
            Err(Error::Io(errno)) => {
                return Err(Stop::Operational(Operational::Io { block: addr, errno }));
            }
            Err(Error::Errno(_)) => return Err(crate::util::oom("checkpoint")),
            Err(e) => {
                let header = c.disk.read_block(addr)?;
                let issue = if header.iter().all(|&b| b == 0) {
                    Issue::PackEmpty
                } else {
                    Issue::PackInvalid { reason: reason(&e) }
                };
                failures.push((pack, issue));
            }
        }
    }
    let current = match (&packs[0], &packs[1]) {
        (None, None) => {
            for (pack, issue) in failures {
                let addr = l.cp_pack_start(pack);
                let issue = match issue {
                    Issue::PackInvalid { reason } => Issue::Corrupt { reason },
                    i => i,
                };
                c.err(Object::CheckpointPack { pack, addr }, issue);
            }
            c.err(Object::Device, Issue::NoValidCheckpoint);
            return Err(Stop::Fatal);
        }
        (Some(a), Some(b)) => usize::from(b.seq > a.seq),
        (Some(_), None) => 0,
        (None, Some(_)) => 1,
    };
    for (pack, issue) in failures {
        let obj = Object::CheckpointPack {
            pack,
            addr: l.cp_pack_start(pack),
        };
        // The pack not in force: empty after mkfs, or torn by a crash during a checkpoint.
        c.info(obj, issue);
    }
    let Some(cp) = packs[current].take() else {
        return Err(Stop::Fatal);
    };
    let clean = cp.flags & CP_CLEAN != 0;
    c.info(
        Object::Checkpoint { seq: cp.seq },
        Issue::CurrentCheckpoint {
            pack: current as u32,
            clean,
        },
    );
    c.report.stats.checkpoint_seq = cp.seq;
    c.report.stats.clean = clean;
    let obj = Object::Checkpoint { seq: cp.seq };

    if cp.logs.len() != 2 || cp.summaries.len() != cp.logs.len() {
        return Err(unsupported(format!("{} active logs", cp.logs.len())));
    }
    for (i, (head, summary)) in cp.logs.iter().zip(&cp.summaries).enumerate() {
        let kind = if i == 0 { LOG_NODE } else { LOG_DATA };
        if summary.log != kind && summary.log != 0 {
            c.err(
                Object::Log {
                    index: i as u32,
                    segno: head.segno,
                },
                Issue::SummaryLogType {
                    expected: kind,
                    found: summary.log,
                },
            );
        }
    }
    if cp.valid_blocks > l.user_capacity() {
        c.err(
            obj.clone(),
            Issue::FieldOutOfRange {
                field: "valid_blocks",
                value: cp.valid_blocks,
                limit: l.user_capacity(),
            },
        );
    }
    let mut seen = HashSet::new();
    for &ino in &cp.orphans {
        if !seen.insert(ino) {
            c.err(Object::Orphan { ino }, Issue::OrphanDuplicate);
        }
    }
    Ok(cp)
}
