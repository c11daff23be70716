//! Helpers for the system tests in `tests/tests/*.rs`: the release binaries, scratch
//! directories, images, an RAII FUSE mount, command capture, a fast deterministic data
//! generator and a tree comparison.
//!
//! The tests drive the real binaries (`mkfs.logfs`, `logfs-fuse`, `fsck.logfs`) from
//! `$LOGFS_BIN_DIR`, or `<workspace>/target/release` (build them first with
//! `cargo build --release`). Mounting needs root and `/dev/fuse`; without them the tests print
//! why and pass (see [`require_fuse!`]).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// How long a mount may take to let go of its image after `umount` (final checkpoint).
pub const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Binaries

/// The directory holding the release binaries: `$LOGFS_BIN_DIR`, else `$CARGO_TARGET_DIR/release`,
/// else `<workspace>/target/release`.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("LOGFS_BIN_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate lives in the workspace")
            .to_path_buf();
        match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
            Some(t) => workspace.join(t).join("release"),
            None => workspace.join("target").join("release"),
        }
    })
}

/// The path of a release binary; panics with instructions if it has not been built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release` in the workspace first \
         (or point LOGFS_BIN_DIR at the directory holding mkfs.logfs, logfs-fuse and fsck.logfs)",
        path.display()
    );
    path
}

pub fn mkfs_bin() -> PathBuf {
    bin("mkfs.logfs")
}

pub fn fuse_bin() -> PathBuf {
    bin("logfs-fuse")
}

pub fn fsck_bin() -> PathBuf {
    bin("fsck.logfs")
}

// ---------------------------------------------------------------------------------------------
// Environment

/// Why FUSE mounts cannot be tested here, or `None` if they can.
pub fn fuse_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => None,
        Err(e) => Some(format!("cannot open /dev/fuse: {e}")),
    }
}

/// Return early from a test (which then passes) when FUSE mounts are not possible, saying why.
#[macro_export]
macro_rules! require_fuse {
    () => {
        if let Some(why) = $crate::fuse_unavailable() {
            eprintln!("SKIPPED: {why}; this test needs root and /dev/fuse");
            return;
        }
    };
}

/// A command (binary name) on `$PATH`, if there.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------------------------
// Scratch directories and images

/// A fresh directory under `$TMPDIR` (or /tmp), removed with everything in it on drop (after
/// lazily unmounting anything still mounted inside).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("logfs-tests-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }

    /// A new empty directory inside.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        for mp in mounts_under(&self.path) {
            let _ = Command::new("umount").arg("-l").arg(&mp).status();
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Create (or resize) a sparse file of `size` bytes.
pub fn sparse_file(path: &Path, size: u64) {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    f.set_len(size).unwrap();
}

/// Make a sparse image of `size` bytes and a logfs on it; panics if mkfs fails.
pub fn make_image(path: &Path, size: u64) {
    sparse_file(path, size);
    mkfs(path);
}

/// Run `mkfs.logfs -q -f` on `path`, which must succeed.
pub fn mkfs(path: &Path) {
    let out = run(Command::new(mkfs_bin()).arg("-q").arg("-f").arg(path));
    assert!(out.success(), "mkfs.logfs {} failed: {out}", path.display());
}

/// Run `fsck.logfs -n` on `image`.
pub fn fsck(image: &Path) -> Captured {
    run(Command::new(fsck_bin()).arg("-n").arg(image))
}

/// `fsck.logfs -n` must find `image` clean (exit 0).
pub fn assert_fsck_clean(image: &Path) {
    let out = fsck(image);
    assert_eq!(
        out.code,
        Some(0),
        "fsck.logfs -n {} did not find it clean: {out}",
        image.display()
    );
}

// ---------------------------------------------------------------------------------------------
// Running commands

/// The outcome of a command that ran to completion.
#[derive(Debug)]
pub struct Captured {
    pub what: String,
    pub status: ExitStatus,
    /// The exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl std::fmt::Display for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {} after {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// How long [`run`] lets a command take before killing it and failing.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Run `cmd` with no input, capturing its output; panics if it cannot start or takes longer
/// than [`COMMAND_TIMEOUT`].
pub fn run(cmd: &mut Command) -> Captured {
    run_timeout(cmd, COMMAND_TIMEOUT)
}

/// [`run`] with a time limit of one's own.
pub fn run_timeout(cmd: &mut Command, limit: Duration) -> Captured {
    let what = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    // Read in threads so that a daemon child keeping the pipes open cannot block us: we stop
    // waiting for the pipes once the process itself has exited (see below).
    let (tx_out, rx_out) = std::sync::mpsc::channel();
    let (tx_err, rx_err) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        let _ = tx_out.send(s);
    });
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        let _ = tx_err.send(s);
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let grace = Duration::from_secs(5);
    let stdout = rx_out.recv_timeout(grace).unwrap_or_default();
    let stderr = rx_err.recv_timeout(grace).unwrap_or_default();
    Captured {
        what,
        code: status.code(),
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed,
    }
}

// ---------------------------------------------------------------------------------------------
// Mounts

/// The mount points in /proc/self/mountinfo, in mount order.
pub fn mount_points() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(p))))
        .collect()
}

/// The mountinfo line of the topmost mount on `mnt`, if any.
pub fn mount_info(mnt: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .rfind(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|p| unescape(p) == mnt.as_os_str().as_bytes())
        })
        .map(str::to_string)
}

pub fn is_mounted(mnt: &Path) -> bool {
    mount_info(mnt).is_some()
}

fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect();
    v.reverse();
    v
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Wait until nobody holds a `flock` on `image` (a logfs-fuse daemon holds one until it has
/// written its final checkpoint and exited). False if it is still held after `limit`.
pub fn wait_for_image_lock(image: &Path, limit: Duration) -> bool {
    let Ok(f) = File::open(image) else {
        return true;
    };
    let start = Instant::now();
    loop {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            // SAFETY: as above.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A logfs-fuse mount; unmounted (and its final checkpoint waited for) on drop.
pub struct Mount {
    image: PathBuf,
    mnt: PathBuf,
    mounted: bool,
}

impl Mount {
    /// Mount `image` on `mnt` (created if missing) with `-o` options; panics on failure.
    pub fn new(image: &Path, mnt: &Path, options: &[&str]) -> Mount {
        match Mount::try_new(image, mnt, options) {
            Ok(m) => m,
            Err(out) => panic!("mounting {} failed: {out}", image.display()),
        }
    }

    /// Mount, or the failed logfs-fuse run.
    pub fn try_new(image: &Path, mnt: &Path, options: &[&str]) -> Result<Mount, Captured> {
        fs::create_dir_all(mnt).unwrap();
        let out = mount_command(image, mnt, options);
        if !out.success() {
            return Err(out);
        }
        assert!(
            is_mounted(mnt),
            "logfs-fuse reported success but nothing is mounted on {}: {out}",
            mnt.display()
        );
        Ok(Mount {
            image: image.to_path_buf(),
            mnt: mnt.to_path_buf(),
            mounted: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.mnt
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.mnt.join(p)
    }

    pub fn image(&self) -> &Path {
        &self.image
    }

    /// Unmount, which must succeed, and wait for the daemon's final checkpoint.
    pub fn unmount(mut self) {
        self.mounted = false;
        let out = run(Command::new("umount").arg(&self.mnt));
        assert!(out.success(), "umount {} failed: {out}", self.mnt.display());
        assert!(
            wait_for_image_lock(&self.image, UNMOUNT_TIMEOUT),
            "logfs-fuse still holds {} {UNMOUNT_TIMEOUT:?} after umount",
            self.image.display()
        );
    }
}

impl Mount {
    /// Simulate a crash: SIGKILL the daemon (no final checkpoint), detach the dead mount and
    /// wait for the image lock to go.
    pub fn crash(mut self) {
        let pid = daemon_pid(&self.image).expect("no logfs-fuse daemon for this mount");
        // SAFETY: kill(2) of the daemon this mount started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        self.mounted = false;
        let out = run(Command::new("umount").arg("-l").arg(&self.mnt));
        assert!(
            out.success(),
            "umount -l {} failed: {out}",
            self.mnt.display()
        );
        assert!(
            wait_for_image_lock(&self.image, UNMOUNT_TIMEOUT),
            "{} is still locked after killing logfs-fuse",
            self.image.display()
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        let mut done = false;
        for _ in 0..20 {
            if !is_mounted(&self.mnt) {
                done = true;
                break;
            }
            if Command::new("umount")
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !done {
            eprintln!("{} is busy; unmounting lazily", self.mnt.display());
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        if !wait_for_image_lock(&self.image, UNMOUNT_TIMEOUT) {
            eprintln!(
                "logfs-fuse still holds {} {UNMOUNT_TIMEOUT:?} after umount",
                self.image.display()
            );
        }
    }
}

/// Whether process `pid` holds `/dev/fuse` open: a serving daemon does, its auto_unmount
/// watcher (another logfs-fuse process naming the same image) does not.
pub fn holds_dev_fuse(pid: i32) -> bool {
    fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|d| {
        d.flatten()
            .any(|e| fs::read_link(e.path()).is_ok_and(|t| t == Path::new("/dev/fuse")))
    })
}

/// The logfs-fuse daemons (any build: the executable's name is `logfs-fuse`) whose command line
/// names one of `names` and that hold `/dev/fuse`, with their executables, found through /proc.
pub fn fuse_daemons(names: &[PathBuf]) -> Vec<(i32, PathBuf)> {
    let mut found = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(exe) = fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        if exe.file_name().and_then(|n| n.to_str()) != Some("logfs-fuse") {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline
            .split(|&b| b == 0)
            .any(|arg| names.iter().any(|n| arg == n.as_os_str().as_bytes()))
            && holds_dev_fuse(pid)
        {
            found.push((pid, exe));
        }
    }
    found
}

/// The pid of the logfs-fuse daemon (this workspace's build) serving `image`.
pub fn daemon_pid(image: &Path) -> Option<i32> {
    let exe = fs::canonicalize(fuse_bin()).ok()?;
    let names = [image.to_path_buf(), fs::canonicalize(image).ok()?];
    fuse_daemons(&names)
        .into_iter()
        .find(|(_, e)| *e == exe)
        .map(|(pid, _)| pid)
}

/// Fails a test whose file-system calls hang instead of letting it hang: after `limit` it kills
/// the logfs-fuse daemon (so blocked calls return ENOTCONN) and the drop panics.
pub struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    fired: std::sync::Arc<std::sync::atomic::AtomicBool>,
    what: String,
    limit: Duration,
}

impl Watchdog {
    pub fn new(what: &str, mount: &Mount, limit: Duration) -> Watchdog {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        let done = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let pid = daemon_pid(mount.image());
        let (d, f, name) = (done.clone(), fired.clone(), what.to_string());
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < limit {
                if d.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            f.store(true, Ordering::SeqCst);
            eprintln!(
                "WATCHDOG: {name} is still running after {limit:?}; killing logfs-fuse ({pid:?})"
            );
            if let Some(pid) = pid {
                // SAFETY: kill(2) of the daemon this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        Watchdog {
            done,
            fired,
            what: what.into(),
            limit,
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if self.fired.load(Ordering::SeqCst) && !std::thread::panicking() {
            panic!("{} hung: not done after {:?}", self.what, self.limit);
        }
    }
}

/// Run `logfs-fuse [-o OPTS] IMAGE MNT` (which daemonizes after mounting).
pub fn mount_command(image: &Path, mnt: &Path, options: &[&str]) -> Captured {
    let mut cmd = Command::new(fuse_bin());
    if !options.is_empty() {
        cmd.arg("-o").arg(options.join(","));
    }
    run_timeout(cmd.arg(image).arg(mnt), Duration::from_secs(60))
}

// ---------------------------------------------------------------------------------------------
// File-system calls

/// The errno of a failed call, or `None` if it succeeded.
pub fn errno<T>(r: io::Result<T>) -> Option<i32> {
    r.err().map(|e| e.raw_os_error().unwrap_or(-1))
}

/// The errno name for messages.
pub fn errno_name(e: i32) -> String {
    format!("{} ({e})", io::Error::from_raw_os_error(e))
}

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `statvfs(2)`.
pub fn statvfs(p: &Path) -> io::Result<libc::statvfs> {
    let c = cstr(p);
    // SAFETY: statvfs is plain data; the kernel fills it in.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and out pointer.
    cvt(unsafe { libc::statvfs(c.as_ptr(), &mut s) })?;
    Ok(s)
}

/// Free bytes (for unprivileged users) on the file system holding `p`.
pub fn free_bytes(p: &Path) -> u64 {
    let s = statvfs(p).unwrap();
    s.f_bavail * s.f_frsize
}

/// `syncfs(2)` on the file system holding `p`.
pub fn syncfs(p: &Path) {
    let f = File::open(p).unwrap();
    // SAFETY: syncfs on an open descriptor.
    cvt(unsafe { libc::syncfs(f.as_raw_fd()) }).unwrap();
}

pub const RENAME_NOREPLACE: libc::c_uint = 1;
pub const RENAME_EXCHANGE: libc::c_uint = 2;

/// `renameat2(2)` through the raw system call.
pub fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (f, t) = (cstr(from), cstr(to));
    // SAFETY: valid NUL-terminated paths; AT_FDCWD resolves them like rename(2).
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `utimensat(2)` (following symlinks unless `nofollow`).
pub fn utimensat(p: &Path, atime: (i64, i64), mtime: (i64, i64), nofollow: bool) -> io::Result<()> {
    let c = cstr(p);
    let times = [
        libc::timespec {
            tv_sec: atime.0,
            tv_nsec: atime.1,
        },
        libc::timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        },
    ];
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: a valid path and two timespecs.
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), flags) }).map(drop)
}

pub fn chown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(p, Some(uid), Some(gid))
}

pub fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
}

pub fn chmod(p: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
}

/// `mknod(2)`.
pub fn mknod(p: &Path, mode: u32, dev: u64) -> io::Result<()> {
    let c = cstr(p);
    // SAFETY: a valid path.
    cvt(unsafe { libc::mknod(c.as_ptr(), mode, dev) }).map(drop)
}

/// `fallocate(2)`.
pub fn fallocate(f: &File, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate on an open descriptor.
    cvt(unsafe { libc::fallocate(f.as_raw_fd(), mode, offset as i64, len as i64) }).map(drop)
}

pub fn setxattr(p: &Path, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
    let (c, n) = (cstr(p), CString::new(name).unwrap());
    // SAFETY: valid strings and a value buffer of the given length.
    cvt(unsafe {
        libc::setxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
    .map(drop)
}

pub fn getxattr(p: &Path, name: &str) -> io::Result<Vec<u8>> {
    let (c, n) = (cstr(p), CString::new(name).unwrap());
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid strings and a buffer of the given length.
    let len = unsafe { libc::getxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

/// The names `listxattr(2)` returns, sorted.
pub fn listxattr(p: &Path) -> io::Result<Vec<String>> {
    let c = cstr(p);
    let mut buf = vec![0u8; 65536];
    // SAFETY: a valid path and a buffer of the given length.
    let len = unsafe { libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut names: Vec<String> = buf[..len as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    names.sort();
    Ok(names)
}

pub fn removexattr(p: &Path, name: &str) -> io::Result<()> {
    let (c, n) = (cstr(p), CString::new(name).unwrap());
    // SAFETY: valid strings.
    cvt(unsafe { libc::removexattr(c.as_ptr(), n.as_ptr()) }).map(drop)
}

/// Read the whole of `f` from `offset` into a buffer of `len` bytes with `pread`.
pub fn read_at(f: &File, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = f.read_at(&mut buf[done..], offset + done as u64).unwrap();
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    buf
}

// ---------------------------------------------------------------------------------------------
// Data

/// A fast deterministic pseudo-random byte stream (xorshift64*), seekable by 8-byte word:
/// the same seed and offset always give the same bytes, so contents can be verified without
/// keeping a copy.
#[derive(Clone, Copy)]
pub struct Gen {
    seed: u64,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            seed: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03,
        }
    }

    /// The word at word index `i`; a stateless hash so any offset can be generated directly.
    #[inline]
    fn word(&self, i: u64) -> u64 {
        // splitmix64 of (seed + i).
        let mut z = self
            .seed
            .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fill `buf` with the stream's bytes at `offset` (a multiple of 8).
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        assert_eq!(offset % 8, 0, "Gen offsets are multiples of 8");
        let first = offset / 8;
        let k = (buf.len() / 8) as u64;
        let mut chunks = buf.chunks_exact_mut(8);
        for (k, chunk) in (&mut chunks).enumerate() {
            chunk.copy_from_slice(&self.word(first + k as u64).to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let w = self.word(first + k).to_le_bytes();
            let n = rest.len();
            rest.copy_from_slice(&w[..n]);
        }
    }

    pub fn bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(offset, &mut v);
        v
    }
}

/// Write `size` bytes of `data`'s stream to `path` (created or truncated) in 1 MiB writes and
/// fsync it.
pub fn write_gen_file(path: &Path, data: Gen, size: u64) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    let mut buf = vec![0u8; MIB as usize];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(MIB) as usize;
        data.fill(off, &mut buf[..n]);
        f.write_all(&buf[..n])?;
        off += n as u64;
    }
    f.sync_all()
}

/// Check that `path` holds exactly `size` bytes of `data`'s stream; panics naming the first
/// differing offset.
pub fn verify_gen_file(path: &Path, data: Gen, size: u64) {
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let len = f.metadata().unwrap().len();
    assert_eq!(len, size, "{}: size", path.display());
    let mut want = vec![0u8; MIB as usize];
    let mut got = vec![0u8; MIB as usize];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(MIB) as usize;
        data.fill(off, &mut want[..n]);
        f.read_exact(&mut got[..n])
            .unwrap_or_else(|e| panic!("read {} at {off}: {e}", path.display()));
        if want[..n] != got[..n] {
            let i = want[..n]
                .iter()
                .zip(&got[..n])
                .position(|(a, b)| a != b)
                .unwrap();
            panic!(
                "{}: contents differ at byte {} (want {:#04x}, got {:#04x})",
                path.display(),
                off + i as u64,
                want[i],
                got[i]
            );
        }
        off += n as u64;
    }
    let mut extra = [0u8; 1];
    assert_eq!(
        f.read(&mut extra).unwrap(),
        0,
        "{}: data past EOF",
        path.display()
    );
}

/// Whether two files have the same contents (compared in 1 MiB pieces).
pub fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let mut ba = vec![0u8; MIB as usize];
    let mut bb = vec![0u8; MIB as usize];
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// Trees

/// Compare the tree at `dst` with the tree at `src` as `cp -a` copies it: the same names,
/// file types, permission bits, owners, sizes, modification times (to the nanosecond), file
/// contents and symlink targets, and hard links kept together. Returns the number of entries
/// compared (directories included, the roots excluded), or every difference found.
pub fn compare_trees(src: &Path, dst: &Path) -> Result<usize, Vec<String>> {
    let mut diffs = Vec::new();
    let mut count = 0;
    // Inode in src -> inode in dst, to check hard links map consistently.
    let mut links = std::collections::HashMap::new();
    compare_dir(src, dst, &mut count, &mut diffs, &mut links);
    if diffs.is_empty() {
        Ok(count)
    } else {
        Err(diffs)
    }
}

fn names(dir: &Path) -> io::Result<BTreeSet<std::ffi::OsString>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

fn compare_dir(
    src: &Path,
    dst: &Path,
    count: &mut usize,
    diffs: &mut Vec<String>,
    links: &mut std::collections::HashMap<(u64, u64), u64>,
) {
    let (sn, dn) = match (names(src), names(dst)) {
        (Ok(s), Ok(d)) => (s, d),
        (s, d) => {
            diffs.push(format!(
                "{}: cannot list: {:?} / {:?}",
                dst.display(),
                s.err(),
                d.err()
            ));
            return;
        }
    };
    for missing in sn.difference(&dn) {
        diffs.push(format!("{}: missing", dst.join(missing).display()));
    }
    for extra in dn.difference(&sn) {
        diffs.push(format!("{}: not in the source", dst.join(extra).display()));
    }
    for name in sn.intersection(&dn) {
        *count += 1;
        let (s, d) = (src.join(name), dst.join(name));
        let (sm, dm) = match (fs::symlink_metadata(&s), fs::symlink_metadata(&d)) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                diffs.push(format!(
                    "{}: lstat: {:?} / {:?}",
                    d.display(),
                    a.err(),
                    b.err()
                ));
                continue;
            }
        };
        let what = d.display();
        if sm.mode() != dm.mode() {
            diffs.push(format!("{what}: mode {:o} != {:o}", dm.mode(), sm.mode()));
            continue;
        }
        if (sm.uid(), sm.gid()) != (dm.uid(), dm.gid()) {
            diffs.push(format!(
                "{what}: owner {}:{} != {}:{}",
                dm.uid(),
                dm.gid(),
                sm.uid(),
                sm.gid()
            ));
        }
        if (sm.mtime(), sm.mtime_nsec()) != (dm.mtime(), dm.mtime_nsec()) {
            diffs.push(format!(
                "{what}: mtime {}.{:09} != {}.{:09}",
                dm.mtime(),
                dm.mtime_nsec(),
                sm.mtime(),
                sm.mtime_nsec()
            ));
        }
        let ft = sm.file_type();
        if !ft.is_dir() && sm.len() != dm.len() {
            diffs.push(format!("{what}: size {} != {}", dm.len(), sm.len()));
            continue;
        }
        if ft.is_dir() {
            compare_dir(&s, &d, count, diffs, links);
        } else if ft.is_symlink() {
            match (fs::read_link(&s), fs::read_link(&d)) {
                (Ok(a), Ok(b)) if a == b => {}
                (a, b) => diffs.push(format!("{what}: symlink target {b:?} != {a:?}")),
            }
        } else if ft.is_file() {
            if sm.nlink() > 1 {
                let key = (sm.dev(), sm.ino());
                match links.get(&key) {
                    Some(&ino) if ino != dm.ino() => {
                        diffs.push(format!("{what}: hard link to another inode"));
                    }
                    Some(_) => continue,
                    None => {
                        links.insert(key, dm.ino());
                    }
                }
            }
            match same_contents(&s, &d) {
                Ok(true) => {}
                Ok(false) => diffs.push(format!("{what}: contents differ")),
                Err(e) => diffs.push(format!("{what}: read: {e}")),
            }
        } else if sm.rdev() != dm.rdev() {
            diffs.push(format!("{what}: rdev {:x} != {:x}", dm.rdev(), sm.rdev()));
        }
    }
}

/// Count the entries below `dir` (not following symlinks), excluding `dir` itself.
pub fn count_entries(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            n += 1;
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                n += count_entries(&e.path());
            }
        }
    }
    n
}

/// Panic with every difference if the trees differ; return the number of entries compared.
pub fn assert_same_tree(src: &Path, dst: &Path) -> usize {
    match compare_trees(src, dst) {
        Ok(n) => n,
        Err(diffs) => {
            let shown: Vec<&String> = diffs.iter().take(40).collect();
            panic!(
                "{} differs from {} in {} ways, first:\n{}",
                dst.display(),
                src.display(),
                diffs.len(),
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// Print a test's phase timings to stderr (shown with `--nocapture`) and stdout.
pub struct Timer {
    name: String,
    start: Instant,
    last: Instant,
}

impl Timer {
    pub fn new(name: &str) -> Timer {
        let now = Instant::now();
        Timer {
            name: name.into(),
            start: now,
            last: now,
        }
    }

    /// Note the end of a phase.
    pub fn lap(&mut self, phase: &str) {
        let now = Instant::now();
        eprintln!(
            "[{}] {phase}: {:.2?} (total {:.2?})",
            self.name,
            now - self.last,
            now - self.start
        );
        self.last = now;
    }

    pub fn total(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Write all of `data` to a new file at `path`.
pub fn write_file(path: &Path, data: &[u8]) {
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Flush a file's data (`fsync`).
pub fn fsync_path(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

/// Write `data` at `offset` of an open file, all of it.
pub fn pwrite_all(f: &File, data: &[u8], offset: u64) {
    f.write_all_at(data, offset).unwrap();
}
