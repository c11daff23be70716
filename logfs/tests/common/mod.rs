//! Helpers shared by the logfs tests: a memory device, mkfs, mount through the Bento trait.
#![allow(dead_code)]

use std::sync::Arc;

use bento_runtime::fs::{
    DirFiller, FileSystem, FileType, Ino, Mount, MountOptions, Request, Timespec,
};
use bento_user::MemDevice;
use logfs::LogFs;
use logfs::mkfs::{MkfsOptions, format};

pub type Fs = LogFs<Arc<MemDevice>>;
pub const R: Request = Request::ROOT;

pub fn mkfs_opts() -> MkfsOptions {
    MkfsOptions {
        label: b"test".to_vec(),
        uuid: [7; 16],
        hash_seed: [9; 16],
        time: Timespec::new(1_700_000_000, 0),
        discard: false,
        version: b"test".to_vec(),
        root_uid: 0,
        root_gid: 0,
    }
}

/// A formatted memory device of `mib` MiB.
pub fn new_device(mib: u64) -> Arc<MemDevice> {
    let dev = Arc::new(MemDevice::new(mib * 256));
    format(&*dev, &mkfs_opts()).expect("mkfs");
    dev
}

pub fn mount(dev: &Arc<MemDevice>) -> Fs {
    LogFs::mount(dev.clone(), &MountOptions::default()).expect("mount")
}

pub fn unmount(fs: Fs) {
    fs.destroy().expect("destroy");
}

pub struct Names(pub Vec<(Vec<u8>, u64, FileType, u64)>);

impl DirFiller for Names {
    fn add(&mut self, ino: Ino, offset: u64, kind: FileType, name: &[u8]) -> bool {
        self.0.push((name.to_vec(), ino, kind, offset));
        false
    }
}

/// All entries of a directory except `.` and `..`, sorted by name.
pub fn list(fs: &Fs, dir: Ino) -> Vec<(Vec<u8>, u64, FileType)> {
    let mut names = Names(Vec::new());
    fs.readdir(&R, dir, 0, 0, &mut names).expect("readdir");
    let mut v: Vec<_> = names
        .0
        .into_iter()
        .filter(|(n, ..)| n != b"." && n != b"..")
        .map(|(n, i, k, _)| (n, i, k))
        .collect();
    v.sort();
    v
}

pub fn read_all(fs: &Fs, ino: Ino) -> Vec<u8> {
    let size = fs.getattr(&R, ino).unwrap().size as usize;
    let mut buf = vec![0u8; size];
    let n = fs.read(&R, ino, 0, 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}
