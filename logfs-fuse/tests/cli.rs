//! The `logfs-fuse` binary end to end, with the in-memory test file system (`-o fs=memfs`), so
//! these exercise the front end alone: daemonizing, the image lock, signals, error exits.
//!
//! Mounting needs root and /dev/fuse; without them those tests print why and pass.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_logfs-fuse");

fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => None,
        Err(e) => Some(format!("cannot open /dev/fuse: {e}")),
    }
}

macro_rules! require_fuse {
    () => {
        if let Some(why) = unavailable() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

/// A temporary directory with a blank 1 MiB image and a mount point.
struct Scratch {
    dir: PathBuf,
    image: PathBuf,
    mnt: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("logfs-fuse-cli-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mnt = dir.join("mnt");
        fs::create_dir_all(&mnt).unwrap();
        let image = dir.join("image");
        File::create(&image).unwrap().set_len(1 << 20).unwrap();
        Scratch { dir, image, mnt }
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(["-o", "fs=memfs"])
            .args(extra)
            .arg(&self.image)
            .arg(&self.mnt);
        cmd
    }

    fn mounted(&self) -> bool {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(self.mnt.to_str().unwrap()))
    }

    /// Clean unmounts memfs recorded in the image (its label in block 0).
    fn generation(&self) -> u64 {
        let mut block = [0u8; 16];
        File::open(&self.image)
            .unwrap()
            .read_exact(&mut block)
            .unwrap();
        if block[..8] == *b"MEMFS\0\0\x01" {
            u64::from_le_bytes(block[8..].try_into().unwrap())
        } else {
            0
        }
    }

    /// Block until no logfs-fuse holds the image: how tools wait for the final checkpoint.
    fn wait_for_lock(&self) {
        let f = File::open(&self.image).unwrap();
        // SAFETY: flock on an open descriptor; blocks until the daemon has exited.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    }

    fn umount(&self) {
        let status = Command::new("umount").arg(&self.mnt).status().unwrap();
        assert!(status.success());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted() {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(Command::new(BIN).output().unwrap().status.code(), Some(2));
    let s = Scratch::new("usage");
    for opts in [
        ["-o", "threads=many"],
        ["-o", "fs=nosuchfs"],
        ["-o", "ro=yes"],
    ] {
        let out = s.command(&opts).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{opts:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("logfs-fuse: "), "{}", stderr(&out));
    }
}

#[test]
fn missing_paths_are_clear_errors() {
    let s = Scratch::new("paths");
    let out = Command::new(BIN)
        .arg(&s.image)
        .arg(s.dir.join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("mount point") && stderr(&out).contains("No such file"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(BIN)
        .arg(s.dir.join("noimage"))
        .arg(&s.mnt)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("noimage: No such file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn daemon_mount_lock_and_unmount() {
    require_fuse!();
    let s = Scratch::new("daemon");
    let out = s.command(&[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Mounted by the time the parent exits.
    assert!(s.mounted());
    fs::write(s.mnt.join("f"), b"data").unwrap();
    assert_eq!(fs::read(s.mnt.join("f")).unwrap(), b"data");
    let line = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = line
        .lines()
        .find(|l| l.contains(s.mnt.to_str().unwrap()))
        .unwrap()
        .to_string();
    assert!(
        line.starts_with(&format!("{} ", s.image.display())),
        "{line}"
    );
    assert!(line.contains(" fuse.memfs "), "{line}");

    // A second mount of the same image fails at once.
    let other = s.dir.join("other");
    fs::create_dir(&other).unwrap();
    let out = Command::new(BIN)
        .args(["-o", "fs=memfs"])
        .arg(&s.image)
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is in use by another logfs-fuse"),
        "{}",
        stderr(&out)
    );

    s.umount();
    s.wait_for_lock();
    assert_eq!(
        s.generation(),
        1,
        "destroy finished before the lock was released"
    );
}

#[test]
fn foreground_sigterm_unmounts_cleanly() {
    require_fuse!();
    let s = Scratch::new("sigterm");
    let mut child = s.command(&["-f"]).stderr(Stdio::piped()).spawn().unwrap();
    wait_until("the mount", || s.mounted());
    fs::write(s.mnt.join("f"), b"data").unwrap();
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!s.mounted());
    assert_eq!(s.generation(), 1);
}

#[test]
fn foreign_image_fails_without_panic() {
    require_fuse!();
    let s = Scratch::new("foreign");
    fs::write(&s.image, vec![0xa5u8; 8192]).unwrap();
    for extra in [&[][..], &["-f"][..]] {
        let out = s.command(extra).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("not a memfs device"),
            "the file system's reason: {err}"
        );
        assert!(err.contains("cannot mount"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!s.mounted());
    }
}

/// The pid of the process serving `mnt` (the one with /dev/fuse open and `mnt` in its args).
fn server_pid(mnt: &Path) -> Option<libc::pid_t> {
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else {
            continue;
        };
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(mnt.to_str().unwrap()) {
            continue;
        }
        let has_fuse = fs::read_dir(entry.path().join("fd"))
            .map(|fds| {
                fds.flatten()
                    .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t == Path::new("/dev/fuse")))
            })
            .unwrap_or(false);
        if has_fuse {
            return Some(pid);
        }
    }
    None
}

#[test]
fn auto_unmount_after_kill() {
    require_fuse!();
    let s = Scratch::new("autounmount");
    let out = s.command(&["-o", "auto_unmount"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(s.mounted());
    let pid = server_pid(&s.mnt).expect("the serving process");
    // SAFETY: kills the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_until("the automatic unmount", || !s.mounted());
}
