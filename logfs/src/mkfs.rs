//! Making a file system: superblocks, an empty segment usage table, a node address table with
//! the root directory, and the first checkpoint.

use alloc::vec::Vec;

use bento_runtime::Errno;
use bento_runtime::fs::{S_IFDIR, Timespec};
use bento_runtime::ks::block::{BlockDevice, WriteFlags};

use crate::checkpoint::{Checkpoint, LogHead};
use crate::error::{Error, Result, io};
use crate::format::layout::{BLOCK_SIZE, Layout};
use crate::format::node::{KIND_INODE, Node};
use crate::format::summary::SummaryBlock;
use crate::format::superblock::{FORMAT_MAJOR, FORMAT_MINOR, Superblock};
use crate::format::tables::{LOG_DATA, LOG_NODE};
use crate::nat::Nat;
use crate::segment::SegmentTable;

/// What to make.
#[derive(Clone, Debug)]
pub struct MkfsOptions {
    pub label: Vec<u8>,
    pub uuid: [u8; 16],
    /// Seed of the directory hash; random in practice.
    pub hash_seed: [u8; 16],
    pub time: Timespec,
    /// Discard the whole device first (fast on SSDs and sparse images).
    pub discard: bool,
    /// Shown in the superblock, e.g. "mkfs.logfs 0.1.0".
    pub version: Vec<u8>,
    /// Owner of the root directory.
    pub root_uid: u32,
    pub root_gid: u32,
}

pub const ROOT_INO: u32 = 1;

/// Make a logfs on the whole of `dev`.
pub fn format<D: BlockDevice + ?Sized>(dev: &D, opts: &MkfsOptions) -> Result<Superblock> {
    format_sized(dev, opts, dev.block_count())
}

/// Make a logfs on the first `blocks` blocks of `dev` (`mkfs.logfs DEVICE SIZE`).
pub fn format_sized<D: BlockDevice + ?Sized>(
    dev: &D,
    opts: &MkfsOptions,
    blocks: u64,
) -> Result<Superblock> {
    if blocks > dev.block_count() {
        return Err(Error::Errno(Errno::EINVAL));
    }
    let layout = Layout::compute(blocks)?;
    // A label longer than its field is refused; the version string is cut to its field.
    let mut label = [0u8; 64];
    label
        .get_mut(..opts.label.len())
        .ok_or(Error::Errno(Errno::EINVAL))?
        .copy_from_slice(&opts.label);
    let mut version = [0u8; 32];
    let v = opts.version.get(..version.len()).unwrap_or(&opts.version);
    if let Some(dst) = version.get_mut(..v.len()) {
        dst.copy_from_slice(v);
    }
    let sb = Superblock {
        major: FORMAT_MAJOR,
        minor: FORMAT_MINOR,
        compat: 0,
        ro_compat: 0,
        incompat: 0,
        layout,
        root_ino: ROOT_INO,
        uuid: opts.uuid,
        hash_seed: opts.hash_seed,
        label,
        mkfs_time: opts.time.sec,
        mkfs_version: version,
    };
    let seed = sb.csum_seed();

    if opts.discard {
        // Advisory: a device that cannot discard still gets a valid file system.
        let _ = dev.discard(0, layout.total_blocks);
    }
    // Old superblocks and checkpoints must not survive into the new file system.
    let zero = crate::mem::filled(0u8, BLOCK_SIZE)?;
    for b in 0..2 {
        dev.write_blocks(b, &zero, WriteFlags::NONE).map_err(io)?;
    }
    for pack in 0..2 {
        dev.write_blocks(layout.cp_pack_start(pack), &zero, WriteFlags::NONE)
            .map_err(io)?;
    }

    // The node log starts in segment 0 with the root inode; the data log in segment 1.
    let (node_seg, data_seg) = (0u32, 1u32);
    let root_addr = layout
        .block_addr(node_seg, 0)
        .ok_or(Error::Incompatible("device too small"))?;
    // The node the root inode's block names as the next in its log.
    let next_addr = layout
        .block_addr(node_seg, 1)
        .ok_or(Error::Incompatible("device too small"))?;
    let mut root = Node::new_boxed()?;
    root.init(ROOT_INO, ROOT_INO, 0, KIND_INODE);
    {
        let i = root.inode_mut();
        i.mode = (S_IFDIR | 0o755).into();
        i.uid = opts.root_uid.into();
        i.gid = opts.root_gid.into();
        i.nlink = 2.into();
        i.set_atime(opts.time);
        i.set_mtime(opts.time);
        i.set_ctime(opts.time);
        i.set_crtime(opts.time);
        i.set_name(ROOT_INO, b"");
    }
    dev.write_blocks(
        u64::from(root_addr),
        root.seal(seed, 0, next_addr),
        WriteFlags::NONE,
    )
    .map_err(io)?;

    let mut sut = SegmentTable::new_empty(&layout)?;
    sut.set_active(node_seg, LOG_NODE)?;
    sut.set_active(data_seg, LOG_DATA)?;
    sut.set_valid(node_seg, 0, opts.time.sec);
    sut.write_dirty(dev, &layout, seed)?;

    let (mut nat_bitmap, mut sut_bitmap) = Checkpoint::empty_bitmaps(&sb)?;
    let mut nat = Nat::new(&layout, &nat_bitmap, 0, 2)?;
    nat.set(dev, &layout, seed, ROOT_INO, root_addr)?;
    nat.write_dirty(dev, &layout, seed)?;
    nat.copy_bitmap(&mut nat_bitmap);
    sut.copy_bitmap(&mut sut_bitmap);

    let mut node_sum = SummaryBlock::new(node_seg, LOG_NODE)?;
    node_sum.set(0, ROOT_INO, 0);
    let data_sum = SummaryBlock::new(data_seg, LOG_DATA)?;
    let mut cp = Checkpoint {
        seq: 1,
        flags: crate::checkpoint::CP_CLEAN,
        nat_written: nat.written(),
        valid_blocks: 1,
        valid_nodes: 1,
        valid_inodes: 1,
        free_segments: sut.free_segments(),
        next_free_nid: ROOT_INO + 1,
        next_generation: 1,
        time: opts.time.sec,
        logs: crate::mem::to_vec(&[
            LogHead {
                segno: node_seg,
                next_off: 1,
            },
            LogHead {
                segno: data_seg,
                next_off: 0,
            },
        ])?,
        nat_bitmap,
        sut_bitmap,
        summaries: crate::mem::collect([node_sum, data_sum])?,
        orphans: Vec::new(),
    };
    cp.write(dev, &sb)?;

    // The superblock goes last: until it is written, the device is not a logfs.
    let mut block = crate::file::zeroed_block()?;
    sb.encode(&mut block);
    dev.write_blocks(1, &block[..], WriteFlags::NONE)
        .map_err(io)?;
    dev.write_blocks(0, &block[..], WriteFlags::COMMIT)
        .map_err(io)?;
    Ok(sb)
}
