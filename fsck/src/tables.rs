//! Pass 3: the node address table and the segment usage table, current copies only.

use bento_api::ks::block::BlockDevice;
use logfs::BLOCK_SIZE;
use logfs::format::header::{self as csum, MAGIC_NAT, MAGIC_SUT};
use logfs::format::layout::{NAT_ENTRIES_PER_BLOCK, SUT_ENTRIES_PER_BLOCK};
use logfs::format::tables::{
    LOG_NONE, NatEntryProblem, RawNatBlock, RawSutBlock, SegMap, SutEntryProblem, copy_bit,
    nat_entry_problem,
};

use crate::checker::{Fsck, NAT_BAD, SutEnt};
use crate::report::{Issue, Object};
use crate::util::{Res, try_vec};

/// Table blocks read per request (both copies of each).
const CHUNK: u32 = 128;

impl<D: BlockDevice + ?Sized> Fsck<'_, D> {
    /// Read the current copy of `count` shadow-paged table blocks from `start`, `CHUNK` at a
    /// time, and hand each to `f` with its index and address.
    fn each_table_block(
        &mut self,
        start: u64,
        count: u32,
        copies: &[u8],
        mut f: impl FnMut(&mut Self, u32, u64, &[u8; BLOCK_SIZE]),
    ) -> Res<()> {
        let mut buf = try_vec(2 * CHUNK as usize * BLOCK_SIZE, 0u8, "table buffer")?;
        let mut first = 0u32;
        while first < count {
            let n = CHUNK.min(count - first);
            let addr = start + 2 * u64::from(first);
            let len = 2 * n as usize * BLOCK_SIZE;
            self.c.disk.read(addr, &mut buf[..len])?;
            for i in 0..n {
                let index = first + i;
                let copy = usize::from(copy_bit(copies, index as usize));
                let at = (2 * i as usize + copy) * BLOCK_SIZE;
                let Some(block) = buf
                    .get(at..at + BLOCK_SIZE)
                    .and_then(|b| <&[u8; BLOCK_SIZE]>::try_from(b).ok())
                else {
                    continue;
                };
                f(self, index, addr + 2 * u64::from(i) + copy as u64, block);
            }
            first += n;
        }
        Ok(())
    }

    pub(crate) fn load_nat(&mut self) -> Res<()> {
        let limit = self.v.nid_limit;
        self.nat = try_vec(limit as usize, 0u32, "node address table")?;
        let bitmap = std::mem::take(&mut self.v.cp.nat_bitmap);
        let start = u64::from(self.v.layout.nat_start);
        let r = self.each_table_block(start, self.v.nat_written, &bitmap, |f, index, addr, b| {
            f.nat_block(index, addr, b)
        });
        self.v.cp.nat_bitmap = bitmap;
        r?;
        // Node blocks are referenced through the NAT.
        for nid in 1..limit {
            let addr = self.nat_entry(nid);
            if addr == 0 || addr == NAT_BAD {
                continue;
            }
            self.counts.nodes += 1;
            if let Some((segno, off)) = self.v.layout.locate(addr)
                && self.node_refs.test_and_set(segno, off)
            {
                self.c
                    .err(Object::Nid { nid }, Issue::NatSharedBlock { addr });
            }
        }
        Ok(())
    }

    fn nat_block(&mut self, index: u32, addr: u64, block: &[u8; BLOCK_SIZE]) {
        let base = index as usize * NAT_ENTRIES_PER_BLOCK as usize;
        if !csum::is_valid(self.v.seed, MAGIC_NAT, block) {
            self.c
                .err(Object::NatBlock { index, addr }, Issue::BadChecksum);
            for e in self
                .nat
                .iter_mut()
                .skip(base)
                .take(NAT_ENTRIES_PER_BLOCK as usize)
            {
                *e = NAT_BAD;
            }
            return;
        }
        let raw: &RawNatBlock = zerocopy::transmute_ref!(block);
        for (i, e) in raw.entries.iter().enumerate() {
            let nid = (base + i) as u32;
            let Some(slot) = self.nat.get_mut(base + i) else {
                break;
            };
            let a = e.get();
            if a == 0 {
                continue;
            }
            let issue = nat_entry_problem(&self.v.layout, nid, a).map(|p| match p {
                NatEntryProblem::NidZero => Issue::NatEntryNidZero { addr: a },
                NatEntryProblem::Unwritten => Issue::NatEntryNewAddr,
                NatEntryProblem::OutsideMain => Issue::NatEntryOutsideMain { addr: a },
            });
            match issue {
                Some(issue) => {
                    *slot = if nid == 0 { 0 } else { NAT_BAD };
                    self.c.err(Object::Nid { nid }, issue);
                }
                None => *slot = a,
            }
        }
    }

    pub(crate) fn load_sut(&mut self) -> Res<()> {
        let l = self.v.layout;
        let unknown = SutEnt {
            known: false,
            valid: 0,
            log: LOG_NONE,
            map: SegMap::ZERO,
        };
        self.sut = try_vec(l.main_segments as usize, unknown, "segment usage table")?;
        let bitmap = std::mem::take(&mut self.v.cp.sut_bitmap);
        let r = self.each_table_block(
            u64::from(l.sut_start),
            l.sut_blocks,
            &bitmap,
            |f, index, addr, b| f.sut_block(index, addr, b),
        );
        self.v.cp.sut_bitmap = bitmap;
        r
    }

    fn sut_block(&mut self, index: u32, addr: u64, block: &[u8; BLOCK_SIZE]) {
        if !csum::is_valid(self.v.seed, MAGIC_SUT, block) {
            self.c
                .err(Object::SutBlock { index, addr }, Issue::BadChecksum);
            return;
        }
        let raw: &RawSutBlock = zerocopy::transmute_ref!(block);
        for (i, e) in raw.entries.iter().enumerate() {
            let segno = index as usize * SUT_ENTRIES_PER_BLOCK as usize + i;
            if segno >= self.sut.len() {
                break;
            }
            let (map, valid) = (e.map(), e.valid.get());
            let obj = Object::Segment {
                segno: segno as u32,
            };
            for p in e.problems() {
                let issue = match p {
                    SutEntryProblem::Count { recorded, counted } => {
                        Issue::SutValidCount { recorded, counted }
                    }
                    SutEntryProblem::UnknownLog { log } => Issue::SutBadLog { log },
                    SutEntryProblem::LiveWithoutLog { valid } => Issue::SutLiveWithoutLog { valid },
                };
                self.c.err(obj.clone(), issue);
            }
            if let Some(s) = self.sut.get_mut(segno) {
                *s = SutEnt {
                    known: true,
                    valid,
                    log: e.log,
                    map,
                };
            }
        }
    }
}
