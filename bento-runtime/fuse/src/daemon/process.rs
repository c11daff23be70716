//! Process plumbing of a FUSE daemon: the image lock, daemonizing with a report to the waiting
//! parent, exit signals, and the `auto_unmount` watcher.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::mount::{MntFlags, umount2};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::ForkResult;

use crate::{Unmounted, Unmounter};

pub(crate) fn failure() -> ExitCode {
    ExitCode::from(1)
}

/// `Display` of an OS error without Rust's " (os error N)" suffix.
pub fn os_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The canonical path of a mount point, which must be a directory.
pub fn canonical_mountpoint(mountpoint: &Path) -> Result<PathBuf, String> {
    match mountpoint.canonicalize() {
        Ok(p) if p.is_dir() => Ok(p),
        Ok(p) => Err(format!("mount point {}: not a directory", p.display())),
        Err(e) => Err(format!(
            "mount point {}: {}",
            mountpoint.display(),
            os_error(&e)
        )),
    }
}

/// Take the image's exclusive lock, or say who has it (`name`: the program holding such locks).
pub(crate) fn lock_image(image: &Path, name: &str) -> Result<File, String> {
    // std opens with O_CLOEXEC. Read-only: the lock is all this descriptor is for.
    let file = File::open(image).map_err(|e| format!("{}: {}", image.display(), os_error(&e)))?;
    // Not nix's `Flock`: it unlocks on drop, and the lock must outlive this process when a
    // takeover hands the descriptor on.
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            format!(
                "{} is in use by another {name} (or a tool holding its lock)",
                image.display()
            )
        } else {
            format!("cannot lock {}: {}", image.display(), os_error(&e))
        });
    }
    Ok(file)
}

/// Whether this process has a single thread, which `fork` needs to be safe.
fn single_threaded() -> bool {
    fs::read_dir("/proc/self/task")
        .map(|d| d.count() == 1)
        .unwrap_or(true)
}

fn pipe() -> io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((File::from(r), File::from(w)))
}

/// Fork, in a process that must still be single-threaded.
fn fork() -> io::Result<ForkResult> {
    if !single_threaded() {
        return Err(io::Error::other("threads exist before fork"));
    }
    // SAFETY: the process is single-threaded (checked above), so the child may go on running
    // arbitrary code: no lock can be held by a thread that does not exist in the child.
    Ok(unsafe { nix::unistd::fork() }?)
}

/// Fork; the child mounts and serves (`serve`), the parent waits for its report and exits.
pub(crate) fn daemonize(name: &'static str, serve: impl FnOnce(Report) -> ExitCode) -> ExitCode {
    if !single_threaded() {
        eprintln!("{name}: internal error: threads exist before fork");
        return failure();
    }
    let (mut from_child, to_parent) = match pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{name}: pipe: {}", os_error(&e));
            return failure();
        }
    };
    let child = match fork() {
        Ok(ForkResult::Parent { child }) => child,
        Ok(ForkResult::Child) => {
            drop(from_child);
            // Fails only for a process-group leader, which a freshly forked child is not.
            let _ = nix::unistd::setsid();
            let _ = std::env::set_current_dir("/");
            let code = serve(Report::Daemon(to_parent));
            std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("{name}: fork: {}", os_error(&e));
            return failure();
        }
    };
    drop(to_parent);
    let mut report = Vec::new();
    let _ = from_child.read_to_end(&mut report);
    match report.split_first() {
        Some((b'+', _)) => ExitCode::SUCCESS,
        Some((_, msg)) => {
            eprintln!("{name}: {}", String::from_utf8_lossy(msg));
            failure()
        }
        None => {
            let how = match waitpid(child, None) {
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    format!("was killed by signal {}", sig as i32)
                }
                Ok(WaitStatus::Exited(_, status)) => format!("exited with status {status}"),
                Ok(other) => format!("ended ({other:?})"),
                Err(e) => format!("could not be waited for ({e})"),
            };
            eprintln!("{name}: the mount daemon {how} before mounting");
            failure()
        }
    }
}

/// How the serving process tells the outcome of mounting.
pub(crate) enum Report {
    /// In the foreground: messages go to standard error, prefixed with the program's name.
    Foreground { name: &'static str },
    /// The pipe to the waiting parent: "+" for mounted, "-" and a message for a failure.
    Daemon(File),
}

impl Report {
    pub(crate) fn foreground(name: &'static str) -> Report {
        Report::Foreground { name }
    }

    pub(crate) fn failed(self, msg: String) -> ExitCode {
        match self {
            Report::Foreground { name } => eprintln!("{name}: {msg}"),
            Report::Daemon(mut pipe) => {
                let _ = pipe.write_all(format!("-{msg}").as_bytes());
            }
        }
        failure()
    }

    pub(crate) fn mounted(self) {
        if let Report::Daemon(mut pipe) = self {
            let _ = pipe.write_all(b"+");
            drop(pipe);
            detach_stdio();
        }
    }

    pub(crate) fn is_foreground(&self) -> bool {
        matches!(self, Report::Foreground { .. })
    }

    pub(crate) fn fd(&self) -> Option<RawFd> {
        match self {
            Report::Foreground { .. } => None,
            Report::Daemon(pipe) => Some(pipe.as_raw_fd()),
        }
    }
}

fn detach_stdio() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// The signals that unmount: SIGINT, SIGTERM, SIGHUP.
#[derive(Clone, Copy)]
pub(crate) struct ExitSignals(SigSet);

impl ExitSignals {
    /// Block them in this thread, which must be the only one yet: every thread created later
    /// (the FUSE workers, the file system's) inherits the mask, and only the signal thread of
    /// [`ExitSignals::handle`] takes them.
    pub(crate) fn block() -> ExitSignals {
        let mut set = SigSet::empty();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(sig);
        }
        let _ = set.thread_block();
        ExitSignals(set)
    }

    /// Wait for an exit signal in a thread of its own and unmount.
    pub(crate) fn handle(self, name: &'static str, mut unmounter: Unmounter) {
        let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
            loop {
                let Ok(sig) = self.0.wait() else {
                    continue;
                };
                let sig = match sig {
                    Signal::SIGINT => "SIGINT",
                    Signal::SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                bento_api::info!("{name}: {sig}: unmounting");
                match unmounter.unmount() {
                    Ok(Unmounted::Done) => {}
                    Ok(Unmounted::Detached) => bento_api::warn!(
                        "{name}: the mount point is busy; detached it, serving open files until they are closed"
                    ),
                    Err(e) => bento_api::error!("{name}: unmount failed: {e}"),
                }
            }
        });
        if let Err(e) = spawned {
            bento_api::error!("{name}: no signal thread ({e}); unmount with umount");
        }
    }
}

/// Close every descriptor but the standard ones that this process inherited: a descriptor of a
/// file inside the mount (a shell's, say) kept by the daemon would keep the mount busy, and
/// deadlock the daemon's own exit (closing it sends a request only the daemon could answer).
/// Call it first thing in `main`, when nothing in the process owns a descriptor above 2 (the
/// directory listing's own is closed already, which makes that close fail harmlessly).
pub fn close_inherited_fds() {
    let fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

/// `auto_unmount` without fusermount: a watcher process that lazily unmounts the mount point
/// when this process goes away, if the mount there is still ours (same device number).
pub(crate) struct AutoUnmount {
    pub(crate) pipe: File,
}

impl AutoUnmount {
    pub(crate) fn start(mountpoint: &Path, close_in_child: &[RawFd]) -> io::Result<AutoUnmount> {
        let (from_daemon, to_watcher) = pipe()?;
        match fork()? {
            ForkResult::Parent { .. } => Ok(AutoUnmount { pipe: to_watcher }),
            ForkResult::Child => {
                drop(to_watcher);
                // The child's copies of descriptors it must not hold (the image lock, the
                // report pipe); nothing in the child uses them afterwards.
                for &fd in close_in_child {
                    let _ = nix::unistd::close(fd);
                }
                // Let go of the caller's terminal or pipes too: whoever waits for their end (a
                // shell's `$(...)`, a test harness) must not wait for the watcher.
                detach_stdio();
                let _ = std::env::set_current_dir("/");
                Self::watch(from_daemon, mountpoint);
                // SAFETY: _exit ends the watcher without running the parent's exit handlers.
                unsafe { libc::_exit(0) }
            }
        }
    }

    /// Tell the watcher which mount is ours.
    pub(crate) fn arm(&self, mountpoint: &Path) {
        if let Some(dev) = mount_device(mountpoint) {
            let _ = (&self.pipe).write_all(format!("{dev}\n").as_bytes());
        }
    }

    fn watch(mut from_daemon: File, mountpoint: &Path) {
        let mut armed = Vec::new();
        // Returns at end of file: when the daemon has exited, however it exited.
        let _ = from_daemon.read_to_end(&mut armed);
        let armed = String::from_utf8_lossy(&armed);
        let Some(dev) = armed.lines().next().filter(|d| !d.is_empty()) else {
            return;
        };
        if mount_device(mountpoint).as_deref() == Some(dev) {
            let _ = umount2(mountpoint, MntFlags::MNT_DETACH);
        }
    }
}

/// The device number ("major:minor") of the topmost mount on `mountpoint`, from mountinfo, so
/// without touching the mounted file system.
pub fn mount_device(mountpoint: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = mountpoint.as_os_str().as_bytes();
    info.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields.len() > 4 && unescape(fields[4]) == want).then(|| fields[2].to_string())
        })
        .next_back()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/mnt/a\040b\134c"), b"/mnt/a b\\c");
        assert_eq!(unescape(r"/x\04"), b"/x\\04");
    }
}
