//! fsck over volumes logfs built through the FileSystem trait: every one must check clean.

mod common;

use bento_api::fs::{FileSystem, ROOT_INO};
use common::*;

#[test]
fn fresh_volume_is_clean() {
    let dev = new_device(64);
    let r = assert_clean(&dev, "on a fresh volume");
    assert_eq!(r.stats.inodes, 1);
    assert_eq!(r.stats.directories, 1);
    assert_eq!(r.stats.used_blocks, 1);
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn populated_volume_is_clean_at_every_stage() {
    let dev = new_device(64);
    let fs = mount(&dev);
    populate(&fs);
    // A checkpoint while mounted: unlinked files still looked up are orphans.
    fs.sync_fs().unwrap();
    let r = assert_clean(&dev, "after a mid-mount checkpoint");
    assert!(r.stats.orphans > 0, "expected orphans: {:?}", r.stats);
    assert!(!r.stats.clean);
    unmount(fs);
    let r = assert_clean(&dev, "after unmount");
    dump(&r);
    assert!(r.stats.clean);
    assert_eq!(r.stats.orphans, 0);
    assert!(r.stats.directories >= 5, "{:?}", r.stats);
    assert!(
        r.stats.symlinks == 2 && r.stats.special_files == 2,
        "{:?}",
        r.stats
    );
    assert!(r.stats.preallocated_blocks > 0);

    // Remount: more deletes and renames, then clean again.
    let fs = mount(&dev);
    let d1 = fs.lookup(&R, ROOT_INO, b"dir1").unwrap().attr.ino;
    for i in (1..700u32).step_by(3) {
        let name = format!("entry-{i:04}-{}", "x".repeat((i % 40) as usize));
        fs.unlink(&R, d1, name.as_bytes()).unwrap();
    }
    fs.rename(
        &R,
        ROOT_INO,
        b"dir1",
        ROOT_INO,
        b"dir1-renamed",
        Default::default(),
    )
    .unwrap();
    unmount(fs);
    assert_clean(&dev, "after a second mount");
}

#[test]
fn volume_after_cleaning_is_clean() {
    let dev = new_device(64);
    let fs = mount(&dev);
    populate(&fs);
    churn(&fs, 1, 25_000);
    let gc = fs.with_volume(|v| v.stats().gc_segments);
    unmount(fs);
    assert_clean(&dev, "after segment cleaning");
    assert!(gc > 0, "the cleaner never ran");
}

/// A device that runs fsck on itself before every `every`-th write: the state a crash at that
/// moment would leave. Every such state must be consistent (its last checkpoint is in force).
struct CrashChecker {
    inner: bento_user::MemDevice,
    every: u64,
    writes: std::sync::atomic::AtomicU64,
    checks: std::sync::atomic::AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
}

impl bento_api::ks::block::BlockDevice for CrashChecker {
    fn block_count(&self) -> u64 {
        self.inner.block_count()
    }
    fn read_blocks(&self, block: u64, buf: &mut [u8]) -> bento_api::errno::Result<()> {
        self.inner.read_blocks(block, buf)
    }
    fn write_blocks(
        &self,
        block: u64,
        buf: &[u8],
        flags: bento_api::ks::block::WriteFlags,
    ) -> bento_api::errno::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let n = self.writes.fetch_add(1, Relaxed);
        if n.is_multiple_of(self.every) {
            self.checks.fetch_add(1, Relaxed);
            let r = check(&self.inner);
            if !r.is_clean() || r.warnings > 0 {
                let mut msg = format!("before write {n} (block {block}):");
                for f in r
                    .findings
                    .iter()
                    .filter(|f| f.severity != fsck::Severity::Info)
                    .take(5)
                {
                    msg.push_str(&format!("\n  {f}"));
                }
                self.failures.lock().unwrap().push(msg);
            }
        }
        self.inner.write_blocks(block, buf, flags)
    }
    fn flush(&self) -> bento_api::errno::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn every_crash_point_is_consistent() {
    use bento_api::fs::{Mount, MountOptions};
    use std::sync::Arc;
    let mem = bento_user::MemDevice::new(64 * 256);
    logfs::mkfs::format(&mem, &mkfs_opts()).unwrap();
    let dev = Arc::new(CrashChecker {
        inner: mem,
        every: std::env::var("CRASH_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(7),
        writes: Default::default(),
        checks: Default::default(),
        failures: Default::default(),
    });
    let fs = logfs::LogFs::mount(dev.clone(), &MountOptions::default()).unwrap();
    populate(&fs);
    churn(&fs, 2, 25_000);
    fs.destroy().unwrap();
    let failures = dev.failures.lock().unwrap();
    let checks = dev.checks.load(std::sync::atomic::Ordering::Relaxed);
    println!("{checks} crash points checked");
    assert!(checks > 20, "only {checks} crash points checked");
    assert!(
        failures.is_empty(),
        "{} of {checks} crash points inconsistent:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn random_operations_leave_a_clean_volume() {
    let seeds: u64 = env_or("FSCK_RANDOM_SEEDS", 3);
    let ops: u32 = env_or("FSCK_RANDOM_OPS", 3000);
    let fill: u64 = env_or("FSCK_RANDOM_FILL_MIB", 40);
    for seed in 0..seeds {
        let dev = new_device(64);
        let fs = mount(&dev);
        random_ops(&fs, seed, ops, fill << 20);
        fs.sync_fs().unwrap();
        assert_clean_or_orphans(&dev, seed);
        unmount(fs);
        assert_clean(&dev, &format!("after random operations (seed {seed})"));
    }
}

fn assert_clean_or_orphans(dev: &bento_user::MemDevice, seed: u64) {
    let r = check(dev);
    if !r.is_clean() || r.warnings > 0 {
        dump(&r);
        panic!("fsck found problems mid-mount (seed {seed})");
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn every_crash_point_of_random_operations_is_consistent() {
    use bento_api::fs::{Mount, MountOptions};
    use std::sync::Arc;
    let seeds: u64 = env_or("FSCK_RANDOM_SEEDS", 1);
    for seed in 100..100 + seeds {
        let mem = bento_user::MemDevice::new(64 * 256);
        logfs::mkfs::format(&mem, &mkfs_opts()).unwrap();
        let dev = Arc::new(CrashChecker {
            inner: mem,
            every: env_or("CRASH_EVERY", 5),
            writes: Default::default(),
            checks: Default::default(),
            failures: Default::default(),
        });
        let fs = logfs::LogFs::mount(dev.clone(), &MountOptions::default()).unwrap();
        random_ops(
            &fs,
            seed,
            env_or("FSCK_RANDOM_OPS", 3000),
            env_or("FSCK_RANDOM_FILL_MIB", 40) << 20,
        );
        fs.destroy().unwrap();
        let failures = dev.failures.lock().unwrap();
        let checks = dev.checks.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            failures.is_empty(),
            "seed {seed}: {} of {checks} crash points inconsistent:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert_clean(&dev.inner, "after random operations");
    }
}
