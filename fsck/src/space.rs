//! Pass 6 (segment usage against the blocks referenced, checkpoint counters) and pass 7 (segment
//! summaries name the owner of every live block).

use std::collections::HashMap;

use bento_api::ks::block::BlockDevice;
use logfs::format::layout::SEG_BLOCKS;
use logfs::format::node::{INODE_ADDRS, KIND_DIRECT, KIND_INODE, NODE_ADDRS};
use logfs::format::summary::SummaryBlock;
use logfs::format::tables::{LOG_DATA, LOG_NODE, LOG_NONE, SegMap};

use crate::checker::{Fsck, NAT_BAD};
use crate::report::{Issue, Object};
use crate::tree::NodeBuf;
use crate::util::{Res, first_and_count};

/// Bits for the offsets at or past `from`.
fn mask_from(from: u32) -> SegMap {
    let mut m = SegMap::ZERO;
    if let Some(tail) = m.get_mut(from as usize..) {
        tail.fill(true);
    }
    m
}

/// Individual summary findings per segment before they are only counted.
const SUMMARY_FINDINGS_PER_SEGMENT: u32 = 8;
/// Nodes kept while checking data block owners.
const NODE_CACHE: usize = 256;

impl<D: BlockDevice + ?Sized> Fsck<'_, D> {
    pub(crate) fn space(&mut self) {
        let logs = self.v.cp.logs.clone();
        let mut free = 0u64;
        for segno in 0..self.v.layout.main_segments {
            let Some(ent) = self.sut.get(segno as usize).copied() else {
                break;
            };
            let nodes = self.node_refs.map(segno);
            let data = self.data_refs.map(segno);
            let refs = nodes | data;
            let (nn, nd) = (self.node_refs.count(segno), self.data_refs.count(segno));
            let obj = Object::Segment { segno };
            let active = logs.iter().position(|h| h.segno == segno);
            if nn > 0 && nd > 0 {
                self.c.err(
                    obj.clone(),
                    Issue::MixedSegment {
                        nodes: nn,
                        data: nd,
                    },
                );
            }
            let content = if nn > 0 {
                Some(LOG_NODE)
            } else if nd > 0 {
                Some(LOG_DATA)
            } else {
                None
            };
            if ent.known {
                if let Some((first, count)) = first_and_count(&(ent.map & !refs)) {
                    self.c
                        .err(obj.clone(), Issue::LiveNotReferenced { count, first });
                }
                if let Some((first, count)) = first_and_count(&(refs & !ent.map)) {
                    self.c
                        .err(obj.clone(), Issue::ReferencedNotLive { count, first });
                }
                if let Some(content) = content
                    && ent.log != content
                    && ent.log <= LOG_DATA
                {
                    self.c.err(
                        obj.clone(),
                        Issue::SegmentLogMismatch {
                            sut_log: ent.log,
                            content,
                        },
                    );
                }
                if ent.valid == 0 && active.is_none() {
                    free += 1;
                }
            }
            let Some(i) = active else {
                continue;
            };
            let head = logs[i];
            let lobj = Object::Log {
                index: i as u32,
                segno,
            };
            let kind = if i == 0 { LOG_NODE } else { LOG_DATA };
            if ent.known && ent.log != kind && ent.log != LOG_NONE && ent.log <= LOG_DATA {
                self.c.err(
                    lobj.clone(),
                    Issue::SegmentLogMismatch {
                        sut_log: ent.log,
                        content: kind,
                    },
                );
            }
            if let Some(content) = content
                && content != kind
            {
                self.c.err(
                    lobj.clone(),
                    Issue::SegmentLogMismatch {
                        sut_log: kind,
                        content,
                    },
                );
            }
            let used = if ent.known { refs | ent.map } else { refs };
            if let Some((first, count)) = first_and_count(&(used & mask_from(head.next_off))) {
                self.c.err(
                    lobj,
                    Issue::PastLogPosition {
                        count,
                        first,
                        next_off: head.next_off,
                    },
                );
            }
        }
        self.c.report.stats.free_segments = free;

        let cp = &self.v.cp;
        let obj = Object::Checkpoint { seq: cp.seq };
        if u64::from(cp.free_segments) > free {
            let recorded = cp.free_segments;
            self.c.warn(
                obj.clone(),
                Issue::FreeSegments {
                    recorded,
                    counted: free as u32,
                },
            );
        }
        let inodes = self.inodes.values().filter(|i| i.ok).count() as u64;
        let checks = [
            (
                "valid_blocks",
                cp.valid_blocks,
                self.counts.data_blocks + self.counts.nodes,
            ),
            ("valid_nodes", u64::from(cp.valid_nodes), self.counts.nodes),
            ("valid_inodes", u64::from(cp.valid_inodes), inodes),
        ];
        let hint = cp.next_free_nid;
        for (field, recorded, counted) in checks {
            if recorded != counted {
                self.c.err(
                    obj.clone(),
                    Issue::CounterMismatch {
                        field,
                        recorded,
                        counted,
                    },
                );
            }
        }
        if let Some(free_nid) = (1..hint.min(self.v.nid_limit)).find(|&n| self.nat_entry(n) == 0) {
            self.c.warn(obj, Issue::AllocationHint { hint, free_nid });
        }
    }

    pub(crate) fn summaries(&mut self) -> Res<()> {
        let mut cache: HashMap<u32, NodeBuf> = HashMap::new();
        for segno in 0..self.v.layout.main_segments {
            let nodes = self.node_refs.map(segno);
            let data = self.data_refs.map(segno);
            if nodes.not_any() && data.not_any() {
                continue;
            }
            let active = self.v.cp.logs.iter().position(|h| h.segno == segno);
            let owners: Vec<(u32, u16)>;
            let log: u8;
            match active.and_then(|i| self.v.cp.summaries.get(i)) {
                Some(s) => {
                    owners = (0..SEG_BLOCKS)
                        .map(|o| s.owner(o).unwrap_or((0, 0)))
                        .collect();
                    log = s.log;
                }
                None => {
                    let addr = self.v.layout.ssa_addr(segno);
                    let block = self.c.disk.read_block(addr)?;
                    match SummaryBlock::decode(&block, self.v.seed, addr, segno) {
                        Ok(s) => {
                            owners = (0..SEG_BLOCKS)
                                .map(|o| s.owner(o).unwrap_or((0, 0)))
                                .collect();
                            log = s.log;
                        }
                        Err(e) => {
                            self.c.err(
                                Object::Segment { segno },
                                Issue::SummaryInvalid {
                                    addr,
                                    reason: crate::volume::reason(&e),
                                },
                            );
                            continue;
                        }
                    }
                }
            }
            let expected = if nodes.any() { LOG_NODE } else { LOG_DATA };
            if log != LOG_NONE && log != expected {
                self.c.err(
                    Object::Segment { segno },
                    Issue::SummaryLogType {
                        expected,
                        found: log,
                    },
                );
            }
            let start = self.v.layout.main_start + segno * SEG_BLOCKS;
            let mut wrong = 0u32;
            for (off, is_node) in nodes
                .iter_ones()
                .map(|o| (o as u32, true))
                .chain(data.iter_ones().map(|o| (o as u32, false)))
            {
                let addr = start + off;
                let (nid, ofs) = owners.get(off as usize).copied().unwrap_or((0, 0));
                let detail = if is_node {
                    self.node_owner(nid, ofs, addr)
                } else {
                    self.data_owner(&mut cache, nid, ofs, addr)?
                };
                let Some(detail) = detail else {
                    continue;
                };
                wrong += 1;
                if wrong <= SUMMARY_FINDINGS_PER_SEGMENT {
                    self.c.err(
                        Object::Summary { segno, off, addr },
                        Issue::SummaryOwner {
                            found_nid: nid,
                            found_ofs: ofs,
                            detail,
                        },
                    );
                }
            }
            if wrong > SUMMARY_FINDINGS_PER_SEGMENT {
                self.c.err(
                    Object::Segment { segno },
                    Issue::Corrupt {
                        reason: format!(
                            "{} more summary entries name the wrong owner",
                            wrong - SUMMARY_FINDINGS_PER_SEGMENT
                        ),
                    },
                );
            }
        }
        Ok(())
    }

    /// Why the summary entry `(nid, ofs)` of node block `addr` is wrong, if it is.
    fn node_owner(&self, nid: u32, ofs: u16, addr: u32) -> Option<String> {
        let entry = self.nat_entry(nid);
        if nid == 0 || entry != addr {
            let target = if nid == 0 || entry == 0 {
                "that nid is free".to_string()
            } else if entry == NAT_BAD {
                "that nid's table entry is unusable".to_string()
            } else {
                format!("that nid maps to block {entry}")
            };
            return Some(target);
        }
        (ofs != 0).then(|| "node blocks have slot 0".to_string())
    }

    /// Why the summary entry `(holder, ofs)` of data block `addr` is wrong, if it is.
    fn data_owner(
        &mut self,
        cache: &mut HashMap<u32, NodeBuf>,
        holder: u32,
        ofs: u16,
        addr: u32,
    ) -> Res<Option<String>> {
        match self.nat_entry(holder) {
            _ if holder == 0 => return Ok(Some("that nid is invalid".into())),
            0 => return Ok(Some("that nid is free".into())),
            NAT_BAD => return Ok(Some("that nid's table entry is unusable".into())),
            _ => {}
        }
        if !self.reachable.contains(holder) {
            return Ok(Some("that node is not part of any file".into()));
        }
        if !cache.contains_key(&holder) {
            if cache.len() >= NODE_CACHE {
                cache.clear();
            }
            match self.load_node(holder)? {
                Ok(b) => {
                    cache.insert(holder, b);
                }
                Err(issue) => return Ok(Some(format!("that node is unreadable ({issue})"))),
            }
        }
        let Some(buf) = cache.get(&holder) else {
            return Ok(None);
        };
        let n = buf.node();
        let ofs = usize::from(ofs);
        let slot = match n.kind() {
            KIND_INODE if n.inode().is_inline() => {
                return Ok(Some("that inode keeps its data inline".into()));
            }
            KIND_INODE => n.inode().addrs.get(ofs).filter(|_| ofs < INODE_ADDRS),
            KIND_DIRECT => n.slots().get(ofs).filter(|_| ofs < NODE_ADDRS),
            _ => return Ok(Some("that node holds no data addresses".into())),
        };
        Ok(match slot.map(|a| a.get()) {
            None => Some("that slot is out of range".into()),
            Some(a) if a == addr => None,
            Some(a) => Some(format!("that slot holds block {a}")),
        })
    }
}
