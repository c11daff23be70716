//! Checkpoints: the commit points of the file system.
//!
//! A checkpoint records everything needed to mount without looking at the log: counters, where
//! each log is writing, which shadow copy of every NAT and SUT block is current, the summaries of
//! the segments being filled, and the orphan list. Packs 0 and 1 alternate; the body is written
//! first and the header last as a commit record (preflush + FUA), so a torn checkpoint leaves
//! the previous one in force.

use alloc::boxed::Box;

use alloc::vec::Vec;

use zerocopy::{FromZeros, IntoBytes};

use bento_runtime::Errno;
use bento_runtime::fs::Shutdown;
use bento_runtime::ks::block::{BlockDevice, WriteFlags};

use crate::error::{Error, Result, invariant, io};
pub use crate::format::checkpoint::{CP_CLEAN, LogHead, NO_SEGMENT};
use crate::format::checkpoint::{RawCpHeader, RawLogHead, RawOrphanBlock};
use crate::format::header::{self as csum, MAGIC_CHECKPOINT, MAGIC_ORPHAN};
use crate::format::layout::{BLOCK_SIZE, ORPHANS_PER_BLOCK, SEG_BLOCKS};
use crate::format::summary::SummaryBlock;
use crate::format::superblock::Superblock;

/// A checkpoint in memory: what is read at mount and written at commit.
pub struct Checkpoint {
    pub seq: u64,
    pub flags: u32,
    pub nat_written: u32,
    pub valid_blocks: u64,
    pub valid_nodes: u32,
    pub valid_inodes: u32,
    pub free_segments: u32,
    pub next_free_nid: u32,
    pub next_generation: u64,
    pub time: i64,
    pub logs: Vec<LogHead>,
    pub nat_bitmap: Vec<u8>,
    pub sut_bitmap: Vec<u8>,
    pub summaries: Vec<Box<SummaryBlock>>,
    pub orphans: Vec<u32>,
}

fn zeroed_blocks(n: usize) -> Result<Vec<u8>> {
    let bytes = n
        .checked_mul(BLOCK_SIZE)
        .ok_or(Error::Errno(Errno::ENOMEM))?;
    crate::mem::filled(0u8, bytes)
}

/// The bytes of blocks `from..from + n` of a checkpoint body.
fn blocks(from: usize, n: usize) -> Option<core::ops::Range<usize>> {
    let start = from.checked_mul(BLOCK_SIZE)?;
    Some(start..from.checked_add(n)?.checked_mul(BLOCK_SIZE)?)
}

fn block_of(body: &mut [u8], i: usize) -> Option<&mut [u8; BLOCK_SIZE]> {
    body.get_mut(blocks(i, 1)?)?.try_into().ok()
}

impl Checkpoint {
    /// Read both packs and return the newest valid checkpoint.
    pub fn read_latest<D: BlockDevice + ?Sized>(dev: &D, sb: &Superblock) -> Result<Checkpoint> {
        let mut best: Option<Checkpoint> = None;
        let mut first_err = None;
        for pack in 0..2 {
            match Checkpoint::read_pack(dev, sb, pack) {
                Ok(cp) => {
                    if best.as_ref().is_none_or(|b| cp.seq > b.seq) {
                        best = Some(cp);
                    }
                }
                Err(e @ Error::Io(_)) => return Err(e),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        best.ok_or(first_err.unwrap_or(Error::corrupt("checkpoint (no valid pack)", 0)))
    }

    /// Read and check one pack.
    pub fn read_pack<D: BlockDevice + ?Sized>(
        dev: &D,
        sb: &Superblock,
        pack: u32,
    ) -> Result<Checkpoint> {
        let l = &sb.layout;
        let seed = sb.csum_seed();
        let start = l.cp_pack_start(pack);
        let mut hdr = RawCpHeader::new_box_zeroed().map_err(|_| Error::Errno(Errno::ENOMEM))?;
        dev.read_blocks(start, hdr.as_mut_bytes()).map_err(io)?;
        let (heads, nlogs) = hdr.verify(seed, l, pack, start)?;
        let bad = |what| Error::corrupt(what, start);
        let (nbm, sbm) = (hdr.nat_bitmap_blocks.get(), hdr.sut_bitmap_blocks.get());
        let (nsum, norph) = (hdr.summary_blocks.get(), hdr.orphan_blocks.get());
        let mut body = zeroed_blocks(hdr.body_blocks.get() as usize)?;
        // The body follows the header (the pack lies inside the checkpoint area).
        let body_start = start.checked_add(1).ok_or(bad("checkpoint body"))?;
        dev.read_blocks(body_start, &mut body).map_err(io)?;
        if csum::crc32(seed, &body) != hdr.body_crc.get() {
            return Err(bad("checkpoint body (checksum)"));
        }
        let logs: Vec<LogHead> = crate::mem::collect(heads.iter().take(nlogs).copied())?;
        // The body holds the NAT bitmap, the SUT bitmap, the summaries, then the orphan blocks;
        // verify() checked that their counts add up to its size.
        let (nbm, sbm, nsum, norph) = (nbm as usize, sbm as usize, nsum as usize, norph as usize);
        let bm = |from: usize, n: usize| -> Result<Vec<u8>> {
            let r = blocks(from, n).and_then(|r| body.get(r));
            crate::mem::to_vec(r.ok_or(bad("checkpoint body"))?)
        };
        let nat_bitmap = bm(0, nbm)?;
        let sut_bitmap = bm(nbm, sbm)?;
        let sum_start = nbm.checked_add(sbm).ok_or(bad("checkpoint body"))?;
        let orph_start = sum_start.checked_add(nsum).ok_or(bad("checkpoint body"))?;
        // Where body block idx lies on the device.
        let addr_of = |idx: usize| {
            body_start
                .checked_add(idx as u64)
                .ok_or(bad("checkpoint body"))
        };
        let mut summaries = Vec::new();
        for (idx, head) in (sum_start..).zip(logs.iter()) {
            let addr = addr_of(idx)?;
            let blk = block_of(&mut body, idx).ok_or(bad("checkpoint body"))?;
            crate::mem::push(
                &mut summaries,
                SummaryBlock::decode(blk, seed, addr, head.segno)?,
            )?;
        }
        let mut orphans = Vec::new();
        for idx in (orph_start..).take(norph) {
            let addr = addr_of(idx)?;
            let blk = block_of(&mut body, idx).ok_or(bad("checkpoint body"))?;
            let inos = RawOrphanBlock::decode(blk, seed, l, addr)?;
            crate::mem::extend(&mut orphans, inos.iter().map(|i| i.get()))?;
        }
        Ok(Checkpoint {
            seq: hdr.seq.get(),
            flags: hdr.flags.get(),
            nat_written: hdr.nat_written.get(),
            valid_blocks: hdr.valid_blocks.get(),
            valid_nodes: hdr.valid_nodes.get(),
            valid_inodes: hdr.valid_inodes.get(),
            free_segments: hdr.free_segments.get(),
            next_free_nid: hdr.next_free_nid.get(),
            next_generation: hdr.next_generation.get(),
            time: hdr.time.get(),
            logs,
            nat_bitmap,
            sut_bitmap,
            summaries,
            orphans,
        })
    }

    /// Write this checkpoint into pack `seq % 2`: body, then the header as the commit record.
    pub fn write<D: BlockDevice + ?Sized>(&mut self, dev: &D, sb: &Superblock) -> Result<()> {
        let l = &sb.layout;
        let seed = sb.csum_seed();
        let (nbm, sbm) = (
            l.nat_bitmap_blocks() as usize,
            l.sut_bitmap_blocks() as usize,
        );
        let nsum = self.summaries.len();
        let norph = self.orphans.len().div_ceil(ORPHANS_PER_BLOCK as usize);
        if norph > l.orphan_blocks as usize
            || nsum != l.log_count as usize
            || self.logs.len() != nsum
        {
            return Err(Error::Errno(Errno::ENOSPC));
        }
        // Counts of a checkpoint area's blocks (its layout was validated): they fit.
        let sum_start = nbm.checked_add(sbm).ok_or_else(invariant)?;
        let orph_start = sum_start.checked_add(nsum).ok_or_else(invariant)?;
        let body_blocks = orph_start.checked_add(norph).ok_or_else(invariant)?;
        let mut body = zeroed_blocks(body_blocks)?;
        // Each bitmap goes into its area, cut to it if longer.
        for (bitmap, area) in [
            (&self.nat_bitmap, blocks(0, nbm)),
            (&self.sut_bitmap, blocks(nbm, sbm)),
        ] {
            let dst = area.and_then(|a| body.get_mut(a)).ok_or_else(invariant)?;
            let n = bitmap.len().min(dst.len());
            if let (Some(dst), Some(src)) = (dst.get_mut(..n), bitmap.get(..n)) {
                dst.copy_from_slice(src);
            }
        }
        for (idx, s) in (sum_start..).zip(self.summaries.iter_mut()) {
            if let Some(blk) = block_of(&mut body, idx) {
                blk.copy_from_slice(s.seal(seed));
            }
        }
        for (idx, chunk) in (orph_start..).zip(self.orphans.chunks(ORPHANS_PER_BLOCK as usize)) {
            let Some(blk) = block_of(&mut body, idx) else {
                continue;
            };
            let raw: &mut RawOrphanBlock = zerocopy::transmute_mut!(&mut *blk);
            raw.count = (chunk.len() as u32).into();
            for (slot, &ino) in raw.inos.iter_mut().zip(chunk) {
                *slot = ino.into();
            }
            csum::seal(seed, MAGIC_ORPHAN, blk);
        }

        let mut hdr = RawCpHeader::new_box_zeroed().map_err(|_| Error::Errno(Errno::ENOMEM))?;
        hdr.seq = self.seq.into();
        hdr.body_blocks = (body_blocks as u32).into();
        hdr.body_crc = csum::crc32(seed, &body).into();
        hdr.flags = self.flags.into();
        hdr.nat_bitmap_blocks = (nbm as u32).into();
        hdr.sut_bitmap_blocks = (sbm as u32).into();
        hdr.summary_blocks = (nsum as u32).into();
        hdr.orphan_blocks = (norph as u32).into();
        hdr.nat_written = self.nat_written.into();
        hdr.valid_blocks = self.valid_blocks.into();
        hdr.valid_nodes = self.valid_nodes.into();
        hdr.valid_inodes = self.valid_inodes.into();
        hdr.free_segments = self.free_segments.into();
        hdr.next_free_nid = self.next_free_nid.into();
        hdr.next_generation = self.next_generation.into();
        hdr.time = self.time.into();
        for (slot, head) in hdr
            .logs
            .iter_mut()
            .zip(self.logs.iter().map(Some).chain(core::iter::repeat(None)))
        {
            *slot = match head {
                Some(h) => RawLogHead {
                    segno: h.segno.into(),
                    next_off: h.next_off.into(),
                },
                None => RawLogHead {
                    segno: NO_SEGMENT.into(),
                    next_off: 0.into(),
                },
            };
        }
        let bytes: &mut [u8; BLOCK_SIZE] = zerocopy::transmute_mut!(&mut *hdr);
        csum::seal(seed, MAGIC_CHECKPOINT, bytes);

        let start = l.cp_pack_start((self.seq % 2) as u32);
        let body_start = start.checked_add(1).ok_or_else(invariant)?;
        dev.write_blocks(body_start, &body, WriteFlags::NONE)
            .map_err(io)?;
        dev.write_blocks(start, bytes, WriteFlags::COMMIT)
            .map_err(io)?;
        Ok(())
    }

    /// An empty bitmap body for a fresh volume.
    pub fn empty_bitmaps(sb: &Superblock) -> Result<(Vec<u8>, Vec<u8>)> {
        let l = &sb.layout;
        // A bitmap block per 32768 table blocks: a few blocks at most.
        let bytes = |n: u32| (n as usize).saturating_mul(BLOCK_SIZE);
        Ok((
            crate::mem::filled(0u8, bytes(l.nat_bitmap_blocks()))?,
            crate::mem::filled(0u8, bytes(l.sut_bitmap_blocks()))?,
        ))
    }
}

// ---- committing a checkpoint ----------------------------------------------------------------

/// A UUID in its usual text form.
struct Uuid<'a>(&'a [u8; 16]);

impl core::fmt::Display for Uuid<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

use crate::format::layout::NEW_ADDR;
use crate::fs::Volume;
use crate::log::NODE_LOG;

impl<D: BlockDevice> Volume<D> {
    /// Write everything and commit a checkpoint. On failure the volume stops accepting changes:
    /// the last committed checkpoint stays what the device holds. Except for want of memory
    /// (ENOMEM): then nothing the committed checkpoint names was touched (see
    /// `commit_checkpoint`), the volume carries on, and the next checkpoint tries again.
    pub(crate) fn checkpoint(&mut self, clean: bool) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        if self.failed {
            return Err(Error::Errno(Errno::EIO));
        }
        if !self.checkpoint_fits() {
            // Nothing is written yet: refuse, and keep the volume (a later call, after the
            // cleaner ran, may commit). `ensure_space` before every change keeps this from
            // happening; it guards against an estimate that fell short.
            // Rate-limited together with the corruption lines (every sync would log it).
            if crate::error::may_log(&mut self.last_corrupt_log) {
                bento_runtime::warn!(
                    "logfs: volume {}: no room in the logs for a checkpoint; ENOSPC",
                    Uuid(&self.sb.uuid)
                );
            }
            return Err(Error::Errno(Errno::ENOSPC));
        }
        let was_busy = core::mem::replace(&mut self.busy, true);
        let r = self.commit_checkpoint(clean);
        self.busy = was_busy;
        match r {
            Err(Error::Errno(Errno::ENOMEM)) => {
                // Nodes it wrote are not fsync records: fsync must checkpoint until one commits.
                self.since_cp_lost = Some(self.seq);
                if crate::error::may_log(&mut self.last_oom_log) {
                    bento_runtime::warn!(
                        "logfs: volume {}: checkpoint postponed: out of memory",
                        Uuid(&self.sb.uuid)
                    );
                }
            }
            Err(e) => self.fail("checkpoint", e),
            Ok(()) => {}
        }
        r
    }

    /// A write of `what` failed: from now on the volume writes nothing (the device keeps the
    /// last checkpoint and the fsyncs before it) and refuses changes with EROFS. One log line,
    /// naming the volume by its UUID (the runtime gives no device name).
    pub(crate) fn fail(&mut self, what: &str, e: Error) {
        if !self.failed {
            bento_runtime::error!(
                "logfs: volume {}: {what} failed ({e}); read-only until remounted \
                 (checkpoint {} and the fsyncs before stay on the device)",
                Uuid(&self.sb.uuid),
                self.seq
            );
        }
        self.failed = true;
    }

    /// Shut down (`FS_IOC_GOINGDOWN`): commit what `how` asks, then write nothing more, for
    /// good (until remounted): every write path's caller is refused by `LogFs::run`, unmount
    /// commits nothing, and the next mount recovers the last checkpoint and the fsyncs after
    /// it, as after a crash. A flush that fails is logged (`fail`) and the shutdown happens
    /// anyway. Nothing of it is on the device.
    pub fn shutdown(&mut self, how: Shutdown) -> Result<()> {
        if self.shut_down {
            return Ok(());
        }
        match how {
            // The front end wrote back its caches first (FullSync) or not (MetaFlush): either
            // way a checkpoint commits what this volume holds, names and nodes included.
            Shutdown::FullSync | Shutdown::MetaFlush => {
                // Errors are the volume's (`fail` logged one; ENOSPC and ENOMEM leave the
                // last checkpoint and the fsyncs before it).
                let _ = self.sync();
            }
            Shutdown::NoLogFlush => {}
        }
        self.shut_down = true;
        bento_runtime::info!(
            "logfs: volume {}: shut down ({how:?}); checkpoint {} and the fsyncs before it stay \
             on the device; nothing more is written",
            Uuid(&self.sb.uuid),
            self.seq
        );
        Ok(())
    }

    fn commit_checkpoint(&mut self, clean: bool) -> Result<()> {
        // Directory blocks first: writing them changes the nodes that point at them.
        self.flush_dirs()?;
        self.write_dirty_nodes()?;
        let (dev, layout) = (&self.dev, &self.layout);
        for log in &mut self.logs {
            log.flush(dev, layout)?;
        }
        // From here on the tables' shadow copies are written: want of memory before the
        // checkpoint commits puts the copy bits back, so the next checkpoint writes the same
        // (uncommitted) copies again and never the ones the committed checkpoint names.
        let copies = (self.sut.copies()?, self.nat.copies()?);
        let r = self.commit_tables(clean);
        if r == Err(Error::Errno(Errno::ENOMEM)) {
            self.sut.restore_copies(&copies.0);
            self.nat.restore_copies(copies.1);
        }
        r
    }

    /// The rest of `commit_checkpoint`: the tables, then the checkpoint itself. Fails for
    /// memory only before the checkpoint is written.
    fn commit_tables(&mut self, clean: bool) -> Result<()> {
        self.sut.write_dirty(&self.dev, &self.layout, self.seed)?;
        self.nat.write_dirty(&self.dev, &self.layout, self.seed)?;

        let (mut nat_bitmap, mut sut_bitmap) = Checkpoint::empty_bitmaps(&self.sb)?;
        self.nat.copy_bitmap(&mut nat_bitmap);
        self.sut.copy_bitmap(&mut sut_bitmap);
        let mut summaries = Vec::new();
        for l in &self.logs {
            let mut s = SummaryBlock::new(l.segno, l.kind)?;
            s.as_mut_bytes().copy_from_slice(l.summary.as_bytes());
            crate::mem::push(&mut summaries, s)?;
        }
        let mut orphans = crate::mem::collect(self.orphans.iter().copied())?;
        orphans.sort_unstable();
        let room = (self.layout.orphan_blocks as usize)
            .saturating_mul(crate::format::layout::ORPHANS_PER_BLOCK as usize);
        if orphans.len() > room {
            bento_runtime::warn!(
                "logfs: {} open unlinked files; only {room} survive a crash",
                orphans.len()
            );
            orphans.truncate(room);
        }
        // A sequence number read from disk at its largest cannot be followed.
        let seq = self
            .seq
            .checked_add(1)
            .ok_or(Error::corrupt("checkpoint (sequence number exhausted)", 0))?;
        let mut cp = Checkpoint {
            seq,
            flags: if clean { CP_CLEAN } else { 0 },
            nat_written: self.nat.written(),
            valid_blocks: self.valid_blocks,
            valid_nodes: self.valid_nodes,
            valid_inodes: self.valid_inodes,
            free_segments: self.sut.free_segments(),
            next_free_nid: self.nat.next_free_hint(),
            next_generation: self.next_generation,
            time: crate::fs::now().sec,
            logs: crate::mem::collect(self.logs.iter().map(|l| LogHead {
                segno: l.segno,
                next_off: l.next_off,
            }))?,
            nat_bitmap,
            sut_bitmap,
            summaries,
            orphans,
        };
        cp.write(&self.dev, &self.sb)?;
        self.seq = cp.seq;
        for l in &mut self.logs {
            l.cp_off = l.next_off;
        }
        self.dirty = false;
        self.since_cp.clear();
        self.last_checkpoint = cp.time;
        self.stats.checkpoints = self.stats.checkpoints.saturating_add(1);
        let freed = self.sut.commit();
        self.nat.commit();
        if self.options.discard {
            for start in freed
                .into_iter()
                .filter_map(|s| self.layout.segment_start(s))
            {
                let _ = self.dev.discard(u64::from(start), u64::from(SEG_BLOCKS));
            }
        }
        Ok(())
    }

    /// Append every dirty node to the node log and point the NAT at the new copies.
    fn write_dirty_nodes(&mut self) -> Result<()> {
        let nids = self.nodes.take_dirty()?;
        self.write_nodes(&nids, 0)
    }

    /// Append nodes to the node log with header `flags`, chained by `next_addr`, and point the
    /// NAT at the new copies. The nodes are clean afterwards.
    pub(crate) fn write_nodes(&mut self, nids: &[u32], flags: u8) -> Result<()> {
        for &nid in nids {
            self.log_room(NODE_LOG)?;
            let next = self.node_log_next()?;
            let old = self.nat.get(&self.dev, &self.layout, self.seed, nid)?;
            let (seq, layout, seed) = (self.seq, self.layout, self.seed);
            let Some(node) = self.nodes.get_for_write(nid) else {
                continue;
            };
            node.header.flags = flags;
            let log = self.logs.get_mut(NODE_LOG).ok_or_else(invariant)?;
            let addr = log.append(&layout, node.seal(seed, seq, next), nid, 0)?;
            // Clean once staged: a failed append leaves it dirty. (The NAT block is cached:
            // nat.get above read it, so nat.set below allocates nothing.)
            self.nodes.clean(nid);
            if let Some((segno, off)) = layout.locate(addr) {
                self.sut.set_valid(segno, off, crate::fs::now().sec);
            }
            self.nat
                .set(&self.dev, &self.layout, self.seed, nid, addr)?;
            if old != NEW_ADDR {
                self.invalidate(old);
            }
            self.stats.node_blocks_written = self.stats.node_blocks_written.saturating_add(1);
        }
        Ok(())
    }
}
