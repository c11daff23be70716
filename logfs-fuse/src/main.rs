//! `logfs-fuse`: mount a logfs image or block device in userspace over FUSE.
//!
//! A thin command line over `bento_fuse::daemon`, which does the work: it takes an exclusive
//! `flock(2)` on the image for its whole life (see `--help`), daemonizes unless `-f`, unmounts
//! cleanly on SIGTERM, SIGINT and SIGHUP, and hands a mount over for `--takeover`. `-o fs=NAME`
//! picks one of the file-system types this binary was built with, logfs by default.

use std::path::PathBuf;
use std::process::ExitCode;

use bento_api::fs::Mount;
use bento_api::ks::log::{Level, set_max_level};
use bento_fuse::TestFault;
use bento_fuse::daemon::{self, Daemon, Resumer, Settings};
use bento_fuse::memfs::MemFs;
use bento_user::FileDevice;
use clap::{ArgAction, Parser};
// The hidden `--generate KIND` (man page, shell completions), shared with mkfs.logfs.
#[path = "../../mkfs/src/generate.rs"]
mod generate;

/// The file system mounted unless `-o fs=NAME` says otherwise.
type DefaultFs = logfs::LogFs<FileDevice>;

const DESCRIPTION: &str = "\
logfs-fuse mounts the logfs file system on IMAGE|DEVICE, an image file or a block device, on
MOUNTPOINT through FUSE: the file system code that runs in the kernel on Bento, in a userspace
daemon. See logfs(5).

Without -f, logfs-fuse returns once the file system is mounted (exit status 0) or has failed to
mount (1; the reason is printed), and keeps serving in the background; its messages then go
nowhere (use -f to see them). It unmounts cleanly on SIGTERM, SIGINT and SIGHUP.

logfs-fuse holds an exclusive flock(2) on IMAGE|DEVICE for as long as it runs: a second
logfs-fuse and mkfs.logfs refuse the image, and fsck.logfs waits for it. umount(8) returns as
soon as the kernel has let go of the mount, BEFORE logfs-fuse has written its final checkpoint;
wait for the lock before copying, checking or mounting the image again (see EXAMPLES).";

const MORE: &str = "\
MOUNT OPTIONS
Given with -o, comma-separated; -o may be repeated.
  ro, rw  Read-only or read-write (default rw).
  allow_other  Let every user use the mount (permission bits are still checked).
  allow_root  Let root use the mount as well as the mounting user.
  auto_unmount  Unmount automatically if logfs-fuse dies.
  fsname=NAME  The source shown in /proc/mounts (default: the image path).
  threads=N  Worker threads, 1 to 1024 (default: the number of CPUs, at least 2).
  debug  Log every request to standard error (implies -f).
  fs=NAME  The file-system type: logfs (default), or memfs (in memory, for testing).
  notakeover  Do not offer the mount for --takeover (no control socket).
  dev, nodev, suid, nosuid, exec, noexec, atime, noatime, sync, async, dirsync
      The usual mount flags (default nodev,nosuid).
  defaults, auto, noauto, nofail, _netdev, user, users, nouser, x-*, default_permissions
      Accepted and ignored (fstab words; permissions are always checked).
  anything else  Passed to the file system: logfs takes discard, nodiscard,
      fsync=rollforward and fsync=checkpoint (see logfs(5)) and refuses the mount for any other.

LIVE UPGRADE
logfs-fuse --takeover MOUNTPOINT starts this binary (a newer or older logfs-fuse) in place of the
daemon serving MOUNTPOINT, without unmounting and without a failed call. The running daemon
stops reading requests (they wait in the kernel), finishes those it has, commits a checkpoint and
hands the /dev/fuse connection, the image lock and its state to the new one over its control
socket, then exits. Image, options and open files carry over. If the new binary refuses the state
(another file system, an unknown required field, damage), it exits with status 1 saying why, and
the old daemon keeps serving. Only root or the daemon's own user may take a mount over.

EXIT STATUS
  0  Success: mounted (without -f), unmounted cleanly (with -f), or the mount taken over.
  1  An error: the file system could not be mounted or served, or the takeover was refused.
  2  A usage error: bad arguments or -o options, or an unknown fs= type.

ENVIRONMENT
  LOGFS_FUSE_RUN_DIR  The directory of the control sockets, instead of /run/logfs-fuse.

FILES
  /run/logfs-fuse/MAJOR:MINOR.sock
      The control socket of the daemon serving the mount whose device number is MAJOR:MINOR
      (mode 0600), which --takeover connects to.

EXAMPLES
Mount an image, unmount it and wait for the final checkpoint:

    logfs-fuse logfs.img /mnt
    umount /mnt && flock logfs.img true

Mount a device read-only, for every user:

    logfs-fuse -o ro,allow_other /dev/sdb1 /mnt

Move the mount on /mnt to this logfs-fuse binary (live upgrade):

    logfs-fuse --takeover /mnt

SEE ALSO
logfs(5), mkfs.logfs(8), fsck.logfs(8), fuse(4), mount(8), umount(8), flock(1)";

/// Mount a logfs image or block device over FUSE.
#[derive(Parser, Debug)]
#[command(
    name = "logfs-fuse",
    version = logfs::fs::VERSION,
    about,
    long_about = DESCRIPTION,
    after_help = "See --help for the mount options, live upgrade and the exit status.",
    after_long_help = MORE,
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

    /// Mount options (see MOUNT OPTIONS)
    #[arg(short = 'o', value_name = "OPTIONS", action = ArgAction::Append)]
    options: Vec<String>,

    /// Take over the running logfs-fuse daemon's mount on MOUNTPOINT (see LIVE UPGRADE)
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

/// The value of the last `fs=` option.
fn fs_name(args: &Args) -> Option<&str> {
    args.options().filter_map(|o| o.strip_prefix("fs=")).last()
}

/// The file-system types this binary serves, by name (for `--takeover`).
fn resumer(name: &str) -> Option<Resumer> {
    if name == <DefaultFs as Mount<FileDevice>>::NAME {
        Some(daemon::resumer::<DefaultFs>())
    } else if name == <MemFs as Mount<FileDevice>>::NAME {
        Some(daemon::resumer::<MemFs>())
    } else {
        None
    }
}

fn the_daemon() -> Daemon {
    let fault = match std::env::var("LOGFS_FUSE_TEST_FAULT").as_deref() {
        Ok("unknown-field") => Some(TestFault::UnknownField),
        Ok("corrupt") => Some(TestFault::Corrupt),
        _ => None,
    };
    Daemon {
        name: "logfs-fuse",
        run_dir: std::env::var_os("LOGFS_FUSE_RUN_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("/run/logfs-fuse"), PathBuf::from),
        test_fault: fault,
    }
}

fn main() -> ExitCode {
    let args = generate::try_parse::<Args>().unwrap_or_else(|e| e.exit());
    if let Some(mountpoint) = &args.takeover {
        daemon::close_inherited_fds();
        log_to_stderr(args.debug);
        return the_daemon().take_over(
            mountpoint,
            args.foreground || args.debug,
            args.debug,
            resumer,
        );
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

fn log_to_stderr(debug: bool) {
    if debug {
        set_max_level(Level::Debug);
    }
    bento_fuse::log_to_stderr(debug);
}

/// Mount `args.image` as an `F` on `args.mountpoint` and serve it.
fn run<F: Mount<FileDevice> + 'static>(args: &Args) -> ExitCode {
    let settings = match Settings::parse(args.options(), args.foreground, args.debug) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("logfs-fuse: {msg}");
            return ExitCode::from(2);
        }
    };
    log_to_stderr(settings.debug);
    let (Some(image), Some(mountpoint)) = (&args.image, &args.mountpoint) else {
        eprintln!("logfs-fuse: an image and a mount point are needed");
        return ExitCode::from(2);
    };
    the_daemon().mount::<F>(image, mountpoint, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_option() {
        let args = Args::parse_from([
            "logfs-fuse",
            "-o",
            "fs=logfs",
            "-o",
            "ro,fs=memfs",
            "i",
            "m",
        ]);
        assert_eq!(fs_name(&args), Some("memfs"));
    }
}
