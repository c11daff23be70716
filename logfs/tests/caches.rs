//! The bounded caches and memory pressure: the node cache keeps the most recently used clean
//! nodes, `shrink` (the kernel's shrinker) gives clean entries back and never a dirty one, and
//! forget never waits for a busy volume.
mod common;

use bento_runtime::Errno;
use bento_runtime::fs::{FileSystem, ROOT_INO};
use common::*;
use logfs::format::node::{KIND_INODE, Node};
use logfs::node::NodeCache;

fn node(nid: u32) -> Box<Node> {
    let mut n = Node::new_boxed().unwrap();
    n.init(nid, nid, 0, KIND_INODE);
    n
}

#[test]
fn node_cache_evicts_the_least_recently_used_clean_nodes() {
    let mut c = NodeCache::new(8);
    for nid in 1..=8 {
        c.insert_clean(node(nid)).unwrap();
    }
    c.insert_dirty(node(100)).unwrap(); // full: a quarter of the clean ones go first
    // 1 and 2 were the oldest; using them now makes 3 and 4 the oldest.
    assert!(!c.contains(1) && !c.contains(2));
    assert!(c.get(5).is_some() && c.get(6).is_some());
    assert_eq!(c.shrink(2, true), 2);
    assert!(!c.contains(3) && !c.contains(4) && c.contains(5) && c.contains(6));
    // Without sorting (memory reclaim), still the oldest, and never a dirty node.
    assert_eq!(c.shrink(100, false), 4);
    assert!(c.contains(100) && c.is_dirty(100));
    assert_eq!((c.len(), c.clean_count(), c.dirty_count()), (1, 0, 1));
}

#[test]
fn shrink_gives_back_clean_entries_only() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let d = fs.mkdir(&R, ROOT_INO, b"d", 0o755).unwrap().attr.ino;
    let mut inos = Vec::new();
    for i in 0..200 {
        let (e, _) = fs
            .create(&R, d, format!("f{i}").as_bytes(), 0o644, 0)
            .unwrap();
        fs.write(&R, e.attr.ino, 0, 0, &vec![i as u8; 9000])
            .unwrap();
        inos.push(e.attr.ino);
    }
    fs.sync_fs().unwrap();
    for i in 200..260 {
        fs.create(&R, d, format!("g{i}").as_bytes(), 0o644, 0)
            .unwrap(); // dirty
    }
    let clean = fs.shrink(0).unwrap();
    assert!(clean > 100, "{clean} clean entries");
    assert_eq!(fs.shrink(u64::MAX), Some(clean));
    assert_eq!(fs.shrink(0), Some(0));
    // Read back from disk; what was not written yet is still there.
    for (i, &ino) in inos.iter().enumerate() {
        assert_eq!(read_all(&fs, ino), vec![i as u8; 9000]);
    }
    assert_eq!(list(&fs, d).len(), 260);
    // Busy (a call in progress holds the volume): no waiting, no answer.
    fs.with_volume(|_| assert_eq!(fs.shrink(0), None));
    unmount(fs);
    let fs = mount(&dev);
    assert_eq!(list(&fs, d).len(), 260);
    unmount(fs);
}

#[test]
fn forget_of_a_busy_volume_is_applied_by_the_next_call() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let e = fs.create(&R, ROOT_INO, b"f", 0o644, 0).unwrap().0;
    fs.write(&R, e.attr.ino, 0, 0, &vec![1u8; 1 << 20]).unwrap();
    fs.release(&R, e.attr.ino, 0, 0).unwrap();
    fs.sync_fs().unwrap();
    let before = fs.statfs(&R, ROOT_INO).unwrap().bfree;
    fs.unlink(&R, ROOT_INO, b"f").unwrap();
    // Still looked up: an orphan until forgotten.
    assert!(fs.getattr(&R, e.attr.ino).is_ok());
    // The volume is busy: forget must not wait (it would deadlock here, on the same thread).
    fs.with_volume(|_| fs.forget(e.attr.ino, 1));
    // The next call frees it first.
    assert!(fs.statfs(&R, ROOT_INO).unwrap().bfree >= before + 256);
    assert_eq!(fs.getattr(&R, e.attr.ino).unwrap_err(), Errno::ESTALE);
    unmount(fs);
    let fs = mount(&dev);
    assert_eq!(fs.lookup(&R, ROOT_INO, b"f").unwrap_err(), Errno::ENOENT);
    unmount(fs);
}

/// Space promised to pages that never became dirty (bentofs reserves before it copies a write
/// into a folio; the copy may fail) goes back when the kernel forgets the inode, at the latest.
#[test]
fn a_promise_no_page_used_goes_back_when_the_inode_is_forgotten() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let (e, _) = fs.create(&R, ROOT_INO, b"f", 0o644, 0).unwrap();
    let ino = e.attr.ino;
    let free = || fs.statfs(&R, ROOT_INO).unwrap().bfree;
    let before = free();
    fs.reserve(ino, 0, 1 << 20).unwrap();
    assert!(free() <= before - 256, "{} free of {before}", free());
    fs.forget(ino, 1);
    assert_eq!(free(), before);
    // Written pages are not promises any more: forgetting the inode keeps their blocks.
    let ino = fs.lookup(&R, ROOT_INO, b"f").unwrap().attr.ino;
    fs.reserve(ino, 0, 8192).unwrap();
    fs.write(&R, ino, 0, 0, &[7; 8192]).unwrap();
    let written = free();
    fs.forget(ino, 1);
    assert_eq!(free(), written);
    assert_eq!(read_all(&fs, ino), vec![7; 8192]);
    unmount(fs);
}
