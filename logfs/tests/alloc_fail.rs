//! Allocation failure: logfs on a memory device, with every Nth allocation of this thread failing
//! (a global allocator that injects failures, as the kernel's `fail_alloc_*` parameters do). Every
//! call must answer or fail with ENOMEM, never abort (an infallible allocation that fails aborts
//! this test binary) nor leave the volume inconsistent: with the injection off, the files read
//! back as written, the volume unmounts, mounts again and fsck finds nothing wrong.
//!
//! No libtest harness (Cargo.toml: `harness = false`): it captures what the file system logs
//! into a growing buffer, whose allocations would fail too; here the log goes straight to
//! standard error.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use bento_runtime::Errno;
use bento_runtime::fs::{
    FileSystem, FileType, Ino, Mount, MountOptions, ROOT_INO, RenameFlags, SetAttr,
};
use bento_user::MemDevice;
use common::*;
use logfs::LogFs;

struct Failing;

thread_local! {
    /// Fail every Nth allocation of this thread (0: never) while ACTIVE (inside a call into
    /// the file system: the test's own allocations must not fail).
    static EVERY: Cell<u64> = const { Cell::new(0) };
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static SEEN: Cell<u64> = const { Cell::new(0) };
    static FAILED: Cell<u64> = const { Cell::new(0) };
}

fn inject() -> bool {
    EVERY
        .try_with(|e| {
            let every = e.get();
            if every == 0 || !ACTIVE.with(|a| a.get()) {
                return false;
            }
            let seen = SEEN.with(|s| {
                s.set(s.get() + 1);
                s.get()
            });
            let fail = seen.is_multiple_of(every);
            if fail {
                FAILED.with(|f| f.set(f.get() + 1));
            }
            fail
        })
        .unwrap_or(false)
}

// SAFETY: System's allocator with some allocations refused (null), which GlobalAlloc allows.
unsafe impl GlobalAlloc for Failing {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if inject() {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if inject() {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        if inject() {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(p, l, size) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Failing = Failing;

/// Run `f` with every `every`th allocation inside [`call`] failing; returns its result and the
/// failures.
fn failing<T>(every: u64, f: impl FnOnce() -> T) -> (T, u64) {
    FAILED.with(|c| c.set(0));
    SEEN.with(|c| c.set(0));
    EVERY.with(|e| e.set(every));
    let r = f();
    EVERY.with(|e| e.set(0));
    (r, FAILED.with(|c| c.get()))
}

/// A call into the file system: only its allocations may fail.
fn call<T>(f: impl FnOnce() -> T) -> T {
    ACTIVE.with(|a| a.set(true));
    let r = f();
    ACTIVE.with(|a| a.set(false));
    r
}

/// The byte at `off` of every file this test writes.
fn pattern(off: usize) -> u8 {
    (off * 7 % 251) as u8
}

/// What the workload saw: calls made, calls that failed with ENOMEM, and other failures.
#[derive(Default, Debug)]
struct Tally {
    calls: u64,
    enomem: u64,
    bad: Vec<String>,
}

impl Tally {
    /// Count a result; true when it succeeded.
    fn ok<T>(&mut self, what: &str, f: impl FnOnce() -> Result<T, Errno>) -> Option<T> {
        self.calls += 1;
        match call(f) {
            Ok(v) => Some(v),
            Err(Errno::ENOMEM) => {
                if std::env::var_os("ALLOC_FAIL_DEBUG").is_some() {
                    eprintln!("ENOMEM: {what}");
                }
                self.enomem += 1;
                None
            }
            Err(e) => {
                self.bad.push(format!("{what}: {e:?}"));
                None
            }
        }
    }
}

/// One round of everything a file system is asked, each call depending only on calls that
/// succeeded, so any failure but ENOMEM is a bug.
fn workload(fs: &Fs, round: u32, t: &mut Tally) {
    let (dname, rname) = (format!("d{round}"), format!("r{round}"));
    let Some(d) = t.ok("mkdir", || fs.mkdir(&R, ROOT_INO, dname.as_bytes(), 0o755)) else {
        return;
    };
    let d = d.attr.ino;
    // (j, inode, bytes written) of every file fJ created.
    let mut files: Vec<(usize, Ino, usize)> = Vec::new();
    for j in 0..6usize {
        let name = format!("f{j}");
        let Some((e, _)) = t.ok("create", || fs.create(&R, d, name.as_bytes(), 0o644, 0)) else {
            continue;
        };
        let ino = e.attr.ino;
        let _ = t.ok("release", || fs.release(&R, ino, 0, 0));
        // Sizes across inline data, direct and indirect blocks.
        let size = [100usize, 3000, 5000, 70_000, 300_000, 5_000_000][j];
        let mut off = 0usize;
        while off < size {
            let n = (size - off).min(256 * 1024);
            let buf: Vec<u8> = (off..off + n).map(pattern).collect();
            match t.ok("write", || fs.write(&R, ino, 0, off as u64, &buf)) {
                Some(w) => off += w,
                None => break,
            }
        }
        files.push((j, ino, off));
        if t.ok("setxattr", || fs.setxattr(&R, ino, b"user.k", b"value", 0))
            .is_some()
        {
            let v = t.ok("getxattr", || fs.getxattr(&R, ino, b"user.k"));
            assert!(v.is_none_or(|v| v == b"value"));
        }
        let _ = t.ok("listxattr", || fs.listxattr(&R, ino));
    }
    let has = |j: usize| files.iter().find(|f| f.0 == j).map(|f| f.1);
    for &(j, ino, written) in &files {
        let _ = t.ok("getattr", || fs.getattr(&R, ino));
        let mut buf = vec![0u8; 8192];
        let _ = t.ok("read", || fs.read(&R, ino, 0, 0, &mut buf));
        // Shorter only: a truncate that extends adds zeros, which the check does not expect.
        if j == 4 && written >= 123_457 {
            let size = SetAttr {
                size: Some(123_457),
                ..Default::default()
            };
            let _ = t.ok("truncate", || fs.setattr(&R, ino, &size, None));
        }
        if j == 5 {
            let _ = t.ok("fsync", || fs.fsync(&R, ino, 0, false));
        }
    }
    if let Some(f0) = has(0)
        && t.ok("lookup", || fs.lookup(&R, d, b"f0")).is_some()
    {
        call(|| fs.forget(f0, 1));
        if t.ok("rename", || {
            fs.rename(&R, d, b"f0", ROOT_INO, rname.as_bytes(), RenameFlags(0))
        })
        .is_some()
        {
            let _ = t.ok("link", || fs.link(&R, f0, d, b"hard"));
        }
    }
    let _ = t.ok("symlink", || fs.symlink(&R, d, b"sym", b"f1"));
    let _ = t.ok("lookup", || fs.lookup(&R, d, b"sym")).map(|e| {
        let _ = t.ok("readlink", || fs.readlink(&R, e.attr.ino));
    });
    let mut names = Count(0);
    let _ = t.ok("readdir", || fs.readdir(&R, d, 0, 0, &mut names));
    if has(3).is_some() {
        let _ = t.ok("unlink", || fs.unlink(&R, d, b"f3"));
    }
    if let Some(e) = t.ok("mkdir", || fs.mkdir(&R, d, b"empty", 0o755)) {
        let _ = e;
        let _ = t.ok("rmdir", || fs.rmdir(&R, d, b"empty"));
    }
    let _ = t.ok("statfs", || fs.statfs(&R, ROOT_INO));
}

/// A readdir filler that allocates nothing (the test's allocations must not fail).
struct Count(usize);

impl bento_runtime::fs::DirFiller for Count {
    fn add(&mut self, _: Ino, _: u64, _: FileType, _: &[u8]) -> bool {
        self.0 += 1;
        false
    }
}

/// Every regular file under `dir` holds the pattern up to its size.
fn check_tree(fs: &Fs, dir: Ino, path: &str) {
    for (name, ino, kind) in list(fs, dir) {
        let p = format!("{path}/{}", String::from_utf8_lossy(&name));
        match kind {
            FileType::Directory => check_tree(fs, ino, &p),
            FileType::RegularFile => {
                let data = read_all(fs, ino);
                let bad = data.iter().enumerate().position(|(i, &b)| b != pattern(i));
                assert_eq!(bad, None, "{p}: {} bytes, wrong from {bad:?}", data.len());
            }
            _ => {}
        }
    }
}

fn assert_clean(dev: &Arc<MemDevice>) {
    let report = fsck::check(&**dev, &fsck::CheckOptions::default());
    let errors: Vec<String> = report.errors().map(|f| f.to_string()).collect();
    assert!(report.is_clean() && errors.is_empty(), "fsck: {errors:#?}");
}

fn main() {
    every_call_answers_or_fails_with_enomem();
    eprintln!("alloc_fail: every_call_answers_or_fails_with_enomem ok");
    mount_and_unmount_under_failures();
    eprintln!("alloc_fail: mount_and_unmount_under_failures ok");
    // Failures panic (and abort for an infallible allocation): reaching here is success.
    println!("alloc_fail: 2 passed, 0 failed");
}

fn every_call_answers_or_fails_with_enomem() {
    let dev = new_device(128);
    let fs = mount(&dev);
    // Data from before the failures, to find intact afterwards.
    let keep = fs
        .create(&R, ROOT_INO, b"keep", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    let before: Vec<u8> = (0..1_000_000).map(pattern).collect();
    fs.write(&R, keep, 0, 0, &before).unwrap();
    fs.sync_fs().unwrap();

    let mut total = Tally::default();
    let mut injected = 0;
    // Each of 1..=16, so the first allocations of calls fail, and primes, so later ones do.
    let intervals = (1..=16).chain([19, 23, 29, 31, 37, 41, 53, 97, 211]);
    for (round, every) in intervals.enumerate() {
        let mut t = Tally::default();
        let ((), n) = failing(every, || workload(&fs, round as u32, &mut t));
        if std::env::var_os("ALLOC_FAIL_DEBUG").is_some() {
            eprintln!("round {round} every {every} done");
            check_tree(&fs, ROOT_INO, "");
        }
        injected += n;
        assert!(
            t.bad.is_empty(),
            "every {every}: failures other than ENOMEM: {:#?}",
            t.bad
        );
        // The injection is off: the volume still works.
        let probe = fs.mkdir(&R, ROOT_INO, format!("probe{round}").as_bytes(), 0o755);
        assert!(
            probe.is_ok(),
            "every {every}: after the failures: {probe:?}"
        );
        total.calls += t.calls;
        total.enomem += t.enomem;
    }
    eprintln!(
        "alloc_fail: {} calls, {} failed with ENOMEM, {injected} allocations refused",
        total.calls, total.enomem
    );
    // A refused allocation fails its call, unless the code has a way around it (the caches
    // evict without sorting, a discard list is skipped).
    assert!(
        total.enomem > 100 && injected >= total.enomem,
        "{total:?}, {injected} refused"
    );
    assert!(
        total.calls > total.enomem * 2,
        "most calls should still succeed: {total:?}"
    );

    check_tree(&fs, ROOT_INO, "");
    assert_eq!(read_all(&fs, keep), before);
    unmount(fs);
    assert_clean(&dev);
    let fs = mount(&dev);
    check_tree(&fs, ROOT_INO, "");
    assert_eq!(read_all(&fs, keep), before);
    unmount(fs);
}

fn mount_and_unmount_under_failures() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let f = fs.create(&R, ROOT_INO, b"f", 0o644, 0).unwrap().0.attr.ino;
    fs.write(&R, f, 0, 0, &(0..200_000).map(pattern).collect::<Vec<u8>>())
        .unwrap();
    unmount(fs);
    let mut refused = 0;
    for every in 1..=40 {
        let opts = MountOptions::default();
        let (r, _) = failing(every, || call(|| LogFs::mount(dev.clone(), &opts)));
        match r {
            Ok(fs) => unmount(fs),
            Err(e) => {
                assert_eq!(
                    e,
                    Errno::ENOMEM,
                    "mount with every {every}th allocation failing"
                );
                refused += 1;
            }
        }
        assert_clean(&dev);
    }
    assert!(refused > 0);
    let fs = mount(&dev);
    check_tree(&fs, ROOT_INO, "");
    unmount(fs);
}
