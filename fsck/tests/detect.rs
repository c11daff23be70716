//! Targeted damage to a valid volume, with checksums fixed so only the semantic checks can
//! catch it: each must be reported as the right finding.

// The shared image editor names the runtime's API crate as logfs does.
extern crate bento_api as bento_runtime;

mod common;
#[path = "../../logfs/tests/common/image.rs"]
mod image;

use bento_api::fs::{FileSystem, ROOT_INO};
use common::*;
use fsck::{Finding, Issue, Object, Report};
use image::Image;
use logfs::BLOCK_SIZE;
use logfs::format::header::{MAGIC_CHECKPOINT, MAGIC_NAT, MAGIC_SUMMARY, MAGIC_SUT};
use logfs::format::node::Node;
use zerocopy::FromBytes;

/// The volume with detect's own helpers over the shared image editor.
struct Vol {
    img: Image,
}

impl std::ops::Deref for Vol {
    type Target = Image;
    fn deref(&self) -> &Image {
        &self.img
    }
}

/// Inode numbers of the populated volume's interesting files.
struct Inos {
    inline_max: u32,
    sparse: u32,
    big: u32,
    sub: u32,
    longsym: u32,
}

fn setup() -> (Vol, Inos) {
    let dev = new_device(64);
    let fs = mount(&dev);
    populate(&fs);
    let ino = |dir: u64, name: &[u8]| fs.lookup(&R, dir, name).unwrap().attr.ino;
    let d1 = ino(ROOT_INO, b"dir1");
    let d3 = ino(ROOT_INO, b"dir3");
    let inos = Inos {
        inline_max: ino(ROOT_INO, b"inline-max") as u32,
        sparse: ino(ROOT_INO, b"sparse") as u32,
        big: ino(ino(d3, b"deep-moved"), b"big") as u32,
        sub: ino(d1, b"sub") as u32,
        longsym: ino(d3, b"longsym") as u32,
    };
    unmount(fs);
    let r = check(&dev);
    assert!(r.is_clean() && r.warnings == 0);
    (
        Vol {
            img: Image::open(dev),
        },
        inos,
    )
}

impl Vol {
    fn inode(&self, ino: u32) -> Vec<u8> {
        self.read(self.node_addr(ino))
    }

    fn current_pack_start(&self) -> u64 {
        self.sb.layout.cp_pack_start((self.cp.seq % 2) as u32)
    }

    /// Recompute the current checkpoint's body CRC after its body changed.
    fn fix_cp_body(&self) {
        self.img.fix_cp_body(self.current_pack());
    }

    fn check(&self) -> Report {
        check(&self.dev)
    }
}

#[track_caller]
fn expect(r: &Report, what: &str, pred: impl Fn(&Finding) -> bool) {
    if !r.errors().any(pred) {
        dump(r);
        panic!("expected a finding: {what}");
    }
}

#[test]
fn wrong_link_count() {
    let (v, i) = setup();
    v.edit_inode(i.inline_max, |n| n.nlink = 5.into());
    let r = v.check();
    expect(&r, "link count", |f| {
        f.object == Object::Inode { ino: i.inline_max }
            && f.issue
                == Issue::LinkCount {
                    recorded: 5,
                    counted: 1,
                }
    });
    assert!(r.errors().any(|f| f.to_string()
        == format!(
            "error: inode {}: link count is 5, should be 1",
            i.inline_max
        )));
}

#[test]
fn wrong_entry_type() {
    let (v, i) = setup();
    v.edit_entry(ROOT_INO as u32, b"inline-max", |d, s| {
        d.dentries[s].kind = 4
    });
    expect(
        &v.check(),
        "entry type",
        |f| matches!(f.issue, Issue::EntryType { ino, entry: 4, inode: 8 } if ino == i.inline_max),
    );
}

#[test]
fn wrong_entry_hash_and_free_target() {
    let (v, _) = setup();
    v.edit_entry(ROOT_INO as u32, b"inline-max", |d, s| {
        d.dentries[s].hash = (d.dentries[s].hash.get() ^ 1).into()
    });
    v.edit_entry(ROOT_INO as u32, b"tiny2", |d, s| {
        d.dentries[s].ino = 16000.into()
    });
    let r = v.check();
    expect(&r, "hash", |f| matches!(f.issue, Issue::EntryHash { .. }));
    expect(
        &r,
        "free target",
        |f| matches!(&f.issue, Issue::EntryTarget { ino: 16000, why } if **why == Issue::NodeNotAllocated),
    );
}

#[test]
fn removed_entry_leaves_a_disconnected_inode() {
    let (v, i) = setup();
    v.edit_entry(ROOT_INO as u32, b"inline-max", |d, s| {
        d.bitmap[s / 8] &= !(1 << (s % 8));
        if d.bitmap.iter().all(|b| *b == 0) {
            panic!("test needs a block with other entries");
        }
    });
    let r = v.check();
    expect(&r, "disconnected", |f| {
        f.object == Object::Inode { ino: i.inline_max }
            && matches!(f.issue, Issue::Disconnected { nlink: 1 })
    });
}

#[test]
fn wrong_block_count_and_parent() {
    let (v, i) = setup();
    v.edit_inode(i.big, |n| n.blocks = (n.blocks.get() + 1).into());
    v.edit_inode(i.sub, |n| n.parent = 7.into());
    let r = v.check();
    expect(&r, "blocks", |f| {
        f.object == Object::Inode { ino: i.big } && matches!(f.issue, Issue::BlocksMismatch { .. })
    });
    expect(&r, "parent", |f| {
        f.object == Object::Inode { ino: i.sub }
            && matches!(f.issue, Issue::DirParent { recorded: 7, .. })
    });
}

/// More blocks than the volume holds (mount refuses the inode; the mount fuzzer's first find,
/// an overflow in getattr): reported as the count the walk disagrees with.
#[test]
fn block_count_past_the_volume() {
    let (v, i) = setup();
    v.edit_inode(i.inline_max, |n| n.blocks = (u64::MAX - 70).into());
    let r = v.check();
    expect(&r, "blocks", |f| {
        f.object == Object::Inode { ino: i.inline_max }
            && matches!(
                f.issue,
                Issue::BlocksMismatch {
                    recorded: 0xffff_ffff_ffff_ffb9,
                    counted: 0
                }
            )
    });
}

#[test]
fn block_used_twice() {
    let (v, i) = setup();
    v.edit_inode(i.big, |n| n.addrs[1] = n.addrs[0]);
    let r = v.check();
    expect(&r, "duplicate", |f| {
        matches!(f.issue, Issue::BlockUsedTwice { by_node: false, .. })
    });
    expect(&r, "orphaned live block", |f| {
        matches!(f.issue, Issue::LiveNotReferenced { count: 1, .. })
    });
}

#[test]
fn index_node_with_wrong_offset() {
    let (v, i) = setup();
    let raw = v.inode(i.sparse);
    let nid = Node::ref_from_bytes(&raw[..]).unwrap().inode().nids[1].get();
    assert_ne!(nid, 0);
    v.edit_node(nid, |n| n.header.offset = 7.into());
    expect(&v.check(), "offset", |f| {
        f.object
            == (Object::IndexNode {
                ino: i.sparse,
                nid,
                offset: 2,
            })
            && f.issue
                == Issue::NodeWrongOffset {
                    expected: 2,
                    found: 7,
                }
    });
}

#[test]
fn inode_field_limits() {
    let (v, i) = setup();
    v.edit_inode(i.inline_max, |n| n.size = 5000.into());
    v.edit_inode(i.longsym, |n| n.size = 0.into());
    let r = v.check();
    expect(&r, "inline size", |f| {
        matches!(f.issue, Issue::InlineTooLarge { size: 5000, .. })
    });
    expect(&r, "symlink size", |f| {
        matches!(f.issue, Issue::SymlinkSize { size: 0 })
    });
}

#[test]
fn usage_table_and_counters() {
    let (v, _) = setup();
    // Segment 0, block 0 (the root's first node block, long dead) marked live; the
    // checkpoint's block count off by one.
    let l = v.sb.layout;
    let copy = v.cp.sut_bitmap[0] & 1 != 0;
    v.edit(l.sut_copy_addr(0, copy), MAGIC_SUT, |b| {
        let e = &mut b[16..16 + 76];
        if e[12] & 1 == 0 {
            e[12] |= 1;
            let valid = u16::from_le_bytes([e[0], e[1]]) + 1;
            e[..2].copy_from_slice(&valid.to_le_bytes());
        }
    });
    let start = v.current_pack_start();
    v.edit(start, MAGIC_CHECKPOINT, |b| {
        let n = u64::from_le_bytes(b[48..56].try_into().unwrap()) + 1;
        b[48..56].copy_from_slice(&n.to_le_bytes());
    });
    let r = v.check();
    expect(&r, "counter", |f| {
        matches!(
            f.issue,
            Issue::CounterMismatch {
                field: "valid_blocks",
                ..
            }
        )
    });
    expect(&r, "live bit", |f| {
        f.object == Object::Segment { segno: 0 }
            && matches!(f.issue, Issue::LiveNotReferenced { first: 0, .. })
    });
}

#[test]
fn nat_entry_outside_main_area() {
    let (v, i) = setup();
    let nid = i.inline_max;
    v.edit(v.nat_block_addr(0), MAGIC_NAT, |b| {
        let at = 16 + 4 * nid as usize;
        b[at..at + 4].copy_from_slice(&5u32.to_le_bytes());
    });
    let r = v.check();
    expect(&r, "nat entry", |f| {
        f.object == Object::Nid { nid } && f.issue == Issue::NatEntryOutsideMain { addr: 5 }
    });
}

#[test]
fn summary_names_the_wrong_owner() {
    let (v, i) = setup();
    let raw = v.inode(i.big);
    let addr = Node::ref_from_bytes(&raw[..]).unwrap().inode().addrs[3].get();
    let (segno, off) = v.sb.layout.locate(addr).unwrap();
    let active = v.cp.logs.iter().position(|h| h.segno == segno);
    let poke = |b: &mut [u8; BLOCK_SIZE]| {
        let at = 16 + 6 * off as usize;
        b[at + 4..at + 6].copy_from_slice(&9u16.to_le_bytes());
    };
    match active {
        Some(log) => {
            let l = v.sb.layout;
            let idx = l.nat_bitmap_blocks() + l.sut_bitmap_blocks() + log as u32;
            v.edit(
                v.current_pack_start() + 1 + u64::from(idx),
                MAGIC_SUMMARY,
                poke,
            );
            v.fix_cp_body();
        }
        None => v.edit(v.sb.layout.ssa_addr(segno), MAGIC_SUMMARY, poke),
    }
    let r = v.check();
    expect(&r, "summary", |f| {
        f.object == (Object::Summary { segno, off, addr })
            && matches!(&f.issue, Issue::SummaryOwner { found_nid, found_ofs: 9, .. } if *found_nid == i.big)
    });
}

#[test]
fn orphan_list_with_a_named_inode() {
    let (v, i) = setup();
    // Put a named inode on the orphan list of the current checkpoint.
    let l = v.sb.layout;
    let start = v.current_pack_start();
    let body = u32::from_le_bytes(v.read(start)[16..20].try_into().unwrap());
    let idx = l.nat_bitmap_blocks() + l.sut_bitmap_blocks() + l.log_count;
    assert!(body + 2 <= l.cp_blocks);
    v.edit(
        start + 1 + u64::from(idx),
        logfs::format::header::MAGIC_ORPHAN,
        |b| {
            b.fill(0);
            b[8..12].copy_from_slice(&1u32.to_le_bytes());
            b[16..20].copy_from_slice(&i.inline_max.to_le_bytes());
        },
    );
    v.edit(start, MAGIC_CHECKPOINT, |b| {
        b[16..20].copy_from_slice(&(body + 1).to_le_bytes());
        b[40..44].copy_from_slice(&1u32.to_le_bytes());
    });
    v.fix_cp_body();
    let r = v.check();
    expect(&r, "orphan", |f| {
        f.object == Object::Inode { ino: i.inline_max }
            && matches!(f.issue, Issue::OrphanHasLinks { nlink: 1 })
    });
}
