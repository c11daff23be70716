//! mkfs.logfs: make a logfs file system on a block device or an image file.
//!
//! `mkfs.logfs [-f] [-q] [-n] [-L label] [-U uuid] [-K|--nodiscard] DEVICE|IMAGE [SIZE]`
//!
//! SIZE, as for mkfs.ext4 with 4 KiB blocks: a count of 4 KiB blocks, or a size with a K, M, G
//! or T suffix (powers of 1024). The file system then covers only the start of the device.
//!
//! Without `-f` it refuses a target that already holds a file system or a partition table:
//! logfs, or anything libblkid's probe recognizes (`probe`; util-linux's blkid must be
//! installed, else it refuses rather than guesses). It always refuses a mounted block device, or an image a
//! logfs-fuse mount holds. Exit status: 0 done, 1 error (including usage errors).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use bento_api::fs::Timespec;
use bento_api::ks::block::BlockDevice;
use bento_user::FileDevice;
use clap::Parser;
use logfs::BLOCK_SIZE;
use logfs::format::layout::{Layout, SEG_BLOCKS};
use logfs::mkfs::{MkfsOptions, format_sized};

mod generate;
mod probe;

const LABEL_MAX: usize = 64;

const DESCRIPTION: &str = "\
mkfs.logfs makes a logfs file system on DEVICE, a block device or an image file. logfs is a
log-structured file system for flash; it runs in the Linux kernel on Bento
(mount -t bento -o fs=logfs) or in userspace over FUSE (logfs-fuse). See logfs(5).

The file system covers the whole device, or its first SIZE. Unless -K is given, mkfs.logfs
first discards those blocks (on an image file it punches a hole, which keeps the file sparse);
a device that cannot discard is not an error.

Without -f, mkfs.logfs refuses a target that already holds a file system it recognizes (logfs,
ext2, ext3, ext4, XFS, btrfs, F2FS, NILFS2, a LUKS volume, swap space) or a partition table
(GPT or DOS). It always refuses a mounted block device, and an image file that a logfs-fuse
mount holds.";

const MORE: &str = "\
EXIT STATUS
  0  The file system was made (or, with -n, would be made), or help or the version was shown.
  1  An error, including a usage error; the reason is printed.

EXAMPLES
Make a logfs on a partition, labelled \"data\":

    mkfs.logfs -L data /dev/nvme0n1p2

Make a 20 GiB image file, a logfs on it, and mount it over FUSE:

    truncate -s 20G logfs.img
    mkfs.logfs logfs.img
    logfs-fuse logfs.img /mnt

Show what would be made on the first 512 MiB of a device, without writing:

    mkfs.logfs -n /dev/sdb 512M

SEE ALSO
logfs(5), fsck.logfs(8), logfs-fuse(8), mount(8)";

#[derive(Parser, Debug)]
#[command(
    name = "mkfs.logfs",
    version,
    about = "Make a logfs file system",
    long_about = DESCRIPTION,
    after_long_help = MORE
)]
struct Cli {
    /// Overwrite an existing file system or partition table.
    #[arg(short = 'f', long)]
    force: bool,
    /// Print nothing unless there is an error.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show what would be made, but write nothing.
    #[arg(short = 'n', long = "dry-run")]
    dry_run: bool,
    /// Volume label, at most 64 bytes.
    #[arg(short = 'L', long, value_name = "LABEL")]
    label: Option<std::ffi::OsString>,
    /// Volume UUID in standard form (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), or "random".
    #[arg(short = 'U', long, value_name = "UUID")]
    uuid: Option<String>,
    /// Do not discard the device's blocks first.
    #[arg(short = 'K', long = "nodiscard")]
    nodiscard: bool,
    /// The block device or image file.
    #[arg(value_name = "DEVICE")]
    device: PathBuf,
    /// Size of the file system (default: the whole device): a number of 4 KiB blocks, or
    /// bytes with a K, M, G or T suffix (powers of 1024).
    #[arg(value_name = "SIZE", value_parser = parse_size)]
    size: Option<u64>,
}

/// A SIZE argument in blocks: `N` blocks, or `N` with a K/M/G/T suffix (optionally "iB"),
/// rounded down to whole blocks.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix("ib"))
        .unwrap_or(t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => return Err(format!("unknown size suffix in \"{s}\" (use K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size \"{s}\" (a number of 4 KiB blocks, or e.g. 512M)"))?;
    let blocks = if shift == 0 {
        Some(n)
    } else {
        n.checked_mul(1 << shift).map(|b| b / BLOCK_SIZE as u64)
    };
    match blocks {
        Some(b) if b > 0 => Ok(b),
        Some(_) => Err(format!("size \"{s}\" is less than one 4 KiB block")),
        None => Err(format!("size \"{s}\" is too large")),
    }
}

fn main() -> ExitCode {
    let cli = match generate::try_parse::<Cli>() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("mkfs.logfs: {msg}");
            ExitCode::from(1)
        }
    }
}

/// `Display` of an OS error without Rust's " (os error N)" suffix.
fn os_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parse a UUID in its standard text form.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = s.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = groups.concat();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn format_uuid(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn random_bytes(buf: &mut [u8]) -> Result<(), String> {
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| format!("cannot read /dev/urandom: {}", os_error(&e)))
}

/// A random (version 4) UUID.
fn random_uuid() -> Result<[u8; 16], String> {
    let mut u = [0u8; 16];
    random_bytes(&mut u)?;
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.2} {}", UNITS[u])
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

/// Take an exclusive lock on the target for the duration of mkfs; a logfs-fuse mount of the
/// image holds one, so a mounted image is refused.
fn lock_exclusive(path: &Path) -> Result<File, String> {
    let file = File::open(path).map_err(|e| format!("{}: {}", path.display(), os_error(&e)))?;
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(format!(
                "{} is in use (mounted by logfs-fuse?); will not make a file system here",
                path.display()
            ));
        }
    }
    Ok(file)
}

fn run(cli: &Cli) -> Result<(), String> {
    let path = &cli.device;
    let name = path.display();
    let label = cli
        .label
        .as_ref()
        .map(|l| l.as_bytes().to_vec())
        .unwrap_or_default();
    if label.len() > LABEL_MAX {
        return Err(format!(
            "label is {} bytes long; the maximum is {LABEL_MAX}",
            label.len()
        ));
    }
    let uuid = match cli.uuid.as_deref() {
        None | Some("random") => None,
        Some(s) => Some(parse_uuid(s).ok_or_else(|| {
            format!(
                "invalid UUID \"{s}\" (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx or \"random\")"
            )
        })?),
    };
    let meta = std::fs::metadata(path).map_err(|e| format!("{name}: {}", os_error(&e)))?;
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_block_device() {
        return Err(format!("{name} is not a block device or a regular file"));
    }
    if ft.is_block_device() && is_mounted(path) {
        return Err(format!(
            "{name} is mounted; will not make a file system here"
        ));
    }
    let _lock = if cli.dry_run {
        None
    } else {
        Some(lock_exclusive(path)?)
    };
    let dev = FileDevice::open(path, cli.dry_run).map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            format!("{name} is in use (mounted?); will not make a file system here")
        } else {
            format!("{name}: {}", os_error(&e))
        }
    })?;

    let dev_blocks = dev.block_count();
    let blocks = match cli.size {
        Some(b) if b > dev_blocks => {
            return Err(format!(
                "the requested size, {} ({b} blocks), is larger than {name}: {} ({dev_blocks} \
                 blocks)",
                human(b * BLOCK_SIZE as u64),
                human(dev_blocks * BLOCK_SIZE as u64)
            ));
        }
        Some(b) => b,
        None => dev_blocks,
    };
    let bytes = blocks * BLOCK_SIZE as u64;
    let min = Layout::minimum_device_bytes();
    let too_small = || {
        format!(
            "{name} is too small for logfs: {} ({bytes} bytes); at least {} ({min} bytes) \
             are needed",
            human(bytes),
            human(min)
        )
    };
    if bytes < min {
        return Err(too_small());
    }
    let layout = Layout::compute(blocks).map_err(|_| too_small())?;

    // -f needs no probe (and so no blkid); a dry run reports what it would overwrite.
    let found = match (cli.force, cli.dry_run) {
        (true, false) => None,
        (true, true) => probe::existing(path, &dev).unwrap_or_else(|e| {
            eprintln!("mkfs.logfs: {e}");
            None
        }),
        (false, _) => probe::existing(path, &dev)?,
    };
    if let Some(what) = found {
        if cli.dry_run {
            if !cli.quiet {
                println!("{name} contains {what}; it would be overwritten");
            }
        } else if !cli.force {
            return Err(format!("{name} contains {what}; use -f to overwrite"));
        }
    }

    if !cli.dry_run {
        probe::wipe(path)?;
    }

    let uuid = match uuid {
        Some(u) => u,
        None => random_uuid()?,
    };
    let mut hash_seed = [0u8; 16];
    random_bytes(&mut hash_seed)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let opts = MkfsOptions {
        label: label.clone(),
        uuid,
        hash_seed,
        time: Timespec::new(now.as_secs() as i64, now.subsec_nanos()),
        discard: !cli.nodiscard,
        version: format!("mkfs.logfs {}", env!("CARGO_PKG_VERSION")).into_bytes(),
        root_uid: 0,
        root_gid: 0,
    };

    if !cli.quiet {
        println!(
            "{} a logfs file system on {name}{}",
            if cli.dry_run { "Would make" } else { "Making" },
            if cli.dry_run {
                " (dry run: nothing is written)"
            } else {
                ""
            }
        );
        let fs_bytes = layout.total_blocks * BLOCK_SIZE as u64;
        println!(
            "  size:             {} ({} blocks of {BLOCK_SIZE} bytes)",
            human(fs_bytes),
            layout.total_blocks
        );
        if layout.total_blocks < dev_blocks && cli.size.is_none() {
            println!(
                "                    (the device has {}; logfs addresses at most {})",
                human(bytes),
                human(fs_bytes)
            );
        } else if layout.total_blocks < dev_blocks {
            println!(
                "                    (of the device's {})",
                human(dev_blocks * BLOCK_SIZE as u64)
            );
        }
        println!(
            "  segments:         {} of {}, {} reserved for cleaning",
            layout.main_segments,
            human(u64::from(SEG_BLOCKS) * BLOCK_SIZE as u64),
            layout.reserved_segments
        );
        println!(
            "  capacity:         {} ({} blocks)",
            human(layout.user_capacity() * BLOCK_SIZE as u64),
            layout.user_capacity()
        );
        println!("  max inodes:       {}", layout.max_nid.saturating_sub(1));
        println!("  UUID:             {}", format_uuid(&uuid));
        println!(
            "  label:            {}",
            if label.is_empty() {
                "<none>".to_string()
            } else {
                String::from_utf8_lossy(&label).into_owned()
            }
        );
    }
    if cli.dry_run {
        return Ok(());
    }
    format_sized(&dev, &opts, blocks)
        .map_err(|e| format!("{name}: cannot make the file system: {e}"))?;
    dev.flush()
        .map_err(|e| format!("{name}: cannot flush: {e}"))?;
    if !cli.quiet {
        println!("Done.");
    }
    Ok(())
}
