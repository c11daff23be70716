//! The FUSE adapter, for real: memfs mounted over /dev/fuse in a temporary directory.
//!
//! Needs root and /dev/fuse; without them every test prints why and passes.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use bento_api::Errno;
use bento_api::fs::{
    Entry, FileAttr, FileSystem, FileType, Ino, ROOT_INO, Request, Statfs, Timespec,
};
use bento_fuse::memfs::{MemFs, MemFsStats};
use bento_fuse::{FuseOptions, FuseSession, Negotiated};

/// Why FUSE tests cannot run here, if they cannot.
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

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A file system mounted in a fresh temporary directory and served by a background thread.
struct Mounted {
    dir: PathBuf,
    mp: PathBuf,
    negotiated: Negotiated,
    server: Option<JoinHandle<io::Result<()>>>,
}

impl Mounted {
    fn new<F: FileSystem + 'static>(test: &str, fs: F) -> Mounted {
        let dir = std::env::temp_dir().join(format!("bento-fuse-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mp = dir.join("mnt");
        fs::create_dir_all(&mp).unwrap();
        let opts = FuseOptions {
            fsname: Some(format!("bento-test-{test}")),
            subtype: Some("memfs".into()),
            ..FuseOptions::default()
        };
        let session = FuseSession::mount(fs, &mp, &opts).expect("mount");
        let negotiated = session.negotiated().expect("FUSE_INIT done");
        let server = std::thread::spawn(move || session.run());
        Mounted {
            dir,
            mp,
            negotiated,
            server: Some(server),
        }
    }

    fn memfs(test: &str) -> (Mounted, Arc<MemFsStats>) {
        let fs = MemFs::new();
        let stats = fs.stats();
        (Mounted::new(test, fs), stats)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mp.join(name)
    }

    /// Unmount as umount(8) does and wait for the session (and destroy) to finish.
    fn unmount(mut self) -> io::Result<()> {
        // SAFETY: the path is a valid C string.
        if unsafe { libc::umount(cstr(&self.mp).as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.server.take().unwrap().join().expect("server thread")
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // SAFETY: the path is a valid C string.
            unsafe { libc::umount2(cstr(&self.mp).as_ptr(), libc::MNT_DETACH) };
            let _ = server.join();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn create_write_read() {
    require_fuse!();
    let (m, _) = Mounted::memfs("rw");
    let p = m.path("hello.txt");
    fs::write(&p, b"hello, world\n").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"hello, world\n");
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b"more\n").unwrap();
    drop(f);
    assert_eq!(fs::read_to_string(&p).unwrap(), "hello, world\nmore\n");
    let mut f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    f.seek(SeekFrom::Start(7)).unwrap();
    f.write_all(b"WORLD").unwrap();
    f.set_len(12).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(fs::read(&p).unwrap(), b"hello, WORLD");
    assert_eq!(fs::metadata(&p).unwrap().len(), 12);
    // A write-only descriptor works with the writeback cache (which reads pages behind it).
    let mut f = OpenOptions::new().write(true).open(&p).unwrap();
    f.seek(SeekFrom::Start(1)).unwrap();
    f.write_all(b"E").unwrap();
    drop(f);
    assert_eq!(fs::read(&p).unwrap(), b"hEllo, WORLD");
    m.unmount().unwrap();
}

#[test]
fn mkdir_readdir() {
    require_fuse!();
    let (m, _) = Mounted::memfs("readdir");
    let d = m.path("dir");
    fs::create_dir(&d).unwrap();
    // Enough long names that a listing takes several readdir calls.
    let mut expected: Vec<String> = (0..600)
        .map(|i| format!("entry-{i:04}-{}", "x".repeat(40)))
        .collect();
    for (i, name) in expected.iter().enumerate() {
        if i % 10 == 0 {
            fs::create_dir(d.join(name)).unwrap();
        } else {
            File::create(d.join(name)).unwrap();
        }
    }
    let list = |dir: &Path| {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    expected.sort();
    assert_eq!(list(&d), expected);
    // Kinds come through readdir.
    for e in fs::read_dir(&d).unwrap() {
        let e = e.unwrap();
        let idx: usize = e.file_name().to_str().unwrap()[6..10].parse().unwrap();
        assert_eq!(e.file_type().unwrap().is_dir(), idx.is_multiple_of(10));
    }
    assert_eq!(fs::metadata(&d).unwrap().nlink(), 2 + 60);
    for name in expected.iter().step_by(3) {
        let p = d.join(name);
        if p.is_dir() {
            fs::remove_dir(&p).unwrap()
        } else {
            fs::remove_file(&p).unwrap()
        }
    }
    let remaining: Vec<String> = expected
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(list(&d), remaining);
    assert_eq!(
        fs::remove_dir(&d).unwrap_err().raw_os_error(),
        Some(libc::ENOTEMPTY)
    );
    assert_eq!(list(&m.mp), vec!["dir".to_string()]);
    m.unmount().unwrap();
}

fn renameat2(from: &Path, to: &Path, flags: u32) -> Result<(), i32> {
    let (from, to) = (cstr(from), cstr(to));
    // SAFETY: both paths are valid C strings; renameat2 takes no other memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if rc == 0 { Ok(()) } else { Err(errno()) }
}

#[test]
fn rename_flags() {
    require_fuse!();
    let (m, _) = Mounted::memfs("rename");
    let (a, b, c) = (m.path("a"), m.path("b"), m.path("c"));
    fs::write(&a, b"A").unwrap();
    fs::write(&b, b"B").unwrap();
    assert_eq!(renameat2(&a, &b, libc::RENAME_NOREPLACE), Err(libc::EEXIST));
    renameat2(&a, &c, libc::RENAME_NOREPLACE).unwrap();
    assert!(!a.exists());
    assert_eq!(fs::read(&c).unwrap(), b"A");
    renameat2(&b, &c, libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(&b).unwrap(), b"A");
    assert_eq!(fs::read(&c).unwrap(), b"B");
    assert_eq!(renameat2(&b, &a, libc::RENAME_EXCHANGE), Err(libc::ENOENT));
    // Exchange a directory with a file across directories.
    fs::create_dir(m.path("d")).unwrap();
    fs::create_dir(m.path("d/sub")).unwrap();
    fs::write(m.path("d/sub/f"), b"deep").unwrap();
    renameat2(&m.path("d/sub"), &c, libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(m.path("c/f")).unwrap(), b"deep");
    assert_eq!(fs::read(m.path("d/sub")).unwrap(), b"B");
    assert_eq!(fs::metadata(m.path("d")).unwrap().nlink(), 2);
    // Plain rename replaces.
    fs::rename(&b, m.path("d/sub")).unwrap();
    assert_eq!(fs::read(m.path("d/sub")).unwrap(), b"A");
    // A directory cannot move into itself.
    assert_eq!(
        fs::rename(m.path("d"), m.path("d/x"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EINVAL)
    );
    m.unmount().unwrap();
}

fn getxattr(path: &Path, name: &str, size: usize) -> Result<(isize, Vec<u8>), i32> {
    let name = CString::new(name).unwrap();
    let mut buf = vec![0u8; size];
    // SAFETY: valid C strings; buf has `size` writable bytes (a null pointer is allowed for 0).
    let n = unsafe {
        libc::getxattr(
            cstr(path).as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            size,
        )
    };
    if n < 0 {
        Err(errno())
    } else {
        Ok((n, buf[..n.min(size as isize) as usize].to_vec()))
    }
}

fn listxattr(path: &Path, size: usize) -> Result<(isize, Vec<u8>), i32> {
    let mut buf = vec![0u8; size];
    // SAFETY: a valid C string; buf has `size` writable bytes.
    let n = unsafe { libc::listxattr(cstr(path).as_ptr(), buf.as_mut_ptr().cast(), size) };
    if n < 0 {
        Err(errno())
    } else {
        Ok((n, buf[..n.min(size as isize) as usize].to_vec()))
    }
}

fn setxattr(path: &Path, name: &str, value: &[u8], flags: i32) -> Result<(), i32> {
    let name = CString::new(name).unwrap();
    // SAFETY: valid C strings; value is readable for its length.
    let rc = unsafe {
        libc::setxattr(
            cstr(path).as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    if rc == 0 { Ok(()) } else { Err(errno()) }
}

#[test]
fn xattr_size_protocol() {
    require_fuse!();
    let (m, _) = Mounted::memfs("xattr");
    let p = m.path("f");
    fs::write(&p, b"").unwrap();
    let value = b"a value of 24 bytes long";
    setxattr(&p, "user.one", value, 0).unwrap();
    setxattr(&p, "user.two", b"2", libc::XATTR_CREATE).unwrap();
    assert_eq!(
        setxattr(&p, "user.two", b"2", libc::XATTR_CREATE),
        Err(libc::EEXIST)
    );
    assert_eq!(
        setxattr(&p, "user.three", b"3", libc::XATTR_REPLACE),
        Err(libc::ENODATA)
    );

    assert_eq!(getxattr(&p, "user.one", 0), Ok((24, vec![])));
    assert_eq!(getxattr(&p, "user.one", 10), Err(libc::ERANGE));
    assert_eq!(getxattr(&p, "user.one", 24), Ok((24, value.to_vec())));
    assert_eq!(getxattr(&p, "user.one", 100), Ok((24, value.to_vec())));
    assert_eq!(getxattr(&p, "user.missing", 100), Err(libc::ENODATA));

    let names = b"user.one\0user.two\0";
    assert_eq!(listxattr(&p, 0), Ok((names.len() as isize, vec![])));
    assert_eq!(listxattr(&p, 5), Err(libc::ERANGE));
    assert_eq!(
        listxattr(&p, 100),
        Ok((names.len() as isize, names.to_vec()))
    );

    let name = CString::new("user.one").unwrap();
    // SAFETY: valid C strings.
    assert_eq!(
        unsafe { libc::removexattr(cstr(&p).as_ptr(), name.as_ptr()) },
        0
    );
    assert_eq!(getxattr(&p, "user.one", 0), Err(libc::ENODATA));
    m.unmount().unwrap();
}

#[test]
fn statfs_propagates() {
    require_fuse!();
    let statfs = Statfs {
        blocks: 123_456,
        bfree: 23_456,
        bavail: 3_456,
        files: 7_890,
        ffree: 890,
        bsize: 4096,
        namelen: 200,
        frsize: 4096,
    };
    let m = Mounted::new("statfs", MemFs::new().with_statfs(statfs));
    // SAFETY: statvfs is plain old data; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(cstr(&m.mp).as_ptr(), &mut st) }, 0);
    assert_eq!(
        (
            st.f_blocks,
            st.f_bfree,
            st.f_bavail,
            st.f_files,
            st.f_ffree,
            st.f_bsize,
            st.f_namemax,
            st.f_frsize
        ),
        (123_456, 23_456, 3_456, 7_890, 890, 4096, 200, 4096)
    );
    // The mount shows the fsname and subtype.
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.contains(m.mp.to_str().unwrap()))
        .unwrap()
        .to_string();
    assert!(line.starts_with("bento-test-statfs "), "{line}");
    assert!(line.contains(" fuse.memfs "), "{line}");
    assert!(line.contains("default_permissions"), "{line}");
    m.unmount().unwrap();
}

#[test]
fn symlink_and_hard_links() {
    require_fuse!();
    let (m, _) = Mounted::memfs("links");
    let target = "some/where/else";
    std::os::unix::fs::symlink(target, m.path("sym")).unwrap();
    assert_eq!(fs::read_link(m.path("sym")).unwrap(), Path::new(target));
    let meta = fs::symlink_metadata(m.path("sym")).unwrap();
    assert!(meta.file_type().is_symlink());
    assert_eq!(meta.len(), target.len() as u64);

    fs::write(m.path("f"), b"shared").unwrap();
    fs::hard_link(m.path("f"), m.path("g")).unwrap();
    assert_eq!(fs::metadata(m.path("f")).unwrap().nlink(), 2);
    assert_eq!(
        fs::metadata(m.path("g")).unwrap().ino(),
        fs::metadata(m.path("f")).unwrap().ino()
    );
    fs::remove_file(m.path("f")).unwrap();
    assert_eq!(fs::metadata(m.path("g")).unwrap().nlink(), 1);
    assert_eq!(fs::read(m.path("g")).unwrap(), b"shared");
    assert_eq!(
        fs::hard_link(m.path("g"), m.path("sym"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EEXIST)
    );
    m.unmount().unwrap();
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn large_write_read_back() {
    require_fuse!();
    let (m, stats) = Mounted::memfs("large");
    eprintln!("negotiated: {:?}", m.negotiated);
    let data = pattern(8 << 20, 42);
    let p = m.path("big");
    let mut f = File::create(&p).unwrap();
    f.write_all(&data).unwrap();
    f.sync_all().unwrap();
    drop(f);
    // Read around the page cache, so the data comes from the file system.
    let mut back = Vec::new();
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&p)
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == data, "8 MiB read back differs");
    let mut cached = Vec::new();
    File::open(&p).unwrap().read_to_end(&mut cached).unwrap();
    assert!(
        cached == data,
        "8 MiB read back through the page cache differs"
    );
    let max_write = stats.max_write.load(Ordering::Relaxed);
    let writes = stats.writes.load(Ordering::Relaxed);
    eprintln!(
        "largest write request {} KiB, {writes} write requests for 8 MiB, writeback cache {}",
        max_write / 1024,
        m.negotiated.writeback_cache()
    );
    assert!(
        max_write > 128 << 10,
        "big writes not in effect: largest write {max_write}"
    );
    m.unmount().unwrap();
}

#[test]
fn umask_applies_once() {
    require_fuse!();
    let (m, _) = Mounted::memfs("umask");
    let script = "umask 027 && mkdir \"$1/d\" && : > \"$1/f\" && mkfifo \"$1/p\"";
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(&m.mp)
        .status()
        .unwrap();
    assert!(status.success());
    let meta = |name: &str| fs::symlink_metadata(m.path(name)).unwrap();
    // mkdir, create and mknod each carry the umask, once.
    assert_eq!(meta("d").permissions().mode() & 0o7777, 0o750);
    assert_eq!(meta("f").permissions().mode() & 0o7777, 0o640);
    assert_eq!(meta("p").permissions().mode() & 0o7777, 0o640);
    assert!(meta("p").file_type().is_fifo());
    m.unmount().unwrap();
}

fn utimens(path: &Path, atime: (i64, i64), mtime: (i64, i64)) {
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
    // SAFETY: a valid C string and two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, cstr(path).as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat: {}", io::Error::last_os_error());
}

#[test]
fn times_round_trip() {
    require_fuse!();
    let (m, _) = Mounted::memfs("times");
    let p = m.path("f");
    fs::write(&p, b"t").unwrap();
    for (atime, mtime) in [
        ((-2, 800_000_000), (-1, 1)),
        ((-86_400 * 365 * 60, 5), (0, 0)),
        ((1_700_000_000, 123_456_789), (4_102_444_800, 999_999_999)),
    ] {
        utimens(&p, atime, mtime);
        let meta = fs::metadata(&p).unwrap();
        assert_eq!((meta.atime(), meta.atime_nsec()), atime);
        assert_eq!((meta.mtime(), meta.mtime_nsec()), mtime);
    }
    // UTIME_NOW
    utimens(&p, (0, libc::UTIME_NOW), (0, libc::UTIME_OMIT));
    let meta = fs::metadata(&p).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((meta.atime() - now).abs() < 5);
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (4_102_444_800, 999_999_999)
    );
    m.unmount().unwrap();
}

#[test]
fn setattr_mode_owner_size() {
    require_fuse!();
    let (m, _) = Mounted::memfs("setattr");
    let p = m.path("f");
    fs::write(&p, b"0123456789").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o4751)).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().permissions().mode(), 0o104_751);
    std::os::unix::fs::chown(&p, Some(1234), Some(5678)).unwrap();
    let meta = fs::metadata(&p).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(4)
        .unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"0123");
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), 0);
    m.unmount().unwrap();
}

#[test]
fn fallocate_and_punch() {
    require_fuse!();
    let (m, _) = Mounted::memfs("fallocate");
    let p = m.path("f");
    fs::write(&p, vec![7u8; 10_000]).unwrap();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscalls on an open descriptor.
    unsafe {
        assert_eq!(libc::fallocate(f.as_raw_fd(), 0, 0, 20_000), 0);
        assert_eq!(
            libc::fallocate(
                f.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                100,
                200
            ),
            0
        );
    }
    drop(f);
    let back = fs::read(&p).unwrap();
    assert_eq!(back.len(), 20_000);
    assert!(back[..100].iter().all(|&b| b == 7));
    assert!(back[100..300].iter().all(|&b| b == 0));
    assert!(back[300..10_000].iter().all(|&b| b == 7));
    assert!(back[10_000..].iter().all(|&b| b == 0));
    m.unmount().unwrap();
}

#[test]
fn unlinked_file_stays_open() {
    require_fuse!();
    let (m, _) = Mounted::memfs("unlinked");
    let p = m.path("f");
    fs::write(&p, b"still here").unwrap();
    let mut f = File::open(&p).unwrap();
    fs::remove_file(&p).unwrap();
    assert!(!p.exists());
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "still here");
    drop(f);
    m.unmount().unwrap();
}

#[test]
fn parallel_writers() {
    require_fuse!();
    let (m, _) = Mounted::memfs("parallel");
    let mp = m.mp.clone();
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let dir = mp.join(format!("w{i}"));
            std::thread::spawn(move || {
                fs::create_dir(&dir).unwrap();
                for j in 0..50 {
                    let data = pattern(1000 + j * 37, (i * 100 + j) as u64);
                    fs::write(dir.join(format!("{j}")), &data).unwrap();
                    assert_eq!(fs::read(dir.join(format!("{j}"))).unwrap(), data);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(fs::read_dir(&mp).unwrap().count(), 8);
    m.unmount().unwrap();
}

#[test]
fn unmount_destroys_once() {
    require_fuse!();
    let (m, stats) = Mounted::memfs("destroy");
    fs::write(m.path("f"), b"x").unwrap();
    assert_eq!(stats.destroys.load(Ordering::SeqCst), 0);
    m.unmount().unwrap();
    assert_eq!(stats.destroys.load(Ordering::SeqCst), 1);
}

#[test]
fn failed_mount_still_destroys() {
    let fs = MemFs::new();
    let stats = fs.stats();
    let err = FuseSession::mount(
        fs,
        Path::new("/nonexistent/bento-mountpoint"),
        &FuseOptions::default(),
    )
    .err()
    .expect("mount on a missing directory fails");
    assert!(
        err.to_string().contains("/nonexistent/bento-mountpoint"),
        "{err}"
    );
    assert_eq!(stats.destroys.load(Ordering::SeqCst), 1);
}

/// A file system whose lookup of "boom" panics.
struct Panicky {
    destroyed: Arc<std::sync::atomic::AtomicU64>,
}

fn root_attr() -> FileAttr {
    FileAttr {
        ino: ROOT_INO,
        size: 0,
        blocks: 0,
        atime: Timespec::default(),
        mtime: Timespec::default(),
        ctime: Timespec::default(),
        crtime: Timespec::default(),
        kind: FileType::Directory,
        perm: 0o755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        generation: 0,
    }
}

impl FileSystem for Panicky {
    fn destroy(&self) -> Result<(), Errno> {
        self.destroyed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn lookup(&self, _req: &Request, _parent: Ino, name: &[u8]) -> Result<Entry, Errno> {
        if name == b"boom" {
            panic!("deliberate panic in lookup");
        }
        Err(Errno::ENOENT)
    }
    fn getattr(&self, _req: &Request, ino: Ino) -> Result<FileAttr, Errno> {
        if ino == ROOT_INO {
            Ok(root_attr())
        } else {
            Err(Errno::ENOENT)
        }
    }
}

#[test]
fn panic_becomes_eio_and_shuts_down() {
    require_fuse!();
    let destroyed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let m = Mounted::new(
        "panic",
        Panicky {
            destroyed: destroyed.clone(),
        },
    );
    assert_eq!(
        fs::metadata(m.path("other")).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    assert_eq!(
        fs::metadata(m.path("boom")).unwrap_err().raw_os_error(),
        Some(libc::EIO)
    );
    // Shut down: even harmless calls fail now.
    assert_eq!(
        fs::metadata(m.path("again")).unwrap_err().raw_os_error(),
        Some(libc::EIO)
    );
    let err = m.unmount().unwrap_err();
    assert!(err.to_string().contains("destroy"), "{err}");
    assert_eq!(
        destroyed.load(Ordering::SeqCst),
        0,
        "a file system that panicked is not written back"
    );
}
