//! fsck.logfs: check a logfs volume, fsck(8) style.
//!
//! Exit codes (fsck(8)): 0 no errors, 4 errors left uncorrected, 8 operational error (cannot
//! open or read the device, no logfs on it, unsupported version), 16 usage error.
//! Repair is not implemented yet: `-y`, `-p`, `-a` and `-r` check read-only and say so.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bento_user::FileDevice;
use clap::Parser;
use fsck::{CheckOptions, Pass, Report, Severity, format_uuid};

// The hidden `--generate KIND` (man page, shell completions), shared with mkfs.logfs.
#[path = "../../mkfs/src/generate.rs"]
mod generate;

const EXIT_OK: u8 = 0;
const EXIT_UNCORRECTED: u8 = 4;
const EXIT_OPERATIONAL: u8 = 8;
const EXIT_USAGE: u8 = 16;

const DESCRIPTION: &str = "\
fsck.logfs checks the logfs file system on DEVICE, a block device or an image file (see
logfs(5)), in seven passes: the superblocks; the checkpoint packs; the node address and segment
usage tables; the directory tree, with every inode, index node and directory block; connectivity
and link counts; segment usage and the checkpoint's counters; the segment summaries.

It reports what it finds and never writes: repair is not implemented yet. The repair options
-y, -p, -a and -r are accepted for fsck(8) and check read-only, saying so; -p and -a also make
the output terse (no pass headings; each finding prefixed with DEVICE). The check is always
complete, so -f changes nothing.

Run it on an unmounted file system. On a mounted block device it warns that the check may report
spurious errors. An image file that a logfs-fuse mount holds is locked: fsck.logfs waits up to
--lock-timeout seconds for the mount to let go of it.";

const MORE: &str = "\
EXIT STATUS
The exit status follows fsck(8):
  0   No errors were found (or help or the version was shown).
  4   File system errors were found and left uncorrected, or the check could not be completed.
  8   Operational error: DEVICE cannot be opened or read, or holds no logfs, or its format
      version or features are not supported, or it is smaller than its file system, or memory
      ran out, or a logfs-fuse mount did not let go of it in time.
  16  Usage error.

EXAMPLES
Check a partition, with statistics:

    fsck.logfs -v /dev/nvme0n1p2

Unmount an image mounted with logfs-fuse and check it (fsck.logfs waits for the daemon's final
checkpoint):

    umount /mnt && fsck.logfs logfs.img

SEE ALSO
logfs(5), mkfs.logfs(8), logfs-fuse(8), fsck(8)";

#[derive(Parser, Debug)]
#[command(
    name = "fsck.logfs",
    version,
    about = "Check a logfs file system (read-only; repair is not available yet)",
    long_about = DESCRIPTION,
    after_long_help = MORE
)]
struct Cli {
    /// Check only; answer "no" to every repair (the default: nothing is ever written).
    #[arg(short = 'n', conflicts_with_all = ["yes", "preen", "auto", "repair"])]
    no: bool,
    /// Check even if the file system seems clean (logfs is always checked fully).
    #[arg(short = 'f')]
    force: bool,
    /// Repair without asking (not available yet: checks read-only).
    #[arg(short = 'y', conflicts_with_all = ["preen", "auto"])]
    yes: bool,
    /// Repair what is safe, quietly (not available yet: checks read-only).
    #[arg(short = 'p')]
    preen: bool,
    /// Same as -p.
    #[arg(short = 'a')]
    auto: bool,
    /// Repair interactively (not available yet: checks read-only).
    #[arg(short = 'r')]
    repair: bool,
    /// Verbose: informational findings and detailed statistics.
    #[arg(short = 'v')]
    verbose: bool,
    /// Progress file descriptor (accepted for fsck(8) compatibility; ignored).
    #[arg(short = 'C', value_name = "FD", hide = true)]
    progress: Option<i32>,
    /// Seconds to wait for a mount of the image (logfs-fuse) to let go of it.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    lock_timeout: u64,
    /// The device or image file to check.
    #[arg(value_name = "DEVICE")]
    device: PathBuf,
}

fn main() -> ExitCode {
    let cli = match generate::try_parse::<Cli>() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(run(&cli))
}

/// `Display` of an OS error without Rust's " (os error N)" suffix.
fn os_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Wait, up to `timeout`, for a shared lock on the image: logfs-fuse holds an exclusive one
/// while mounted and until its final checkpoint is on disk.
fn lock_shared(file: &File, path: &Path, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut told = false;
    loop {
        // SAFETY: flock on a descriptor this function borrows; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            // Locks unsupported here (some network file systems): go on without.
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "{} is in use (mounted by logfs-fuse, or another tool holds its lock)",
                path.display()
            ));
        }
        if !told {
            eprintln!(
                "fsck.logfs: {} is in use; waiting for it...",
                path.display()
            );
            told = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `/proc/mounts` lists `path` as a mounted source.
fn is_mounted(path: &Path) -> bool {
    let Ok(canon) = std::fs::canonicalize(path) else {
        return false;
    };
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return false;
    };
    mounts.lines().any(|line| {
        line.split_whitespace().next().is_some_and(|src| {
            src.starts_with('/') && std::fs::canonicalize(src).is_ok_and(|p| p == canon)
        })
    })
}

fn run(cli: &Cli) -> u8 {
    let path = &cli.device;
    // Accepted for fsck(8) compatibility; they change nothing: the check is always full and
    // never writes.
    let _ = (cli.force, cli.no, cli.progress);
    let preen = cli.preen || cli.auto;
    if cli.yes || preen || cli.repair {
        eprintln!("fsck.logfs: repair is not available yet; checking read-only");
    }
    let lock = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fsck.logfs: {}: {}", path.display(), os_error(&e));
            return EXIT_OPERATIONAL;
        }
    };
    if let Err(msg) = lock_shared(&lock, path, Duration::from_secs(cli.lock_timeout)) {
        eprintln!("fsck.logfs: {msg}");
        return EXIT_OPERATIONAL;
    }
    let dev = match FileDevice::open(path, true) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fsck.logfs: {}: {}", path.display(), os_error(&e));
            return EXIT_OPERATIONAL;
        }
    };
    if dev.is_block_device() && is_mounted(path) {
        eprintln!(
            "fsck.logfs: warning: {} is mounted; the check may report spurious errors",
            path.display()
        );
    }
    if !preen {
        eprintln!("fsck.logfs {}", env!("CARGO_PKG_VERSION"));
    }
    let opts = CheckOptions {
        verbose: cli.verbose,
        ..CheckOptions::default()
    };
    let started = Instant::now();
    let report = fsck::check(&dev, &opts);
    let elapsed = started.elapsed();
    let out = io::stdout();
    let mut out = out.lock();
    let _ = print_report(&mut out, cli, &report, preen);
    if cli.verbose {
        let _ = writeln!(out, "Check took {:.2} s", elapsed.as_secs_f64());
    }
    let _ = out.flush();
    if let Some(op) = &report.operational {
        eprintln!("fsck.logfs: {}: {op}", path.display());
        return EXIT_OPERATIONAL;
    }
    match report.exit_code() {
        0 => EXIT_OK,
        8 => EXIT_OPERATIONAL,
        _ => EXIT_UNCORRECTED,
    }
}

fn print_report(out: &mut impl Write, cli: &Cli, r: &Report, preen: bool) -> io::Result<()> {
    let name = cli.device.display();
    for pass in Pass::ALL {
        if !r.passes.contains(&pass) {
            continue;
        }
        if !preen {
            writeln!(out, "Pass {}: {}", pass.number(), pass.title())?;
        }
        for f in r.findings.iter().filter(|f| f.pass == pass) {
            if f.severity == Severity::Info && !cli.verbose {
                continue;
            }
            if preen {
                writeln!(out, "{name}: {f}")?;
            } else {
                writeln!(out, "  {f}")?;
            }
        }
    }
    if r.suppressed > 0 {
        writeln!(out, "({} more findings not shown)", r.suppressed)?;
    }
    if r.operational.is_some() {
        return Ok(());
    }
    let s = &r.stats;
    if r.completed {
        let clean = if r.errors == 0 { "clean, " } else { "" };
        writeln!(
            out,
            "{name}: {}{}/{} files ({} director{}), {}/{} blocks",
            if preen { clean } else { "" },
            s.inodes,
            s.max_inodes,
            s.directories,
            if s.directories == 1 { "y" } else { "ies" },
            s.used_blocks,
            s.capacity_blocks
        )?;
    }
    if cli.verbose && r.completed {
        let label = if r.label.is_empty() {
            "<none>".to_string()
        } else {
            r.label.clone()
        };
        let uuid = r.uuid.as_ref().map(format_uuid).unwrap_or_default();
        writeln!(out, "  label {label}, UUID {uuid}")?;
        writeln!(
            out,
            "  checkpoint {} ({})",
            s.checkpoint_seq,
            if s.clean {
                "cleanly unmounted"
            } else {
                "not cleanly unmounted"
            }
        )?;
        let pct = |n: u64, d: u64| {
            if d == 0 {
                0.0
            } else {
                n as f64 * 100.0 / d as f64
            }
        };
        writeln!(
            out,
            "{:>12} inodes used ({:.2}%, out of {})",
            s.inodes,
            pct(s.inodes, s.max_inodes),
            s.max_inodes
        )?;
        writeln!(out, "{:>12} directories", s.directories)?;
        writeln!(out, "{:>12} regular files", s.regular_files)?;
        writeln!(out, "{:>12} symbolic links", s.symlinks)?;
        writeln!(out, "{:>12} special files", s.special_files)?;
        writeln!(out, "{:>12} orphans", s.orphans)?;
        writeln!(
            out,
            "{:>12} blocks used ({:.2}%, out of {})",
            s.used_blocks,
            pct(s.used_blocks, s.capacity_blocks),
            s.capacity_blocks
        )?;
        writeln!(
            out,
            "{:>12} data blocks ({} preallocated)",
            s.data_blocks, s.preallocated_blocks
        )?;
        writeln!(out, "{:>12} nodes", s.nodes)?;
        writeln!(
            out,
            "{:>12} free segments (out of {})",
            s.free_segments, s.main_segments
        )?;
    }
    if r.errors > 0 {
        writeln!(
            out,
            "\n{name}: ***** {} error{} found; the file system was not modified *****",
            r.errors,
            if r.errors == 1 { "" } else { "s" }
        )?;
    } else if !r.completed {
        writeln!(
            out,
            "\n{name}: ***** the check could not be completed *****"
        )?;
    }
    Ok(())
}
