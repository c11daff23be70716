//! Live upgrade: the state a mounted logfs hands to its next version (`docs/upgrade.md`).
//!
//! Export first commits a checkpoint, so everything on disk is current and the new version
//! mounts it as it would after a clean unmount, except that it must not free the orphans (their
//! files are still open) and must keep what only memory knows: lookup counts and open files
//! (the front end will forget and release them later), the orphan list, the space promised to
//! dirty page-cache data, and the mount options. Caches are not carried: they refill on demand.
//!
//! Payload fields (tags; `OPTIONAL` ones may be skipped by a version that does not know them):
//! 1 format version, 2 checkpoint sequence number, 3 options, 4 lookup counts, 5 open counts,
//! 6 orphans, 7 promised blocks, 8 promised index nodes, 9|OPTIONAL upgrade count.

use alloc::vec::Vec;

use bento_runtime::Errno;
use bento_runtime::boxed::TryBox;
use bento_runtime::fs::MountOptions;
use bento_runtime::ks::block::BlockDevice;
use bento_runtime::upgrade::{self, OPTIONAL, Put, Reader, Writer};

use crate::error::{Error, Result};
use crate::format::superblock::FORMAT_MAJOR;
use crate::fs::{VERSION, Volume};
use crate::mem;

/// Version of the payload this code writes; it reads this one and older, down to
/// `MIN_STATE_VERSION`. The `bad-state` feature builds a version that speaks only a state
/// version the normal builds do not know, with a field they must refuse.
pub const STATE_VERSION: u32 = if cfg!(feature = "bad-state") {
    0xbad
} else {
    1
};
const MIN_STATE_VERSION: u32 = STATE_VERSION;

const FORMAT: u16 = 1;
const CHECKPOINT: u16 = 2;
const OPTIONS: u16 = 3;
const LOOKUPS: u16 = 4;
const OPENS: u16 = 5;
const ORPHANS: u16 = 6;
const DELAYED: u16 = 7;
const DELAYED_NODES: u16 = 8;
const UPGRADES: u16 = 9 | OPTIONAL;
/// Written only by the `bad-state` feature: a field no normal build knows, not optional.
const BAD: u16 = 0x7bad;

impl<D: BlockDevice> Volume<D> {
    /// Commit a checkpoint and describe what the next version needs to continue this mount.
    pub fn export_state(&mut self) -> Result<Vec<u8>> {
        if !self.read_only {
            self.checkpoint(false)?;
        }
        let mut w = Writer::new();
        w.try_field(FORMAT, |v| {
            v.put_u32(u32::from(self.sb.major));
            v.put_u32(u32::from(self.sb.minor));
        });
        w.try_field(CHECKPOINT, |v| v.put_u64(self.seq));
        w.try_field(OPTIONS, |v| {
            v.put_u8(u8::from(self.options.discard));
            v.put_u8(u8::from(self.options.fsync_checkpoint));
            v.put_u8(u8::from(self.read_only));
        });
        w.try_field(LOOKUPS, |v| {
            for (&ino, &n) in &self.lookups {
                v.put_u32(ino);
                v.put_u64(n);
            }
        });
        w.try_field(OPENS, |v| {
            for (&ino, &n) in &self.opens {
                v.put_u32(ino);
                v.put_u32(n);
            }
        });
        w.try_field(ORPHANS, |v| {
            self.orphans.iter().for_each(|&ino| v.put_u32(ino))
        });
        w.try_field(DELAYED, |v| {
            for &(ino, idx) in self.delayed.iter() {
                v.put_u32(ino);
                v.put_u64(idx);
            }
        });
        w.try_field(DELAYED_NODES, |v| {
            for &(ino, off) in self.delayed_nodes.iter() {
                v.put_u32(ino);
                v.put_u32(off);
            }
        });
        w.try_field(UPGRADES, |v| v.put_u32(self.upgrades));
        if cfg!(feature = "bad-state") {
            w.try_field(BAD, |v| v.put_u32(0xbad));
        }
        upgrade::try_seal(
            "logfs",
            VERSION,
            STATE_VERSION,
            &w.try_finish().map_err(Error::Errno)?,
        )
        .map_err(Error::Errno)
    }

    /// Continue a mount from the state an earlier (or later) version exported.
    pub fn resume(dev: D, opts: &MountOptions, state: &[u8]) -> Result<TryBox<Volume<D>>> {
        let (info, payload) = upgrade::open(state, "logfs").map_err(Error::Errno)?;
        if info.payload_version < MIN_STATE_VERSION {
            bento_runtime::error!(
                "logfs: upgrade state refused: state version {} (from {}) is older than this version ({VERSION}) reads ({MIN_STATE_VERSION})",
                info.payload_version,
                info.fs_version
            );
            return Err(Error::Errno(Errno::EINVAL));
        }
        if info.payload_version > STATE_VERSION {
            // Its fields carry OPTIONAL tags where we may skip them; anything else is refused
            // field by field below.
            bento_runtime::info!(
                "logfs: state version {} from {}",
                info.payload_version,
                info.fs_version
            );
        }
        let mut read_only = opts.read_only;
        let mut fields = Reader::new(payload);
        let mut seq = None;
        let mut carried = Carried::default();
        while let Some((tag, mut v)) = fields.field().map_err(Error::Errno)? {
            match tag {
                FORMAT => {
                    let major = v.u32().map_err(Error::Errno)?;
                    if major != u32::from(FORMAT_MAJOR) {
                        return Err(refuse("the volume's format major version is not ours"));
                    }
                }
                CHECKPOINT => seq = Some(v.u64().map_err(Error::Errno)?),
                OPTIONS => {
                    carried.discard = v.u8().map_err(Error::Errno)? != 0;
                    carried.fsync_checkpoint = v.u8().map_err(Error::Errno)? != 0;
                    read_only |= v.u8().map_err(Error::Errno)? != 0;
                }
                LOOKUPS => {
                    while !v.is_empty() {
                        let e = (
                            v.u32().map_err(Error::Errno)?,
                            v.u64().map_err(Error::Errno)?,
                        );
                        mem::push(&mut carried.lookups, e)?;
                    }
                }
                OPENS => {
                    while !v.is_empty() {
                        let e = (
                            v.u32().map_err(Error::Errno)?,
                            v.u32().map_err(Error::Errno)?,
                        );
                        mem::push(&mut carried.opens, e)?;
                    }
                }
                ORPHANS => {
                    while !v.is_empty() {
                        mem::push(&mut carried.orphans, v.u32().map_err(Error::Errno)?)?;
                    }
                }
                DELAYED => {
                    while !v.is_empty() {
                        let e = (
                            v.u32().map_err(Error::Errno)?,
                            v.u64().map_err(Error::Errno)?,
                        );
                        mem::push(&mut carried.delayed, e)?;
                    }
                }
                DELAYED_NODES => {
                    while !v.is_empty() {
                        let e = (
                            v.u32().map_err(Error::Errno)?,
                            v.u32().map_err(Error::Errno)?,
                        );
                        mem::push(&mut carried.delayed_nodes, e)?;
                    }
                }
                UPGRADES => carried.upgrades = v.u32().map_err(Error::Errno)?,
                t if t & OPTIONAL != 0 => {}
                _ => {
                    return Err(refuse(
                        "the state carries a field this version does not know",
                    ));
                }
            }
        }
        let Some(seq) = seq else {
            return Err(refuse("no checkpoint in the state"));
        };
        let opts = MountOptions {
            read_only,
            ..opts.clone()
        };
        let (mut vol, _orphans) = Volume::load_checkpoint(dev, &opts)?;
        if vol.seq != seq {
            return Err(refuse("the volume changed since the state was exported"));
        }
        vol.options.discard = carried.discard;
        vol.options.fsync_checkpoint = carried.fsync_checkpoint;
        vol.lookups
            .try_reserve(carried.lookups.len())
            .map_err(mem::oom)?;
        for (k, n) in carried.lookups {
            mem::insert(&mut vol.lookups, k, n)?;
        }
        vol.opens
            .try_reserve(carried.opens.len())
            .map_err(mem::oom)?;
        for (k, n) in carried.opens {
            mem::insert(&mut vol.opens, k, n)?;
        }
        crate::mem::set_extend(&mut vol.orphans, carried.orphans)?;
        vol.delayed.extend(&carried.delayed)?;
        vol.delayed_nodes.extend(&carried.delayed_nodes)?;
        vol.upgrades = carried.upgrades.saturating_add(1);
        Ok(vol)
    }
}

#[derive(Default)]
struct Carried {
    discard: bool,
    fsync_checkpoint: bool,
    lookups: Vec<(u32, u64)>,
    opens: Vec<(u32, u32)>,
    orphans: Vec<u32>,
    delayed: Vec<(u32, u64)>,
    delayed_nodes: Vec<(u32, u32)>,
    upgrades: u32,
}

fn refuse(why: &'static str) -> Error {
    bento_runtime::error!("logfs: upgrade state refused: {why}");
    Error::Errno(Errno::EINVAL)
}
