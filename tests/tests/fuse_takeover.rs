//! Live upgrade over FUSE (`logfs-fuse --takeover`, docs/upgrade.md): 20 successive handovers
//! alternating a v1 and a v2 build of logfs-fuse while several threads create, write, fsync,
//! read, rename, unlink and verify continuously, in files that stay open across the handovers
//! too (one of them unlinked); not one call may fail. Then everything is verified, unmounted,
//! checked with `fsck.logfs -n`, remounted and verified again. And the refusals: a state the new
//! binary must refuse (an unknown required field, a damaged envelope) or that the old daemon
//! cannot give (memfs exports no state) leaves the old daemon serving, with a clear message.
//!
//! The v2 binary is built on first use into `<target>/v2` (`cargo build --release -p logfs-fuse
//! --features v2`), or taken from `$LOGFS_FUSE_V2`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logfs_tests::*;

const HANDOVERS: usize = 20;
const WORKERS: usize = 4;
const HELD_BLOCKS: u64 = 64;
const BLOCK: usize = 4096;

/// The v2 build of logfs-fuse.
fn v2_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LOGFS_FUSE_V2").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(t) => workspace.join(t).join("v2"),
        None => workspace.join("target").join("v2"),
    };
    let out = run_timeout(
        Command::new(env!("CARGO"))
            .current_dir(workspace)
            .args(["build", "--release", "-p", "logfs-fuse", "--features", "v2"])
            .arg("--target-dir")
            .arg(&target),
        Duration::from_secs(1800),
    );
    assert!(out.success(), "building the v2 logfs-fuse failed: {out}");
    target.join("release").join("logfs-fuse")
}

/// The pids of logfs-fuse daemons (either build) serving `mnt` or `image`.
fn daemons(image: &Path, mnt: &Path) -> Vec<(i32, PathBuf)> {
    fuse_daemons(&[
        image.to_path_buf(),
        fs::canonicalize(image).unwrap(),
        mnt.to_path_buf(),
        fs::canonicalize(mnt).unwrap_or_else(|_| mnt.to_path_buf()),
    ])
}

/// Wait until exactly one daemon serves the mount, and return its executable.
fn serving(image: &Path, mnt: &Path) -> PathBuf {
    let start = Instant::now();
    loop {
        let d = daemons(image, mnt);
        if d.len() == 1 {
            return d[0].1.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not one daemon serving {}: {d:?}",
            mnt.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stats(mnt: &Path) -> String {
    String::from_utf8(getxattr(mnt, "trusted.logfs.stats").expect("trusted.logfs.stats")).unwrap()
}

fn takeover(bin: &Path, mnt: &Path, fault: Option<&str>) -> Captured {
    let mut cmd = Command::new(bin);
    cmd.arg("--takeover").arg(mnt);
    if let Some(f) = fault {
        cmd.env("LOGFS_FUSE_TEST_FAULT", f);
    }
    run_timeout(&mut cmd, Duration::from_secs(120))
}

/// What the workload saw.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    ops: AtomicU64,
    failures: Mutex<Vec<String>>,
    /// The longest single call, in microseconds.
    max_us: AtomicU64,
}

impl Shared {
    /// Time one call; a failure is recorded (and the workload goes on).
    fn call<T>(&self, what: &str, f: impl FnOnce() -> std::io::Result<T>) -> Option<T> {
        let t = Instant::now();
        let r = f();
        let us = t.elapsed().as_micros() as u64;
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.ops.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.failures.lock().unwrap().push(format!("{what}: {e}"));
                None
            }
        }
    }

    fn mismatch(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

/// A file kept open for the whole run: block `b` holds `Gen(seeds[b])`.
struct Held {
    file: File,
    seeds: Vec<Option<u64>>,
}

impl Held {
    fn step(&mut self, shared: &Shared, what: &str, n: u64, seed: u64) {
        let b = n % HELD_BLOCKS;
        let data = Gen::new(seed).bytes(0, BLOCK);
        let off = b * BLOCK as u64;
        if shared
            .call(what, || self.file.write_all_at(&data, off))
            .is_some()
        {
            self.seeds[b as usize] = Some(seed);
        }
        let mut back = vec![0u8; BLOCK];
        if shared
            .call(what, || self.file.read_exact_at(&mut back, off))
            .is_some()
            && back != data
        {
            shared.mismatch(format!("{what}: block {b} read back wrong"));
        }
        if n.is_multiple_of(16) {
            shared.call(what, || self.file.sync_data());
        }
    }

    fn verify(&self, what: &str) {
        for (b, seed) in self.seeds.iter().enumerate() {
            let Some(seed) = seed else { continue };
            let got = read_at(&self.file, (b * BLOCK) as u64, BLOCK);
            assert!(
                got == Gen::new(*seed).bytes(0, BLOCK),
                "{what}: block {b} differs"
            );
        }
    }
}

/// Files a worker left: name -> (seed, length).
type Files = BTreeMap<String, (u64, usize)>;

/// What a worker left: its files, its open file and its open unlinked file.
struct Left {
    files: Files,
    held: Held,
    orphan: Held,
}

/// Check a worker's files and its held file (block seeds) under `root`.
fn verify_left(root: &Path, id: usize, files: &Files, seeds: &[Option<u64>], when: &str) {
    let dir = root.join(format!("w{id}"));
    for (name, &(seed, len)) in files {
        let got = fs::read(dir.join(name)).unwrap();
        assert!(
            got == Gen::new(seed).bytes(0, len),
            "{when}: {name} differs"
        );
    }
    let held = File::open(dir.join("held")).unwrap();
    for (b, seed) in seeds.iter().enumerate() {
        if let Some(seed) = seed {
            let got = read_at(&held, (b * BLOCK) as u64, BLOCK);
            assert!(
                got == Gen::new(*seed).bytes(0, BLOCK),
                "{when}: held block {b}"
            );
        }
    }
}

/// One worker, until `shared.stop`.
fn worker(id: usize, dir: PathBuf, shared: Arc<Shared>) -> Left {
    fs::create_dir_all(&dir).unwrap();
    let open = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(p)
            .unwrap()
    };
    let mut held = Held {
        file: open(&dir.join("held")),
        seeds: vec![None; HELD_BLOCKS as usize],
    };
    let orphan_path = dir.join("orphan");
    let mut orphan = Held {
        file: open(&orphan_path),
        seeds: vec![None; HELD_BLOCKS as usize],
    };
    fs::remove_file(&orphan_path).unwrap();
    let mut files = Files::new();
    let mut order = std::collections::VecDeque::new();
    let mut n: u64 = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let seed = (id as u64) << 40 | n;
        // A new file: written (sometimes fsynced), read back, renamed into place.
        let len = 1 + (Gen::new(seed).bytes(0, 8)[0] as usize) * 389;
        let data = Gen::new(seed).bytes(0, len);
        let tmp = dir.join(format!("tmp{n}"));
        let name = format!("f{n}");
        let written = shared.call("create+write", || {
            let mut f = File::create(&tmp)?;
            f.write_all(&data)?;
            if n.is_multiple_of(4) {
                f.sync_all()?;
            }
            Ok(())
        });
        if written.is_some() {
            if let Some(back) = shared.call("read", || fs::read(&tmp))
                && back != data
            {
                shared.mismatch(format!("worker {id}: {} read back wrong", tmp.display()));
            }
            if shared
                .call("rename", || fs::rename(&tmp, dir.join(&name)))
                .is_some()
            {
                files.insert(name.clone(), (seed, len));
                order.push_back(name);
            }
        }
        held.step(&shared, "held file", n, seed ^ 0x11);
        orphan.step(&shared, "unlinked open file", n, seed ^ 0x22);
        // An older file, read through a fresh open.
        if let Some((old, &(s, l))) = files.iter().nth((n as usize * 7) % files.len().max(1))
            && let Some(back) = shared.call("read old", || {
                let mut v = Vec::new();
                File::open(dir.join(old))?.read_to_end(&mut v)?;
                Ok(v)
            })
            && back != Gen::new(s).bytes(0, l)
        {
            shared.mismatch(format!("worker {id}: {old} differs"));
        }
        if order.len() > 40
            && let Some(oldest) = order.pop_front()
            && shared
                .call("unlink", || fs::remove_file(dir.join(&oldest)))
                .is_some()
        {
            files.remove(&oldest);
        }
        if n.is_multiple_of(8)
            && let Some(listed) = shared.call("readdir", || {
                fs::read_dir(&dir)?
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<std::io::Result<Vec<_>>>()
            })
        {
            let mut listed: Vec<_> = listed.into_iter().filter(|n| n.starts_with('f')).collect();
            listed.sort();
            let want: Vec<_> = files.keys().cloned().collect();
            if listed != want {
                shared.mismatch(format!("worker {id}: directory listing differs"));
            }
        }
        if n.is_multiple_of(32) {
            shared.call("statvfs", || statvfs(&dir).map(drop));
        }
    }
    Left {
        files,
        held,
        orphan,
    }
}

#[test]
fn twenty_handovers_under_load() {
    require_fuse!();
    let v1 = fs::canonicalize(fuse_bin()).unwrap();
    let v2 = fs::canonicalize(v2_bin()).unwrap();
    let out = run(Command::new(&v2).arg("--version"));
    assert!(out.stdout.contains("+v2"), "not a v2 build: {out}");
    let mut timer = Timer::new("fuse_takeover");

    let tmp = TempDir::new("takeover");
    let image = tmp.join("image");
    make_image(&image, GIB);
    let mnt = tmp.join("mnt");
    let m = Mount::new(&image, &mnt, &[]);
    let root = m.path().to_path_buf();
    assert_eq!(serving(&image, &mnt), v1);
    assert!(!stats(&root).contains("upgrades"), "{}", stats(&root));

    let shared = Arc::new(Shared::default());
    let workers: Vec<_> = (0..WORKERS)
        .map(|id| {
            let (dir, shared) = (root.join(format!("w{id}")), shared.clone());
            std::thread::spawn(move || worker(id, dir, shared))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    timer.lap("mount + workload start");

    let mut times = Vec::new();
    for i in 0..HANDOVERS {
        let (bin, is_v2) = if i % 2 == 0 {
            (&v2, true)
        } else {
            (&v1, false)
        };
        let before = shared.ops.load(Ordering::Relaxed);
        let t = Instant::now();
        let out = takeover(bin, &mnt, None);
        times.push(t.elapsed());
        assert!(out.success(), "handover {i}: {out}");
        assert_eq!(&serving(&image, &mnt), bin, "handover {i}");
        let s = stats(&root);
        assert_eq!(s.contains("+v2"), is_v2, "handover {i}: {s}");
        if is_v2 {
            assert!(
                s.contains(&format!("upgrades {}\n", i + 1)),
                "handover {i}: {s}"
            );
        }
        // Let the workload run on the new daemon before the next handover.
        let start = Instant::now();
        while shared.ops.load(Ordering::Relaxed) < before + 200 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "handover {i}: the workload is stuck"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    timer.lap("20 handovers");
    shared.stop.store(true, Ordering::Relaxed);
    let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let failures = shared.failures.lock().unwrap().clone();
    eprintln!(
        "{} calls, {} failed; longest call {} ms; takeover commands took {:?}",
        shared.ops.load(Ordering::Relaxed),
        failures.len(),
        shared.max_us.load(Ordering::Relaxed) / 1000,
        times
    );
    assert!(failures.is_empty(), "failed calls: {failures:#?}");

    // Everything the workload left, through the last daemon, then after a remount.
    for (id, left) in results.iter().enumerate() {
        verify_left(
            &root,
            id,
            &left.files,
            &left.held.seeds,
            "after the handovers",
        );
        left.held.verify(&format!("worker {id} held file"));
        left.orphan.verify(&format!("worker {id} unlinked file"));
    }
    // Close everything (the unlinked files go with their last close).
    let results: Vec<(Files, Vec<Option<u64>>)> = results
        .into_iter()
        .map(|left| (left.files, left.held.seeds))
        .collect();
    m.unmount();
    assert_fsck_clean(&image);
    timer.lap("verify + unmount + fsck");

    let m = Mount::new(&image, &mnt, &[]);
    let root = m.path().to_path_buf();
    for (id, (files, seeds)) in results.iter().enumerate() {
        verify_left(&root, id, files, seeds, "after a remount");
        assert!(!root.join(format!("w{id}")).join("orphan").exists());
    }
    m.unmount();
    assert_fsck_clean(&image);
    timer.lap("remount + verify + fsck");
}

#[test]
fn refused_handovers_leave_the_old_daemon_serving() {
    require_fuse!();
    let v1 = fs::canonicalize(fuse_bin()).unwrap();
    let tmp = TempDir::new("takeover-refused");
    let image = tmp.join("image");
    make_image(&image, 256 * MIB);
    let mnt = tmp.join("mnt");
    let m = Mount::new(&image, &mnt, &[]);
    let root = m.path().to_path_buf();
    let mut held = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(root.join("held"))
        .unwrap();
    held.write_all(b"before").unwrap();
    let pid = daemons(&image, &mnt);
    assert_eq!(pid.len(), 1);

    for (fault, why) in [
        (
            "unknown-field",
            "carries a field this version does not know",
        ),
        ("corrupt", "damaged"),
    ] {
        let out = takeover(&v1, &mnt, Some(fault));
        assert_eq!(out.code, Some(1), "{fault}: {out}");
        assert!(
            out.stderr.contains("refused the running daemon's state")
                && out.stderr.contains(why)
                && out.stderr.contains("it keeps serving"),
            "{fault}: unclear message: {out}"
        );
        // The same daemon serves on, and every call works.
        assert_eq!(daemons(&image, &mnt), pid, "{fault}");
        held.write_all(format!(" after {fault}").as_bytes())
            .unwrap();
        write_file(&root.join(fault), fault.as_bytes());
        assert_eq!(fs::read(root.join(fault)).unwrap(), fault.as_bytes());
    }
    // No daemon to talk to.
    let other = tmp.subdir("not-a-mount");
    let out = takeover(&v1, &other, None);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("nothing is mounted"), "{out}");

    // After the refusals, a real handover still works, open file included.
    let out = takeover(&v1, &mnt, None);
    assert!(out.success(), "{out}");
    held.write_all(b" after takeover").unwrap();
    held.sync_all().unwrap();
    assert_eq!(
        fs::read_to_string(root.join("held")).unwrap(),
        "before after unknown-field after corrupt after takeover"
    );
    drop(held);
    m.unmount();
    assert_fsck_clean(&image);

    // A file system that cannot export its state: memfs. The old daemon says so and serves on.
    let mem = tmp.subdir("mem");
    let memimg = tmp.join("memimg");
    sparse_file(&memimg, MIB);
    let m = Mount::new(&memimg, &mem, &["fs=memfs"]);
    write_file(&m.join("x"), b"x");
    let out = takeover(&v1, &mem, None);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("cannot hand over") && out.stderr.contains("keeps serving"),
        "{out}"
    );
    assert_eq!(fs::read(m.join("x")).unwrap(), b"x");
    // Mounted without takeover: no control socket, and a message saying so.
    drop(m);
    let m = Mount::new(&memimg, &mem, &["fs=memfs", "notakeover"]);
    let out = takeover(&v1, &mem, None);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("notakeover"), "{out}");
    drop(m);
}

#[test]
fn auto_unmount_follows_the_takeover() {
    require_fuse!();
    let v1 = fs::canonicalize(fuse_bin()).unwrap();
    let tmp = TempDir::new("takeover-auto-unmount");
    let image = tmp.join("image");
    make_image(&image, 256 * MIB);
    let mnt = tmp.join("mnt");
    let m = Mount::new(&image, &mnt, &["auto_unmount"]);
    write_file(&m.join("a"), b"a");
    let out = takeover(&v1, &mnt, None);
    assert!(out.success(), "{out}");
    serving(&image, &mnt);
    // The old daemon's exit is not the mount's end: the watcher's pipe was handed over.
    std::thread::sleep(Duration::from_millis(500));
    assert!(is_mounted(&mnt), "auto_unmount fired at the handover");
    assert_eq!(fs::read(m.join("a")).unwrap(), b"a");
    // The new daemon's death is.
    let d = daemons(&image, &mnt);
    assert_eq!(d.len(), 1, "{d:?}");
    // SAFETY: kill(2) of the daemon this test started.
    assert_eq!(unsafe { libc::kill(d[0].0, libc::SIGKILL) }, 0);
    let start = Instant::now();
    while is_mounted(&mnt) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "auto_unmount did not follow the takeover"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(wait_for_image_lock(&image, UNMOUNT_TIMEOUT));
    drop(m);
    assert_fsck_clean(&image);
}
