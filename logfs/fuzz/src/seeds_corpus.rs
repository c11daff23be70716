//! The seed corpus of the mount fuzzer (`write_seeds`; the fuzz target writes it when
//! LOGFS_FUZZ_WRITE_SEEDS names a directory, see run.sh): for each seed volume
//! a run of ordinary operations, and a few with one damage each. The inputs are encoded the way
//! `arbitrary` decodes them (integers little-endian, an enum's variant from a `u32` scaled to
//! the variant count), and each is decoded again and checked against what was meant, so a change
//! of the input's structure fails here instead of silently yielding other inputs.

use std::path::Path;

use crate::{Input, MAX_DAMAGES, prepared};

/// Variant names, in declaration order (src/lib.rs).
const OPS: &[&str] = &[
    "Lookup",
    "Getattr",
    "Setattr",
    "Readdir",
    "Read",
    "Write",
    "Truncate",
    "Fallocate",
    "Create",
    "Mknod",
    "Mkdir",
    "Rmdir",
    "Unlink",
    "Rename",
    "Link",
    "Symlink",
    "Readlink",
    "Setxattr",
    "Getxattr",
    "Listxattr",
    "Removexattr",
    "Open",
    "Release",
    "Fsync",
    "Fsyncdir",
    "Statfs",
    "Forget",
    "SyncFs",
    "Background",
    "Remount",
    "Crash",
];

#[derive(Default)]
struct Enc {
    bytes: Vec<u8>,
    ops: Vec<&'static str>,
}

impl Enc {
    fn variant(&mut self, k: u32, n: u32) -> &mut Self {
        let v = ((u64::from(k) << 32).div_ceil(u64::from(n))) as u32;
        self.bytes.extend(v.to_le_bytes());
        self
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend(v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend(v.to_le_bytes());
        self
    }
    fn op(&mut self, name: &'static str) -> &mut Self {
        let k = OPS.iter().position(|&o| o == name).unwrap();
        self.ops.push(name);
        self.variant(k as u32, OPS.len() as u32)
    }
    /// `I::Known(k)`
    fn ino(&mut self, k: u8) -> &mut Self {
        self.variant(0, 2).u8(k)
    }
    /// `N::Known(k)`
    fn name(&mut self, k: u8) -> &mut Self {
        self.variant(0, 4).u8(k)
    }
    /// `N::New(k)`
    fn new_name(&mut self, k: u8) -> &mut Self {
        self.variant(1, 4).u8(k)
    }
    /// `Off::Small(v)`
    fn off(&mut self, v: u16) -> &mut Self {
        self.variant(0, 6).u16(v)
    }
    /// `Off::Block(b, o)`
    fn off_block(&mut self, b: u16, o: u16) -> &mut Self {
        self.variant(1, 6).u16(b).u16(o)
    }
}

/// A header: seed volume, default mount, no damage.
fn header(seed: u8, damages: u8) -> Enc {
    let mut e = Enc::default();
    e.u8(seed).variant(0, 3).u8(damages);
    e
}

/// Ordinary operations over the seed's known inodes and names.
fn ops(e: &mut Enc) {
    for k in 0..6 {
        e.op("Lookup").ino(0).name(k);
        e.op("Getattr").ino(k + 1);
        e.op("Read").ino(k + 1).off(0).u32(8192);
    }
    e.op("Readdir").ino(0).off(0).u8(50);
    e.op("Create").ino(0).new_name(2);
    e.op("Write")
        .ino(0xff) // the last inode learned: the new file
        .off_block(2, 100)
        .u32(10_000)
        .u8(7);
    e.op("Mkdir").ino(0).new_name(0);
    e.op("Symlink").ino(0).new_name(1).u16(100).u8(b'x');
    e.op("Readlink").ino(0xff);
    e.op("Setxattr")
        .ino(1)
        .u8(0)
        .new_name(0)
        .u16(300)
        .u8(3)
        .u8(0);
    e.op("Listxattr").ino(1);
    e.op("Getxattr").ino(1).u8(0).new_name(0);
    e.op("Fallocate").ino(2).off(0).off(20000).u8(0);
    e.op("Truncate").ino(2).off(5000);
    e.op("Rename").ino(0).name(0).ino(0).new_name(3).u8(0);
    e.op("Link").ino(2).ino(0).new_name(1);
    e.op("Fsync").ino(2).u8(0);
    e.op("Statfs");
    e.op("Remount");
    e.op("Unlink").ino(0).name(1);
    e.op("Crash");
    e.op("Readdir").ino(0).off(0).u8(255);
}

/// One damage: `target` (variant of `Target`, index), `edit` bytes (already encoded).
fn damage(e: &mut Enc, target: u32, index: u16, edit: impl FnOnce(&mut Enc)) {
    e.variant(target, 5);
    if target == 1 {
        e.u8(index as u8); // Target::Checkpoint(u8)
    } else {
        e.u16(index);
    }
    edit(e);
    e.u8(0xff); // re-sealed
}

fn check(bytes: &[u8], meant: &[&str], path: &Path) {
    let input = Input::decode(bytes).expect("decode");
    let got: Vec<String> = input
        .ops
        .iter()
        .map(|o| {
            format!("{o:?}")
                .split([' ', '('])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, meant, "{}: decoded other operations", path.display());
    assert!(input.damages.len() <= MAX_DAMAGES as usize);
}

/// A seed input's damage: its name, the `Target` variant and index, the encoded `Edit`.
type SeedDamage = (&'static str, u32, u16, fn(&mut Enc));

/// Write the seed inputs into `dir`.
pub fn write_seeds(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut inputs: Vec<(String, Enc)> = Vec::new();
    let n = prepared().len() as u8;
    for seed in 0..n {
        let mut e = header(seed, 0);
        ops(&mut e);
        inputs.push((format!("seed{seed}-ops"), e));
    }
    // Damages on the populated volume (seed 1), each followed by the same operations.
    // Edit variants: FlipBit 0, SetByte 1, Set16 2, Set32 3, Set64 4, Fill 5, Zero 6, CopyFrom 7;
    // At: Any 0, Head 1; Val: ... Nid 9, Block 10, Raw 11.
    let damages: [SeedDamage; 5] = [
        // An inode's size (offset 56) set to a block address.
        ("node-size", 2, 3, |e| {
            e.variant(4, 8).variant(1, 2).u8(56).variant(10, 12).u16(9);
        }),
        // An inode's xattr nid (136) pointing at another node.
        ("node-xattr-nid", 2, 5, |e| {
            e.variant(3, 8).variant(1, 2).u8(136).variant(9, 12).u8(4);
        }),
        // A directory entry's name length byte.
        ("dir-byte", 3, 1, |e| {
            e.variant(1, 8).variant(1, 2).u8(45).u8(0xf0);
        }),
        // A NAT or SUT entry (metadata area) overwritten.
        ("meta-word", 0, 6, |e| {
            e.variant(3, 8).variant(1, 2).u8(20).variant(2, 12);
        }),
        // The checkpoint's orphan or summary area replaced by another block.
        ("cp-copy", 1, 3, |e| {
            e.variant(7, 8).variant(2, 5).u16(0);
        }),
    ];
    for (name, target, index, edit) in &damages {
        let mut e = header(1, 1);
        damage(&mut e, *target, *index, edit);
        ops(&mut e);
        inputs.push((format!("seed1-{name}"), e));
    }
    for (name, e) in &inputs {
        let path = dir.join(name);
        check(&e.bytes, &e.ops, &path);
        std::fs::write(&path, &e.bytes).unwrap();
        println!(
            "{}: {} bytes, {} operations",
            path.display(),
            e.bytes.len(),
            e.ops.len()
        );
    }
}
