mod common;

use bento_runtime::Errno;
use bento_runtime::fs::{FileSystem, FileType, ROOT_INO, RenameFlags, SetAttr};
use common::*;

#[test]
fn create_write_read_remount() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let e = fs.create(&R, ROOT_INO, b"hello", 0o644, 0).unwrap().0;
    assert_eq!(fs.write(&R, e.attr.ino, 0, 0, b"hello world").unwrap(), 11);
    let d = fs.mkdir(&R, ROOT_INO, b"dir", 0o755).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let f = fs.create(&R, d.attr.ino, b"big", 0o600, 0).unwrap().0;
    assert_eq!(fs.write(&R, f.attr.ino, 0, 0, &big).unwrap(), big.len());
    fs.symlink(&R, ROOT_INO, b"link", b"dir/big").unwrap();
    assert_eq!(read_all(&fs, e.attr.ino), b"hello world");
    assert_eq!(read_all(&fs, f.attr.ino), big);
    unmount(fs);

    let fs = mount(&dev);
    let names: Vec<Vec<u8>> = list(&fs, ROOT_INO).into_iter().map(|(n, ..)| n).collect();
    assert_eq!(
        names,
        vec![b"dir".to_vec(), b"hello".to_vec(), b"link".to_vec()]
    );
    let h = fs.lookup(&R, ROOT_INO, b"hello").unwrap();
    assert_eq!(read_all(&fs, h.attr.ino), b"hello world");
    let d = fs.lookup(&R, ROOT_INO, b"dir").unwrap();
    assert_eq!(d.attr.kind, FileType::Directory);
    assert_eq!(d.attr.nlink, 2);
    let f = fs.lookup(&R, d.attr.ino, b"big").unwrap();
    assert_eq!(read_all(&fs, f.attr.ino), big);
    let l = fs.lookup(&R, ROOT_INO, b"link").unwrap();
    assert_eq!(fs.readlink(&R, l.attr.ino).unwrap(), b"dir/big");
    assert_eq!(fs.getattr(&R, ROOT_INO).unwrap().nlink, 3);
    unmount(fs);
}

#[test]
fn errors_and_renames() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let a = fs.create(&R, ROOT_INO, b"a", 0o644, 0).unwrap().0.attr.ino;
    fs.write(&R, a, 0, 0, b"AAAA").unwrap();
    let b = fs.create(&R, ROOT_INO, b"b", 0o644, 0).unwrap().0.attr.ino;
    fs.write(&R, b, 0, 0, b"BB").unwrap();
    assert_eq!(
        fs.create(&R, ROOT_INO, b"a", 0o644, 0).unwrap_err(),
        Errno::EEXIST
    );
    assert_eq!(fs.lookup(&R, ROOT_INO, b"zz").unwrap_err(), Errno::ENOENT);
    assert_eq!(
        fs.rename(
            &R,
            ROOT_INO,
            b"a",
            ROOT_INO,
            b"b",
            RenameFlags(RenameFlags::NOREPLACE)
        )
        .unwrap_err(),
        Errno::EEXIST
    );
    fs.rename(
        &R,
        ROOT_INO,
        b"a",
        ROOT_INO,
        b"b",
        RenameFlags(RenameFlags::EXCHANGE),
    )
    .unwrap();
    assert_eq!(
        read_all(&fs, fs.lookup(&R, ROOT_INO, b"a").unwrap().attr.ino),
        b"BB"
    );
    fs.rename(&R, ROOT_INO, b"a", ROOT_INO, b"b", RenameFlags(0))
        .unwrap();
    assert_eq!(
        read_all(&fs, fs.lookup(&R, ROOT_INO, b"b").unwrap().attr.ino),
        b"BB"
    );
    assert_eq!(fs.lookup(&R, ROOT_INO, b"a").unwrap_err(), Errno::ENOENT);
    let d = fs.mkdir(&R, ROOT_INO, b"d", 0o755).unwrap().attr.ino;
    let d2 = fs.mkdir(&R, d, b"d2", 0o755).unwrap().attr.ino;
    assert_eq!(
        fs.rename(&R, ROOT_INO, b"d", d2, b"x", RenameFlags(0))
            .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(fs.rmdir(&R, ROOT_INO, b"d").unwrap_err(), Errno::ENOTEMPTY);
    assert_eq!(fs.unlink(&R, ROOT_INO, b"d").unwrap_err(), Errno::EISDIR);
    fs.link(&R, b, d2, b"hard").unwrap();
    assert_eq!(fs.getattr(&R, b).unwrap().nlink, 2);
    fs.unlink(&R, ROOT_INO, b"b").unwrap();
    assert_eq!(fs.getattr(&R, b).unwrap().nlink, 1);
    // truncate and sparse
    let s = fs
        .create(&R, ROOT_INO, b"sparse", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, s, 0, 1 << 30, b"end").unwrap();
    assert_eq!(fs.getattr(&R, s).unwrap().size, (1 << 30) + 3);
    let mut buf = vec![1u8; 8192];
    fs.read(&R, s, 0, 12345, &mut buf).unwrap();
    assert!(buf.iter().all(|&x| x == 0));
    fs.setattr(
        &R,
        s,
        &SetAttr {
            size: Some(10),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert_eq!(fs.getattr(&R, s).unwrap().size, 10);
    unmount(fs);
    let fs = mount(&dev);
    assert_eq!(
        fs.getattr(&R, fs.lookup(&R, ROOT_INO, b"sparse").unwrap().attr.ino)
            .unwrap()
            .size,
        10
    );
    unmount(fs);
}

#[test]
fn inline_file_grows_far() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let f = fs.create(&R, ROOT_INO, b"f", 0o644, 0).unwrap().0.attr.ino;
    let a: Vec<u8> = (0..750u32).map(|i| i as u8 | 1).collect();
    fs.write(&R, f, 0, 0, &a).unwrap();
    let b: Vec<u8> = (0..6267u32).map(|i| (i % 13) as u8 + 1).collect();
    fs.write(&R, f, 0, 4567837, &b).unwrap();
    let mut want = a.clone();
    want.resize(4567837, 0);
    want.extend_from_slice(&b);
    let got = read_all(&fs, f);
    assert_eq!(got.len(), want.len());
    let first_diff = got.iter().zip(&want).position(|(x, y)| x != y);
    assert_eq!(first_diff, None);
    unmount(fs);
}

/// 100,000 names in one directory: every lookup probes one bucket per hash level, and the
/// levels stay few; readdir returns every name exactly once, before and after a remount.
#[test]
fn hundred_thousand_entries() {
    let dev = new_device(128);
    let mut fs = mount(&dev);
    let d = fs.mkdir(&R, ROOT_INO, b"big", 0o755).unwrap().attr.ino;
    // Hard links keep the test to directory blocks: 2 inodes, 50,000 names each.
    let a = fs.create(&R, d, b"a", 0o644, 0).unwrap().0.attr.ino;
    let b = fs.create(&R, d, b"b", 0o644, 0).unwrap().0.attr.ino;
    let n = 100_000u32;
    let name = |i: u32| format!("file-{i:06}-with-a-longer-name").into_bytes();
    for i in 0..n {
        fs.link(&R, if i % 2 == 0 { a } else { b }, d, &name(i))
            .unwrap();
    }
    let depth = fs.getattr(&R, d).unwrap().size / 4096;
    assert!(
        depth < logfs::format::dir::level_start(12),
        "directory spans {depth} blocks"
    );
    for round in 0..2 {
        for i in (0..n).step_by(7) {
            let e = fs.lookup(&R, d, &name(i)).unwrap();
            assert_eq!(e.attr.ino, if i % 2 == 0 { a } else { b });
        }
        assert_eq!(fs.lookup(&R, d, b"missing").unwrap_err(), Errno::ENOENT);
        let names = list(&fs, d);
        assert_eq!(names.len(), n as usize + 2);
        let mut sorted: Vec<&Vec<u8>> = names.iter().map(|(n, ..)| n).collect();
        sorted.dedup();
        assert_eq!(sorted.len(), n as usize + 2);
        if round == 0 {
            unmount(fs);
            fs = mount(&dev);
        }
    }
    unmount(fs);
}

/// Delayed allocation: space promised to dirty page-cache data is counted at once, refused
/// when the volume is full, turned into use by the writeback, and released by truncation.
#[test]
fn delayed_allocation() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let free0 = fs.statfs(&R, ROOT_INO).unwrap().bfree;
    let f = fs.create(&R, ROOT_INO, b"f", 0o644, 0).unwrap().0.attr.ino;
    fs.reserve(f, 0, 1 << 20).unwrap();
    fs.reserve(f, 0, 1 << 20).unwrap(); // idempotent
    let free1 = fs.statfs(&R, ROOT_INO).unwrap().bfree;
    assert!(
        free0 - free1 >= 256 && free0 - free1 <= 260,
        "{free0} -> {free1}"
    );
    // The writeback consumes the promise: free space does not drop again.
    fs.write(&R, f, 0, 0, &vec![7u8; 1 << 20]).unwrap();
    let free2 = fs.statfs(&R, ROOT_INO).unwrap().bfree;
    assert!(
        free2 + 2 >= free1 && free2 <= free1 + 1,
        "{free1} -> {free2}"
    );
    // Promising more than the volume holds fails with ENOSPC and promises nothing.
    let g = fs.create(&R, ROOT_INO, b"g", 0o644, 0).unwrap().0.attr.ino;
    let free3 = fs.statfs(&R, ROOT_INO).unwrap().bfree;
    assert_eq!(fs.reserve(g, 0, 1 << 30).unwrap_err(), Errno::ENOSPC);
    assert_eq!(fs.statfs(&R, ROOT_INO).unwrap().bfree, free3);
    // Truncation releases promises that were never written.
    fs.reserve(g, 0, 4 << 20).unwrap();
    assert!(fs.statfs(&R, ROOT_INO).unwrap().bfree < free3 - 1000);
    fs.setattr(
        &R,
        g,
        &SetAttr {
            size: Some(0),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert_eq!(fs.statfs(&R, ROOT_INO).unwrap().bfree, free3);
    unmount(fs);
}

/// A small file's page is promised a block, but the data stays inline: no promise leaks.
#[test]
fn delayed_allocation_inline() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let f = fs
        .create(&R, ROOT_INO, b"small", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    let free0 = fs.statfs(&R, ROOT_INO).unwrap().bfree;
    fs.reserve(f, 0, 4096).unwrap();
    fs.write(&R, f, 0, 0, b"tiny").unwrap();
    assert_eq!(fs.statfs(&R, ROOT_INO).unwrap().bfree, free0);
    unmount(fs);
}

/// A new (inline) file whose whole content was promised to delayed data, on a volume the
/// promise fills: the writeback must find its space (found by the kernel suite).
#[test]
fn delayed_allocation_fills_the_volume() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let f = fs.create(&R, ROOT_INO, b"f", 0o644, 0).unwrap().0.attr.ino;
    let free = fs.statfs(&R, ROOT_INO).unwrap().bfree;
    let len = (free - 32) * 4096;
    fs.reserve(f, 0, len).unwrap();
    let chunk = vec![9u8; 1 << 20];
    let mut off = 0;
    while off < len {
        let n = chunk.len().min((len - off) as usize);
        if let Err(e) = fs.write(&R, f, 0, off, &chunk[..n]) {
            panic!(
                "write at {off} of {len}: {e:?}; statfs {:?}",
                fs.statfs(&R, ROOT_INO).unwrap()
            );
        }
        off += n as u64;
    }
    assert_eq!(fs.getattr(&R, f).unwrap().size, len);
    unmount(fs);
}
