//! Crafted corruption, checksums re-sealed so only the format's validators can catch it: every
//! case must end in a clean EUCLEAN from the operation that reads the damaged structure (or a
//! refused mount), never a panic, and must leave the rest of the volume usable.

mod common;
#[path = "common/image.rs"]
mod image;

use bento_runtime::Errno;
use bento_runtime::fs::{
    FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FileSystem, Mount, MountOptions, ROOT_INO,
};
use common::*;
use image::Image;
use logfs::format::header::{MAGIC_NODE, MAGIC_SUT};
use logfs::format::node::Node;
use logfs::format::tables::{RawSutBlock, copy_bit};
use logfs::{BLOCK_SIZE, LogFs};
use zerocopy::FromBytes;

/// A volume with an inline file, a regular file with blocks, and a directory holding a file.
struct Vol {
    img: Image,
    small: u32,
    big: u32,
    dir: u32,
    inner: u32,
}

impl std::ops::Deref for Vol {
    type Target = Image;
    fn deref(&self) -> &Image {
        &self.img
    }
}

fn setup() -> Vol {
    let dev = new_device(64);
    let fs = mount(&dev);
    let small = fs
        .create(&R, ROOT_INO, b"small", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, small, 0, 0, &[b's'; 100]).unwrap();
    let big = fs
        .create(&R, ROOT_INO, b"big", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, big, 0, 0, &[b'b'; 3 * BLOCK_SIZE]).unwrap();
    let dir = fs.mkdir(&R, ROOT_INO, b"dir", 0o755).unwrap().attr.ino;
    let inner = fs.create(&R, dir, b"inner", 0o644, 0).unwrap().0.attr.ino;
    fs.setxattr(&R, big, b"user.colour", b"blue", 0).unwrap();
    unmount(fs);
    Vol {
        img: Image::open(dev),
        small: small as u32,
        big: big as u32,
        dir: dir as u32,
        inner: inner as u32,
    }
}

impl Vol {
    /// Mount; the untouched files must still work.
    fn mount_rest(&self, spare: &[u64]) -> Fs {
        let fs = mount(&self.dev);
        for &ino in spare {
            fs.getattr(&R, ino).expect("an undamaged inode");
        }
        fs
    }
}

#[track_caller]
fn assert_corrupt<T: std::fmt::Debug>(r: Result<T, Errno>) {
    assert_eq!(r.unwrap_err(), Errno::EUCLEAN);
}

/// Issue 10's reproducer: an inline inode whose size outgrew the inline area. `fallocate -p`
/// used to slice the inline data to the size and panic.
#[test]
fn inline_size_past_the_inline_area() {
    let v = setup();
    // Offset 56 of the node block: the inode's `size`; the inline flag stays.
    v.edit(v.node_addr(v.small), MAGIC_NODE, |b| {
        b[56..64].copy_from_slice(&8192u64.to_le_bytes())
    });
    let fs = v.mount_rest(&[u64::from(v.big), u64::from(v.dir)]);
    let small = u64::from(v.small);
    let punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    assert_corrupt(fs.fallocate(&R, small, 0, 0, 8192, punch));
    assert_corrupt(fs.lookup(&R, ROOT_INO, b"small"));
    assert_corrupt(fs.getattr(&R, small));
    assert_eq!(read_all(&fs, u64::from(v.big)), vec![b'b'; 3 * BLOCK_SIZE]);
    unmount(fs);
}

#[test]
fn directory_depth_past_the_limit() {
    let v = setup();
    v.edit_inode(v.dir, |i| i.dir_depth = 33.into());
    let fs = v.mount_rest(&[u64::from(v.big)]);
    assert_corrupt(fs.lookup(&R, u64::from(v.dir), b"inner"));
    assert_corrupt(fs.create(&R, u64::from(v.dir), b"new", 0o644, 0));
    unmount(fs);
}

#[test]
fn node_ids_past_max_nid() {
    let v = setup();
    let max = v.sb.layout.max_nid;
    v.edit_entry(v.dir, b"inner", |d, slot| d.dentries[slot].ino = max.into());
    v.edit_inode(v.big, |i| i.xattr_nid = (max + 7).into());
    v.edit_inode(v.small, |i| i.parent = u32::MAX.into());
    let fs = v.mount_rest(&[]);
    assert_corrupt(fs.lookup(&R, u64::from(v.dir), b"inner"));
    let mut names = Names(Vec::new());
    assert_corrupt(fs.readdir(&R, u64::from(v.dir), 0, 0, &mut names));
    assert_corrupt(fs.getxattr(&R, u64::from(v.big), b"user.colour"));
    assert_corrupt(fs.getattr(&R, u64::from(v.small)));
    // The nid itself is fine: only following it would go astray.
    fs.getattr(&R, u64::from(v.inner)).unwrap();
    unmount(fs);
}

#[test]
fn block_addresses_outside_the_main_area() {
    let v = setup();
    // A data address in the checkpoint area.
    v.edit_inode(v.big, |i| i.addrs[1] = 3.into());
    let fs = v.mount_rest(&[u64::from(v.small), u64::from(v.inner)]);
    let mut buf = vec![0u8; BLOCK_SIZE];
    assert_corrupt(fs.read(&R, u64::from(v.big), 0, 0, &mut buf));
    assert_corrupt(fs.getattr(&R, u64::from(v.big)));
    unmount(fs);
}

#[test]
fn node_address_table_entry_outside_the_main_area() {
    let v = setup();
    // A node address in the superblock: the NAT block is refused when it is loaded, and the
    // root's entry lives in the same block, so the mount is refused.
    v.edit_nat(v.inner, 1);
    let r = LogFs::mount(v.dev.clone(), &MountOptions::default()).map(|_| ());
    assert_eq!(r.unwrap_err(), Errno::EUCLEAN);
}

#[test]
fn name_lengths_past_their_space() {
    let v = setup();
    // A directory entry running past the block's last slot, and an inode name longer than the
    // inode's name field.
    v.edit_entry(v.dir, b"inner", |d, slot| {
        d.dentries[slot].name_len = 255.into();
        let last = logfs::format::dir::SLOTS - 1;
        d.dentries.swap(slot, last);
        d.bitmap[last / 8] |= 1 << (last % 8);
    });
    v.edit_inode(v.small, |i| i.name_len = 4096.into());
    let fs = v.mount_rest(&[u64::from(v.big)]);
    assert_corrupt(fs.lookup(&R, u64::from(v.dir), b"inner"));
    assert_corrupt(fs.getattr(&R, u64::from(v.small)));
    unmount(fs);
}

#[test]
fn xattr_body_overruns_its_node() {
    let v = setup();
    let xnid = {
        let raw = v.read(v.node_addr(v.big));
        Node::ref_from_bytes(&raw[..])
            .unwrap()
            .inode()
            .xattr_nid
            .get()
    };
    // The one entry's value claims more bytes than the body holds.
    v.edit_node(xnid, |n| {
        n.body[4..6].copy_from_slice(&u16::MAX.to_le_bytes())
    });
    let fs = v.mount_rest(&[u64::from(v.small)]);
    assert_corrupt(fs.getxattr(&R, u64::from(v.big), b"user.colour"));
    assert_corrupt(fs.listxattr(&R, u64::from(v.big)));
    unmount(fs);
}

#[test]
fn usage_count_disagrees_with_its_bitmap() {
    let v = setup();
    // Segment 0 holds the node log: one more live block counted than its bitmap shows.
    let addr = v.sb.layout.sut_copy_addr(0, copy_bit(&v.cp.sut_bitmap, 0));
    v.edit(addr, MAGIC_SUT, |b| {
        let e = &mut RawSutBlock::mut_from_bytes(&mut b[..]).unwrap().entries[0];
        e.valid = (e.valid.get() + 1).into();
    });
    let r = LogFs::mount(v.dev.clone(), &MountOptions::default()).map(|_| ());
    assert_eq!(r.unwrap_err(), Errno::EUCLEAN);
}

/// The validators' limits are inclusive where the format allows the value: an inline file of
/// exactly the inline area, preallocated (NEW_ADDR) blocks, and a sparse file of the largest
/// size with its last block written all mount and read back, and fsck finds nothing.
#[test]
fn legal_edge_cases_still_mount() {
    use logfs::format::geometry::MAX_FILE_SIZE;
    use logfs::format::node::INLINE_MAX;

    let dev = new_device(64);
    let fs = mount(&dev);
    let file = |fs: &Fs, name: &[u8]| fs.create(&R, ROOT_INO, name, 0o644, 0).unwrap().0.attr.ino;
    let inline = file(&fs, b"inline");
    fs.write(&R, inline, 0, 0, &vec![b'i'; INLINE_MAX]).unwrap();
    let pre = file(&fs, b"prealloc");
    fs.fallocate(&R, pre, 0, 0, 8 * BLOCK_SIZE as u64, 0)
        .unwrap();
    fs.fallocate(
        &R,
        pre,
        0,
        8 * BLOCK_SIZE as u64,
        8 * BLOCK_SIZE as u64,
        FALLOC_FL_KEEP_SIZE,
    )
    .unwrap();
    let huge = file(&fs, b"huge");
    let last = MAX_FILE_SIZE - BLOCK_SIZE as u64;
    fs.write(&R, huge, 0, last, &[b'h'; BLOCK_SIZE]).unwrap();
    unmount(fs);

    let fs = mount(&dev);
    assert_eq!(read_all(&fs, inline), vec![b'i'; INLINE_MAX]);
    assert_eq!(read_all(&fs, pre), vec![0; 8 * BLOCK_SIZE]);
    assert_eq!(fs.getattr(&R, huge).unwrap().size, MAX_FILE_SIZE);
    let mut buf = vec![0; BLOCK_SIZE];
    assert_eq!(fs.read(&R, huge, 0, last, &mut buf).unwrap(), BLOCK_SIZE);
    assert_eq!(buf, vec![b'h'; BLOCK_SIZE]);
    unmount(fs);
    let report = fsck::check(&*dev, &fsck::CheckOptions::default());
    assert!(report.is_clean(), "fsck: {:#?}", report.findings);
}
