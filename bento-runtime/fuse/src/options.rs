//! How a file system is mounted and served, and what `FUSE_INIT` agreed.

use core::time::Duration;
use std::format;
use std::string::String;
use std::vec::Vec;

use fuser::{Config, InitFlags};
use fuser::{MountOption, SessionACL};

/// How a file system is mounted and served.
#[derive(Clone, Debug)]
pub struct FuseOptions {
    /// The mount's source as `/proc/mounts` shows it (conventionally the image or device path).
    pub fsname: Option<String>,
    /// The file-system type shown as `fuse.SUBTYPE` (conventionally [`bento_api::fs::Mount::NAME`]).
    pub subtype: Option<String>,
    /// Mount read-only (`MS_RDONLY`); the kernel then refuses every change.
    pub read_only: bool,
    /// Who may use the mount: the mounting user (default), also root (`allow_root`), or
    /// everyone (`allow_other`). Permission bits are always checked by the kernel
    /// (`default_permissions`).
    pub acl: SessionACL,
    /// Worker threads; 0 picks the number of CPUs (at least 2).
    pub threads: usize,
    /// Give each worker its own `/dev/fuse` descriptor (`FUSE_DEV_IOC_CLONE`).
    pub clone_fd: bool,
    /// How long the kernel may cache attributes and directory entries.
    pub ttl: Duration,
    /// The largest write request, in bytes (the kernel may lower it).
    pub max_write: u32,
    /// Let the kernel cache writes and keep file sizes and times itself (`FUSE_WRITEBACK_CACHE`).
    /// Safe because nothing else writes to the file system behind the kernel's back.
    pub writeback_cache: bool,
    /// Keep a file's page cache across opens (`FOPEN_KEEP_CACHE`), as for a kernel file system.
    pub keep_cache: bool,
    /// Further kernel mount flags (`noexec`, `noatime`, `dev`, `suid`, `sync`, ...).
    pub mount_options: Vec<MountOption>,
    /// Let workers stop at a request boundary for a live takeover (see [`takeover`]): one
    /// atomic load after each request. Required by [`FuseSession::offer_takeover`].
    pub takeover: bool,
}

impl Default for FuseOptions {
    fn default() -> Self {
        FuseOptions {
            fsname: None,
            subtype: None,
            read_only: false,
            acl: SessionACL::Owner,
            threads: 0,
            clone_fd: true,
            ttl: Duration::from_secs(1),
            max_write: 1 << 20,
            writeback_cache: true,
            keep_cache: true,
            mount_options: Vec::new(),
            takeover: false,
        }
    }
}

impl FuseOptions {
    /// The worker count `threads` stands for.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
        }
    }

    pub(crate) fn config(&self) -> Config {
        let mut options = std::vec![MountOption::DefaultPermissions];
        options.push(if self.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        });
        if let Some(name) = &self.fsname {
            options.push(MountOption::FSName(name.clone()));
        }
        if let Some(subtype) = &self.subtype {
            // fuser's own Subtype option only reaches fusermount; as a kernel option the type
            // shows as `fuse.SUBTYPE` with the direct mount(2) too.
            options.push(MountOption::CUSTOM(format!("subtype={subtype}")));
        }
        for option in &self.mount_options {
            if !options.contains(option) {
                options.push(option.clone());
            }
        }
        let mut config = Config::default();
        config.mount_options = options;
        config.acl = self.acl;
        config.n_threads = Some(self.effective_threads());
        config.clone_fd = self.clone_fd;
        config
    }
}

/// What the kernel and the adapter agreed on in `FUSE_INIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The kernel's FUSE ABI version (major, minor).
    pub abi: (u32, u32),
    /// Capabilities the kernel offered.
    pub offered: InitFlags,
    /// Capabilities in effect (requested and offered).
    pub enabled: InitFlags,
    /// The largest write request asked for; the kernel caps it at its `max_pages` limit.
    pub max_write: u32,
}

impl Negotiated {
    pub fn writeback_cache(&self) -> bool {
        self.enabled.contains(InitFlags::FUSE_WRITEBACK_CACHE)
    }
}
