//! Crash consistency: logfs-fuse is killed with SIGKILL (no final checkpoint) in the middle of
//! a workload that creates, fsyncs and deletes files on a small volume (so the cleaner runs
//! too). After each crash fsck must find the image clean, and every file whose fsync (and its
//! directory's) had returned must be there with its exact contents.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logfs_tests::*;

/// What the writer knows is durable: name -> (size, seed); `None` while an unlink is in
/// flight (the file may or may not survive a crash).
type Journal = BTreeMap<String, Option<(u64, u64)>>;

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Create, fsync and delete files until an operation fails (the daemon was killed).
///
/// Every path goes through a descriptor of the mount's root (`/proc/self/fd/N`): the crash
/// detaches the mount (`umount -l`) right after killing the daemon, and a plain path would then
/// lead the next operations to the directory underneath, where they succeed and the journal
/// would record files logfs never saw.
fn writer(mnt: PathBuf, round: u64, journal: Arc<Mutex<Journal>>) {
    let Ok(root) = File::open(&mnt) else { return };
    let dir = PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd()));
    let sizes = [10, 5000, 100_000, 300_000, 1 << 20];
    let mut rng = Gen::new(round).bytes(0, 4096).into_iter().cycle();
    for i in 0u64.. {
        let free = statvfs(&dir).map(|s| s.f_bfree as f64 / s.f_blocks as f64);
        let Ok(free) = free else { return };
        let live: Vec<String> = journal
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let r = rng.next().unwrap();
        if !live.is_empty() && (free < 0.5 || r < 50) {
            let victim = &live[usize::from(rng.next().unwrap()) * 256 % live.len()];
            journal.lock().unwrap().insert(victim.clone(), None);
            if fs::remove_file(dir.join(victim)).is_err() || fsync_dir(&dir).is_err() {
                return;
            }
            journal.lock().unwrap().remove(victim);
            continue;
        }
        let name = format!("r{round}-{i}");
        let size = sizes[usize::from(r) % sizes.len()];
        let seed = round << 32 | i;
        let ok = (|| -> std::io::Result<()> {
            let mut f = File::create(dir.join(&name))?;
            f.write_all(&Gen::new(seed).bytes(0, size as usize))?;
            f.sync_all()?;
            drop(f);
            fsync_dir(&dir)
        })();
        if ok.is_err() {
            return;
        }
        journal.lock().unwrap().insert(name, Some((size, seed)));
    }
}

#[test]
fn crash_recovery() {
    require_fuse!();
    let mut timer = Timer::new("crash_recovery");
    let tmp = TempDir::new("crash");
    let img = tmp.join("img");
    make_image(&img, 64 * MIB);
    let mnt = tmp.subdir("mnt");
    let journal = Arc::new(Mutex::new(Journal::new()));
    for round in 1..=5u64 {
        let m = Mount::new(&img, &mnt, &[]);
        let j = journal.clone();
        let dir = m.path().to_path_buf();
        let t = std::thread::spawn(move || writer(dir, round, j));
        std::thread::sleep(Duration::from_millis(700 + 300 * round));
        m.crash();
        t.join().unwrap();
        let out = fsck(&img);
        assert_eq!(out.code, Some(0), "fsck after crash {round}: {out}");

        let m = Mount::new(&img, &mnt, &[]);
        let j = journal.lock().unwrap();
        let mut checked = 0;
        for (name, entry) in j.iter() {
            let p = m.join(name);
            match entry {
                Some((size, seed)) => {
                    verify_gen_file(&p, Gen::new(*seed), *size);
                    checked += 1;
                }
                None => {
                    if p.exists() {
                        // An unlink in flight: the file is either gone or intact. We do not
                        // know which write it was, so only check it is readable.
                        fs::read(&p).unwrap();
                    }
                }
            }
        }
        drop(j);
        journal
            .lock()
            .unwrap()
            .retain(|name, v| v.is_some() || m.join(name).exists());
        // Files in flight at the crash are unknown to the journal: forget them.
        for e in fs::read_dir(m.path()).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            let known = journal.lock().unwrap().contains_key(&name);
            if !known {
                fs::remove_file(m.join(&name)).unwrap();
            }
        }
        m.unmount();
        assert_fsck_clean(&img);
        timer.lap(&format!(
            "round {round}: crash, fsck, {checked} fsync'd files verified"
        ));
    }
}
