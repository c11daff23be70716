//! `logfs-fuse`: mount a logfs image or block device in userspace over FUSE.
//!
//! The binary is generic over the file-system type ([`run`]); `-o fs=NAME` picks one of the
//! types it was built with, logfs by default. It takes an exclusive `flock(2)` on the image for
//! its whole life (see `--help`), daemonizes unless `-f`, and unmounts cleanly on SIGTERM,
//! SIGINT and SIGHUP.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bento_api::fs::{Mount, MountOptions};
use bento_api::ks::log::{Level, set_max_level};
use bento_api::upgrade::{OPTIONAL, Put, Reader, Writer};
use bento_fuse::memfs::MemFs;
use bento_fuse::{
    FuseOptions, FuseSession, MountOption, SessionACL, Takeover, TakeoverOffer, TestFault,
    Unmounted, Unmounter, bind_control_socket,
};
use bento_user::FileDevice;
use clap::{ArgAction, Parser};

/// The file system mounted unless `-o fs=NAME` says otherwise.
type DefaultFs = logfs::LogFs<FileDevice>;

const AFTER_HELP: &str = "\
Mount options (-o, comma-separated, may be repeated):
  ro | rw             read-only or read-write (default rw)
  allow_other         let every user use the mount (permission bits are still checked)
  allow_root          let root use the mount as well as the mounting user
  auto_unmount        unmount automatically if logfs-fuse dies
  fsname=NAME         the source shown in /proc/mounts (default: the image path)
  threads=N           worker threads (default: the number of CPUs, at least 2)
  debug               log every request to standard error (implies -f)
  fs=NAME             the file-system type: logfs (default), or memfs (in memory, for testing)
  notakeover          do not offer the mount for --takeover (no control socket)
  dev nodev suid nosuid exec noexec atime noatime sync async dirsync
                      the usual mount flags (default nodev,nosuid)
  anything else       passed to the file system

Without -f, logfs-fuse returns once the file system is mounted (exit status 0) or has failed
to mount (1; the reason is printed), and keeps serving in the background.

Unmount with `umount MOUNTPOINT`, or send logfs-fuse SIGTERM (or SIGINT/SIGHUP). umount
returns as soon as the kernel has let go of the mount, BEFORE logfs-fuse has written its final
checkpoint. logfs-fuse holds an exclusive flock(2) on IMAGE|DEVICE for as long as it runs, so
wait for that lock before copying, checking or mounting the image again:

    umount /mnt && flock IMAGE true

The same lock makes a second logfs-fuse on the same image fail at once.

Live upgrade: `logfs-fuse --takeover MOUNTPOINT` starts this binary (a newer or older
logfs-fuse) in place of the daemon serving MOUNTPOINT, without unmounting and without a failed
call. The running daemon stops reading requests (they wait in the kernel), finishes those it
has, commits a checkpoint and hands the /dev/fuse connection, the image lock and its state to
the new one over its control socket (/run/logfs-fuse/MAJOR:MINOR.sock, the mount's device
number; $LOGFS_FUSE_RUN_DIR overrides the directory), then exits. Image, options and open files
carry over. If the new binary refuses the state (another file system, an unknown required
field, damage), it exits with status 1 saying why, and the old daemon keeps serving. Only root
or the daemon's own user may take a mount over.
Exit status: 0 on success (with -f: after a clean unmount), 1 on errors, 2 on bad usage.";

/// Mount a logfs image or block device over FUSE.
#[derive(Parser, Debug)]
#[command(
    name = "logfs-fuse",
    version = logfs::fs::VERSION,
    about,
    after_help = AFTER_HELP,
    override_usage = "logfs-fuse [-f] [-d] [-o OPTIONS] IMAGE|DEVICE MOUNTPOINT\n       \
                      logfs-fuse [-f] [-d] --takeover MOUNTPOINT"
)]
struct Args {
    /// Stay in the foreground and exit when the file system is unmounted
    #[arg(short = 'f', long = "foreground")]
    foreground: bool,

    /// Log every request to standard error (implies -f)
    #[arg(short = 'd', long = "debug")]
    debug: bool,

    /// Mount options (see below)
    #[arg(short = 'o', value_name = "OPTIONS", action = ArgAction::Append)]
    options: Vec<String>,

    /// Take over the running logfs-fuse daemon's mount on MOUNTPOINT (live upgrade, see below)
    #[arg(
        long = "takeover",
        value_name = "MOUNTPOINT",
        conflicts_with_all = ["options", "image", "mountpoint"]
    )]
    takeover: Option<PathBuf>,

    /// The image file or block device holding the file system
    #[arg(value_name = "IMAGE|DEVICE", required_unless_present = "takeover")]
    image: Option<PathBuf>,

    /// The directory to mount it on
    #[arg(value_name = "MOUNTPOINT", required_unless_present = "takeover")]
    mountpoint: Option<PathBuf>,
}

impl Args {
    fn options(&self) -> impl Iterator<Item = &str> {
        self.options
            .iter()
            .flat_map(|o| o.split(','))
            .map(str::trim)
            .filter(|o| !o.is_empty())
    }
}

/// What the command line asks for.
struct Settings {
    fuse: FuseOptions,
    mount: MountOptions,
    foreground: bool,
    debug: bool,
    auto_unmount: bool,
    /// Offer the mount for `--takeover` (`-o notakeover` turns it off).
    takeover: bool,
}

fn parse_settings(args: &Args) -> Result<Settings, String> {
    let mut fuse = FuseOptions::default();
    let mut mount = MountOptions::default();
    let mut fs_options = Vec::new();
    let (mut debug, mut auto_unmount, mut takeover) = (args.debug, false, true);
    let (mut allow_other, mut allow_root) = (false, false);
    for option in args.options() {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        let flag = match key {
            "dev" => Some(MountOption::Dev),
            "nodev" => Some(MountOption::NoDev),
            "suid" => Some(MountOption::Suid),
            "nosuid" => Some(MountOption::NoSuid),
            "exec" => Some(MountOption::Exec),
            "noexec" => Some(MountOption::NoExec),
            "atime" => Some(MountOption::Atime),
            "noatime" => Some(MountOption::NoAtime),
            "sync" => Some(MountOption::Sync),
            "async" => Some(MountOption::Async),
            "dirsync" => Some(MountOption::DirSync),
            _ => None,
        };
        if let Some(flag) = flag.filter(|_| value.is_none()) {
            fuse.mount_options.retain(|o| !conflicts(o, &flag));
            fuse.mount_options.push(flag);
            continue;
        }
        match (key, value) {
            ("ro", None) => mount.read_only = true,
            ("rw", None) => mount.read_only = false,
            ("allow_other", None) => allow_other = true,
            ("allow_root", None) => allow_root = true,
            ("auto_unmount", None) => auto_unmount = true,
            ("notakeover", None) => takeover = false,
            ("debug", None) => debug = true,
            ("fsname", Some(name)) if !name.is_empty() => fuse.fsname = Some(name.to_string()),
            ("threads", Some(n)) => match n.parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => fuse.threads = n,
                _ => {
                    return Err(format!(
                        "threads={n}: expected a number of threads from 1 to 1024"
                    ));
                }
            },
            // Chosen in main; always on; fstab-only words that mount(8) may pass on.
            ("fs", Some(_)) | ("default_permissions", None) => {}
            (
                "defaults" | "auto" | "noauto" | "nofail" | "_netdev" | "user" | "users" | "nouser",
                None,
            ) => {}
            _ if key.starts_with("x-") => {}
            (
                "ro"
                | "rw"
                | "allow_other"
                | "allow_root"
                | "auto_unmount"
                | "notakeover"
                | "debug"
                | "default_permissions",
                Some(_),
            )
            | ("fsname" | "threads" | "fs", _) => return Err(format!("bad option {option:?}")),
            _ => fs_options.push(option),
        }
    }
    fuse.read_only = mount.read_only;
    fuse.acl = if allow_other {
        SessionACL::All
    } else if allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    mount.fs_options = fs_options.join(",");
    fuse.takeover = takeover;
    Ok(Settings {
        fuse,
        mount,
        foreground: args.foreground || debug,
        debug,
        auto_unmount,
        takeover,
    })
}

fn conflicts(a: &MountOption, b: &MountOption) -> bool {
    use MountOption::*;
    let pair = |x: &MountOption| match x {
        Dev | NoDev => 0,
        Suid | NoSuid => 1,
        Exec | NoExec => 2,
        Atime | NoAtime => 3,
        Sync | Async => 4,
        DirSync => 5,
        _ => 6,
    };
    pair(a) == pair(b) && pair(a) != 6
}

/// The value of the last `fs=` option.
fn fs_name(args: &Args) -> Option<&str> {
    args.options().filter_map(|o| o.strip_prefix("fs=")).last()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(mountpoint) = &args.takeover {
        return takeover(&args, mountpoint);
    }
    match fs_name(&args) {
        None => run::<DefaultFs>(&args),
        Some(name) if name == <DefaultFs as Mount<FileDevice>>::NAME => run::<DefaultFs>(&args),
        Some(name) if name == <MemFs as Mount<FileDevice>>::NAME => run::<MemFs>(&args),
        Some(name) => {
            eprintln!("logfs-fuse: unknown file-system type {name:?} (known: logfs, memfs)");
            ExitCode::from(2)
        }
    }
}

fn failure() -> ExitCode {
    ExitCode::from(1)
}

/// Mount `args.image` as an `F` on `args.mountpoint` and serve it.
fn run<F: Mount<FileDevice> + 'static>(args: &Args) -> ExitCode {
    let settings = match parse_settings(args) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("logfs-fuse: {msg}");
            return ExitCode::from(2);
        }
    };
    if settings.debug {
        set_max_level(Level::Debug);
    }
    bento_fuse::log_to_stderr(settings.debug);

    let (Some(image), Some(mountpoint)) = (&args.image, &args.mountpoint) else {
        eprintln!("logfs-fuse: an image and a mount point are needed");
        return ExitCode::from(2);
    };
    let image = match image.canonicalize() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("logfs-fuse: {}: {}", image.display(), os_error(&e));
            return failure();
        }
    };
    let mountpoint = match canonical_mountpoint(mountpoint) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("logfs-fuse: {msg}");
            return failure();
        }
    };
    let lock = match lock_image(&image) {
        Ok(lock) => lock,
        Err(msg) => {
            eprintln!("logfs-fuse: {msg}");
            return failure();
        }
    };
    let mut settings = settings;
    if settings.fuse.fsname.is_none() {
        settings.fuse.fsname = Some(image.to_string_lossy().into_owned());
    }
    settings.fuse.subtype = Some(F::NAME.to_string());
    let job = Job {
        image,
        mountpoint,
        settings,
        lock,
    };

    if job.settings.foreground {
        return serve::<F>(&job, Report::Foreground);
    }
    daemonize(|report| serve::<F>(&job, report))
}

fn canonical_mountpoint(mountpoint: &Path) -> Result<PathBuf, String> {
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

/// Everything the serving process needs.
struct Job {
    image: PathBuf,
    mountpoint: PathBuf,
    settings: Settings,
    /// The open image carrying our exclusive flock; held until the process exits.
    lock: File,
}

/// `Display` of an OS error without Rust's " (os error N)" suffix.
fn os_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Take the image's exclusive lock, or say who has it.
fn lock_image(image: &Path) -> Result<File, String> {
    // std opens with O_CLOEXEC. Read-only: the lock is all this descriptor is for.
    let file = File::open(image).map_err(|e| format!("{}: {}", image.display(), os_error(&e)))?;
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            format!(
                "{} is in use by another logfs-fuse (or a tool holding its lock)",
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
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array, which has room for them.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe {
        (
            File::from(OwnedFd::from_raw_fd(fds[0])),
            File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    })
}

/// Fork; the child mounts and serves (`serve`), the parent waits for its report and exits.
fn daemonize(serve: impl FnOnce(Report) -> ExitCode) -> ExitCode {
    if !single_threaded() {
        eprintln!("logfs-fuse: internal error: threads exist before fork");
        return failure();
    }
    let (mut from_child, to_parent) = match pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("logfs-fuse: pipe: {}", os_error(&e));
            return failure();
        }
    };
    // SAFETY: the process is single-threaded (checked above), so the child may go on running
    // arbitrary code: no lock can be held by a thread that does not exist in the child.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        eprintln!(
            "logfs-fuse: fork: {}",
            os_error(&io::Error::last_os_error())
        );
        return failure();
    }
    if pid == 0 {
        drop(from_child);
        // SAFETY: setsid takes no arguments; it fails only for a process-group leader, which a
        // freshly forked child is not.
        unsafe { libc::setsid() };
        let _ = std::env::set_current_dir("/");
        let code = serve(Report::Daemon(to_parent));
        std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
    }
    drop(to_parent);
    let mut report = Vec::new();
    let _ = from_child.read_to_end(&mut report);
    match report.split_first() {
        Some((b'+', _)) => ExitCode::SUCCESS,
        Some((_, msg)) => {
            eprintln!("logfs-fuse: {}", String::from_utf8_lossy(msg));
            failure()
        }
        None => {
            let mut status = 0;
            // SAFETY: waits for our own child; status is a valid out pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            let how = if libc::WIFSIGNALED(status) {
                format!("was killed by signal {}", libc::WTERMSIG(status))
            } else {
                format!("exited with status {}", libc::WEXITSTATUS(status))
            };
            eprintln!("logfs-fuse: the mount daemon {how} before mounting");
            failure()
        }
    }
}

/// How the serving process tells the outcome of mounting.
enum Report {
    Foreground,
    /// The pipe to the waiting parent: "+" for mounted, "-" and a message for a failure.
    Daemon(File),
}

impl Report {
    fn failed(self, msg: String) -> ExitCode {
        match self {
            Report::Foreground => eprintln!("logfs-fuse: {msg}"),
            Report::Daemon(mut pipe) => {
                let _ = pipe.write_all(format!("-{msg}").as_bytes());
            }
        }
        failure()
    }

    fn mounted(self) {
        if let Report::Daemon(mut pipe) = self {
            let _ = pipe.write_all(b"+");
            drop(pipe);
            detach_stdio();
        }
    }

    fn fd(&self) -> Option<RawFd> {
        match self {
            Report::Foreground => None,
            Report::Daemon(pipe) => Some(pipe.as_raw_fd()),
        }
    }
}

fn detach_stdio() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors; `null` stays open for the call.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// The signals that unmount.
fn exit_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initializes it before sigaddset uses it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Wait for an exit signal in a thread of its own and unmount; every other thread (the FUSE
/// workers, the file system's) inherits the mask blocking them, set before any exists.
fn handle_signals(mut unmounter: Unmounter, set: libc::sigset_t) {
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
        loop {
            let mut sig = 0;
            // SAFETY: `set` is an initialized signal set and `sig` a valid out pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            let name = match sig {
                libc::SIGINT => "SIGINT",
                libc::SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            bento_api::info!("logfs-fuse: {name}: unmounting");
            match unmounter.unmount() {
                Ok(Unmounted::Done) => {}
                Ok(Unmounted::Detached) => bento_api::warn!(
                    "logfs-fuse: the mount point is busy; detached it, serving open files until they are closed"
                ),
                Err(e) => bento_api::error!("logfs-fuse: unmount failed: {e}"),
            }
        }
    });
    if let Err(e) = spawned {
        bento_api::error!("logfs-fuse: no signal thread ({e}); unmount with umount");
    }
}

/// Mount and serve in this process; returns when the file system is unmounted.
fn serve<F: Mount<FileDevice> + 'static>(job: &Job, report: Report) -> ExitCode {
    let signals = exit_signals();
    // SAFETY: blocks signals for this (so far only) thread; threads created later inherit it.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut()) };

    let watcher = if job.settings.auto_unmount {
        let keep_closed: Vec<RawFd> = [Some(job.lock.as_raw_fd()), report.fd()]
            .into_iter()
            .flatten()
            .collect();
        match AutoUnmount::start(&job.mountpoint, &keep_closed) {
            Ok(w) => Some(w),
            Err(e) => return report.failed(format!("auto_unmount: {}", os_error(&e))),
        }
    } else {
        None
    };

    let image = job.image.display();
    let dev = match FileDevice::open(&job.image, job.settings.mount.read_only) {
        Ok(dev) => dev,
        Err(e) => return report.failed(format!("cannot open {image}: {}", os_error(&e))),
    };
    let fs = match catch_unwind(AssertUnwindSafe(|| F::mount(dev, &job.settings.mount))) {
        Ok(Ok(fs)) => fs,
        Ok(Err(e)) => return report.failed(format!("cannot mount {image} as {}: {e}", F::NAME)),
        Err(_) => return report.failed(format!("cannot mount {image}: {} panicked", F::NAME)),
    };
    let session = match FuseSession::mount(fs, &job.mountpoint, &job.settings.fuse) {
        Ok(s) => s,
        Err(e) => {
            return report.failed(format!(
                "cannot mount on {}: {}",
                job.mountpoint.display(),
                os_error(&e)
            ));
        }
    };
    if let Some(negotiated) = session.negotiated() {
        bento_api::debug!("logfs-fuse: {negotiated:?}");
    }
    if let Some(watcher) = &watcher {
        watcher.arm(&job.mountpoint);
    }
    serve_session(session, job, watcher, None, report, signals)
}

/// Offer takeover (unless `-o notakeover`), handle signals, report success and serve until the
/// mount ends (or a successful takeover ends the process).
fn serve_session<F: Mount<FileDevice> + 'static>(
    mut session: FuseSession<F>,
    job: &Job,
    watcher: Option<AutoUnmount>,
    listener: Option<UnixListener>,
    report: Report,
    signals: libc::sigset_t,
) -> ExitCode {
    let mut control = None;
    if job.settings.takeover {
        match offer_takeover(&mut session, job, watcher.as_ref(), listener) {
            Ok(socket) => control = socket,
            Err(e) => bento_api::warn!(
                "logfs-fuse: {}: cannot offer takeover (live upgrade): {e}",
                job.mountpoint.display()
            ),
        }
    }
    handle_signals(session.unmounter(), signals);
    report.mounted();

    let result = session.run();
    // The mount ended here (a takeover would have ended the process): the socket is ours to
    // remove, unless another mount has bound the same path since.
    if let Some((path, id)) = control
        && socket_id(&path) == Some(id)
    {
        let _ = fs::remove_file(&path);
    }
    // The file system is destroyed; the lock (job.lock) goes when the process exits.
    drop(watcher);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            bento_api::error!("logfs-fuse: {}: {e}", job.mountpoint.display());
            failure()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Live upgrade: --takeover

/// The directory of the control sockets.
fn run_dir() -> PathBuf {
    std::env::var_os("LOGFS_FUSE_RUN_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/run/logfs-fuse"), PathBuf::from)
}

/// The control socket of the mount whose device number is `dev` ("major:minor").
fn control_socket(dev: &str) -> PathBuf {
    run_dir().join(format!("{dev}.sock"))
}

/// A file's identity (device, inode).
fn socket_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Bind the control socket (or take the one handed over) and offer the mount for takeover.
/// Returns the socket's path and identity.
fn offer_takeover<F: Mount<FileDevice> + 'static>(
    session: &mut FuseSession<F>,
    job: &Job,
    watcher: Option<&AutoUnmount>,
    listener: Option<UnixListener>,
) -> io::Result<Option<(PathBuf, (u64, u64))>> {
    let listener = match listener {
        Some(l) => l,
        None => {
            let dev = mount_device(&job.mountpoint)
                .ok_or_else(|| io::Error::other("the mount is not in /proc/self/mountinfo"))?;
            bind_control_socket(&control_socket(&dev))?
        }
    };
    let path = listener
        .local_addr()?
        .as_pathname()
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other("the control socket has no path"))?;
    let mut app_fds = vec![OwnedFd::from(job.lock.try_clone()?)];
    if let Some(w) = watcher {
        app_fds.push(OwnedFd::from(w.pipe.try_clone()?));
    }
    session.offer_takeover(TakeoverOffer {
        listener,
        app_state: AppState::of::<F>(job).encode(),
        app_fds,
    })?;
    Ok(socket_id(&path).map(|id| (path, id)))
}

/// logfs-fuse's part of the handed-over state: which file system on which image, mounted how.
/// Descriptors: the image lock, then the auto_unmount watcher's pipe if `auto_unmount`.
struct AppState {
    fs_name: String,
    fs_version: String,
    image: PathBuf,
    mount: MountOptions,
    auto_unmount: bool,
}

const A_FS: u16 = 1;
const A_IMAGE: u16 = 2;
const A_MOUNT: u16 = 3;
const A_AUTO_UNMOUNT: u16 = 4;
const A_FS_VERSION: u16 = 5 | OPTIONAL;

impl AppState {
    fn of<F: Mount<FileDevice>>(job: &Job) -> AppState {
        AppState {
            fs_name: F::NAME.to_string(),
            fs_version: F::VERSION.to_string(),
            image: job.image.clone(),
            mount: job.settings.mount.clone(),
            auto_unmount: job.settings.auto_unmount,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.field(A_FS, |v| v.extend_from_slice(self.fs_name.as_bytes()));
        w.field(A_IMAGE, |v| {
            v.extend_from_slice(self.image.as_os_str().as_bytes())
        });
        w.field(A_MOUNT, |v| {
            v.put_u8(u8::from(self.mount.read_only));
            v.extend_from_slice(self.mount.fs_options.as_bytes());
        });
        w.field(A_AUTO_UNMOUNT, |v| v.put_u8(u8::from(self.auto_unmount)));
        w.field(A_FS_VERSION, |v| {
            v.extend_from_slice(self.fs_version.as_bytes())
        });
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<AppState, String> {
        let short = |_| "logfs-fuse's state is cut short".to_string();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut fields = Reader::new(bytes);
        let (mut fs_name, mut image, mut mount) = (None, None, None);
        let (mut auto_unmount, mut fs_version) = (false, String::new());
        while let Some((tag, mut v)) = fields.field().map_err(short)? {
            let rest = v.remaining();
            match tag {
                A_FS => fs_name = Some(text(v.take(rest).map_err(short)?)),
                A_IMAGE => {
                    let b = v.take(rest).map_err(short)?;
                    image = Some(PathBuf::from(std::ffi::OsStr::from_bytes(b)));
                }
                A_MOUNT => {
                    let read_only = v.u8().map_err(short)? != 0;
                    let rest = v.remaining();
                    let fs_options = text(v.take(rest).map_err(short)?);
                    mount = Some(MountOptions {
                        read_only,
                        fs_options,
                    });
                }
                A_AUTO_UNMOUNT => auto_unmount = v.u8().map_err(short)? != 0,
                A_FS_VERSION => fs_version = text(v.take(rest).map_err(short)?),
                t if t & OPTIONAL != 0 => {}
                t => {
                    return Err(format!(
                        "logfs-fuse's state carries a field this version does not know (tag {t:#x})"
                    ));
                }
            }
        }
        let missing = |what: &str| format!("logfs-fuse's state has no {what}");
        Ok(AppState {
            fs_name: fs_name.ok_or_else(|| missing("file-system type"))?,
            fs_version,
            image: image.ok_or_else(|| missing("image"))?,
            mount: mount.ok_or_else(|| missing("mount options"))?,
            auto_unmount,
        })
    }
}

/// Close every descriptor but the standard ones that this process inherited: a descriptor of a
/// file inside the mount (a shell's, say) kept by the daemon would keep the mount busy, and
/// deadlock the daemon's own exit (closing it sends a request only the daemon could answer).
fn close_inherited_fds() {
    let fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: at the start of main nothing in this process owns a descriptor above 2 (the
        // directory listing's own is closed already, which makes this close fail harmlessly).
        unsafe { libc::close(fd) };
    }
}

/// `logfs-fuse --takeover MOUNTPOINT`.
fn takeover(args: &Args, mountpoint: &Path) -> ExitCode {
    close_inherited_fds();
    if args.debug {
        set_max_level(Level::Debug);
    }
    bento_fuse::log_to_stderr(args.debug);
    let mountpoint = match canonical_mountpoint(mountpoint) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("logfs-fuse: {msg}");
            return failure();
        }
    };
    let Some(dev) = mount_device(&mountpoint) else {
        eprintln!("logfs-fuse: nothing is mounted on {}", mountpoint.display());
        return failure();
    };
    let socket = control_socket(&dev);
    if !socket.exists() {
        eprintln!(
            "logfs-fuse: no logfs-fuse daemon offers {} for takeover (no control socket {}; \
             mounted with -o notakeover, or not by logfs-fuse?)",
            mountpoint.display(),
            socket.display()
        );
        return failure();
    }
    let fault = match std::env::var("LOGFS_FUSE_TEST_FAULT").as_deref() {
        Ok("unknown-field") => Some(TestFault::UnknownField),
        Ok("corrupt") => Some(TestFault::Corrupt),
        _ => None,
    };
    let debug = args.debug;
    let go = |report: Report| take_over_and_serve(&socket, &mountpoint, fault, debug, report);
    if args.foreground || args.debug {
        go(Report::Foreground)
    } else {
        daemonize(go)
    }
}

fn take_over_and_serve(
    socket: &Path,
    mountpoint: &Path,
    fault: Option<TestFault>,
    debug: bool,
    report: Report,
) -> ExitCode {
    let signals = exit_signals();
    // SAFETY: blocks signals for this (so far only) thread; threads created later inherit it.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut()) };
    let takeover = match Takeover::request(socket, fault) {
        Ok(t) => t,
        Err(e) => return report.failed(format!("takeover of {}: {e}", mountpoint.display())),
    };
    let app = match AppState::decode(&takeover.handover().app_state) {
        Ok(app) => app,
        Err(why) => {
            let e = takeover.refuse(why);
            return report.failed(format!("takeover of {}: {e}", mountpoint.display()));
        }
    };
    let name = app.fs_name.as_str();
    if name == <DefaultFs as Mount<FileDevice>>::NAME {
        resume_and_serve::<DefaultFs>(takeover, app, debug, report, signals)
    } else if name == <MemFs as Mount<FileDevice>>::NAME {
        resume_and_serve::<MemFs>(takeover, app, debug, report, signals)
    } else {
        let e = takeover.refuse(format!(
            "the mount is of file-system type {name:?}, which this logfs-fuse does not have"
        ));
        report.failed(format!("takeover of {}: {e}", mountpoint.display()))
    }
}

fn resume_and_serve<F: Mount<FileDevice> + 'static>(
    takeover: Takeover,
    app: AppState,
    debug: bool,
    report: Report,
    signals: libc::sigset_t,
) -> ExitCode {
    let mountpoint = takeover.handover().mountpoint.clone();
    let resumed = takeover.resume(|h| {
        let want = 1 + usize::from(app.auto_unmount);
        if h.app_fds.len() != want {
            return Err(format!(
                "{} descriptors for logfs-fuse, {want} expected",
                h.app_fds.len()
            ));
        }
        let fds = std::mem::take(&mut h.app_fds);
        let image = app.image.display();
        let dev = FileDevice::open(&app.image, app.mount.read_only)
            .map_err(|e| format!("cannot open {image}: {}", os_error(&e)))?;
        let fs = F::resume(dev, &app.mount, &h.fs_state).map_err(|e| {
            format!(
                "{} {} cannot resume the state of {} {}: {e}",
                F::NAME,
                F::VERSION,
                app.fs_name,
                app.fs_version
            )
        })?;
        Ok((fs, fds))
    });
    let (session, fds, listener) = match resumed {
        Ok(r) => r,
        Err(e) => return report.failed(format!("takeover of {}: {e}", mountpoint.display())),
    };
    let mut fds = fds.into_iter();
    let Some(lock) = fds.next() else {
        return report.failed("internal error: no image lock".into());
    };
    let watcher = fds.next().map(|fd| AutoUnmount {
        pipe: File::from(fd),
    });
    bento_api::info!(
        "logfs-fuse: took over {} ({} {})",
        mountpoint.display(),
        F::NAME,
        F::VERSION
    );
    let job = Job {
        image: app.image,
        mountpoint,
        settings: Settings {
            fuse: FuseOptions::default(),
            mount: app.mount,
            foreground: matches!(report, Report::Foreground),
            debug,
            auto_unmount: app.auto_unmount,
            takeover: true,
        },
        lock: File::from(lock),
    };
    serve_session(session, &job, watcher, Some(listener), report, signals)
}

/// `auto_unmount` without fusermount: a watcher process that lazily unmounts the mount point
/// when this process goes away, if the mount there is still ours (same device number).
struct AutoUnmount {
    pipe: File,
}

impl AutoUnmount {
    fn start(mountpoint: &Path, close_in_child: &[RawFd]) -> io::Result<AutoUnmount> {
        if !single_threaded() {
            return Err(io::Error::other("threads exist before fork"));
        }
        let (from_daemon, to_watcher) = pipe()?;
        // SAFETY: single-threaded (checked above), so the child may run arbitrary code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop(to_watcher);
            for &fd in close_in_child {
                // SAFETY: closes the child's copies of descriptors it must not hold (the image
                // lock, the report pipe); nothing in the child uses them afterwards.
                unsafe { libc::close(fd) };
            }
            // Let go of the caller's terminal or pipes too: whoever waits for their end (a
            // shell's `$(...)`, a test harness) must not wait for the watcher.
            detach_stdio();
            let _ = std::env::set_current_dir("/");
            Self::watch(from_daemon, mountpoint);
            // SAFETY: _exit ends the watcher without running the parent's exit handlers.
            unsafe { libc::_exit(0) };
        }
        Ok(AutoUnmount { pipe: to_watcher })
    }

    /// Tell the watcher which mount is ours.
    fn arm(&self, mountpoint: &Path) {
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
        if mount_device(mountpoint).as_deref() == Some(dev)
            && let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes())
        {
            // SAFETY: a valid NUL-terminated path.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// The device number ("major:minor") of the topmost mount on `mountpoint`, from mountinfo, so
/// without touching the mounted file system.
fn mount_device(mountpoint: &Path) -> Option<String> {
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

    fn args(opts: &[&str]) -> Args {
        let mut argv = vec!["logfs-fuse"];
        for o in opts {
            argv.extend(["-o", o]);
        }
        argv.extend(["img", "mnt"]);
        Args::parse_from(argv)
    }

    #[test]
    fn options() {
        let s = parse_settings(&args(&[
            "ro,allow_other,threads=3",
            "noexec,fsname=disk,foo=1,bar",
            "x-systemd.a",
        ]))
        .unwrap();
        assert!(s.mount.read_only && s.fuse.read_only);
        assert_eq!(s.fuse.acl, SessionACL::All);
        assert_eq!(s.fuse.threads, 3);
        assert_eq!(s.fuse.fsname.as_deref(), Some("disk"));
        assert_eq!(s.fuse.mount_options, vec![MountOption::NoExec]);
        assert_eq!(s.mount.fs_options, "foo=1,bar");
        assert!(!s.foreground);
        let s = parse_settings(&args(&["debug,exec,noexec,allow_root"])).unwrap();
        assert!(s.foreground && s.debug);
        assert_eq!(s.fuse.mount_options, vec![MountOption::NoExec]);
        assert_eq!(s.fuse.acl, SessionACL::RootAndOwner);
        assert!(parse_settings(&args(&["threads=0"])).is_err());
        assert!(parse_settings(&args(&["threads"])).is_err());
        assert!(parse_settings(&args(&["ro=1"])).is_err());
        assert_eq!(fs_name(&args(&["fs=logfs", "ro,fs=memfs"])), Some("memfs"));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/mnt/a\040b\134c"), b"/mnt/a b\\c");
        assert_eq!(unescape(r"/x\04"), b"/x\\04");
    }
}
