//! [`FuseSession`]: mount, the `FUSE_INIT` handshake, serving with worker threads, unmounting,
//! and resuming a mount taken over from another process.

use core::time::Duration;
use std::boxed::Box;
use std::format;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::string::String;
use std::sync::{Arc, Condvar, Mutex};

use bento_api::fs::FileSystem;
use nix::mount::{MntFlags, umount2};

use crate::adapter::{FuseAdapter, Shared};
use crate::options::{FuseOptions, Negotiated};
use crate::takeover::{self, Handover, Takeover, TakeoverError, TakeoverOffer};

/// How often the file system's `background` work runs.
const BACKGROUND_INTERVAL: Duration = Duration::from_secs(5);

/// A mounted FUSE session that has completed the `FUSE_INIT` handshake and is ready to serve.
pub struct FuseSession<F: FileSystem + 'static> {
    session: fuser::Session<FuseAdapter<F>>,
    shared: Arc<Shared<F>>,
    mountpoint: PathBuf,
    options: FuseOptions,
    /// The `/dev/fuse` connection (a duplicate of the session's descriptor), for a takeover.
    fuse_fd: OwnedFd,
    offer: Option<TakeoverOffer>,
    /// Taken over from another process: fuser does not know the mount, unmount by path.
    taken_over: bool,
}

impl<F: FileSystem + 'static> FuseSession<F> {
    /// Mount `fs` on `mountpoint` (always with `default_permissions`) and answer the kernel's
    /// `FUSE_INIT`. Requests wait in the kernel until [`FuseSession::run`]. On failure `fs` is
    /// destroyed (it was mounted) and dropped.
    pub fn mount(fs: F, mountpoint: &Path, opts: &FuseOptions) -> io::Result<FuseSession<F>> {
        let adapter = FuseAdapter::new(fs, opts);
        let shared = adapter.shared.clone();
        let mountpoint = mountpoint.canonicalize().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("mount point {}: {e}", mountpoint.display()),
            )
        })?;
        if !mountpoint.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("mount point {} is not a directory", mountpoint.display()),
            ));
        }
        let session = fuser::Session::new(adapter, &mountpoint, &opts.config())?;
        let fuse_fd = session.as_fd().try_clone_to_owned()?;
        Ok(FuseSession {
            session,
            shared,
            mountpoint,
            options: opts.clone(),
            fuse_fd,
            offer: None,
            taken_over: false,
        })
    }

    /// Let another process take this mount over while it is served ([`takeover`]); needs
    /// [`FuseOptions::takeover`]. Requests on `offer.listener` are answered from
    /// [`FuseSession::run`] on; after a successful handover the process exits with status 0.
    pub fn offer_takeover(&mut self, offer: TakeoverOffer) -> io::Result<()> {
        if !self.options.takeover {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the session was mounted without the takeover option",
            ));
        }
        self.offer = Some(offer);
        Ok(())
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// What `FUSE_INIT` settled.
    pub fn negotiated(&self) -> Option<Negotiated> {
        *self
            .shared
            .negotiated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A handle that unmounts from another thread (a signal handler thread, say).
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter {
            inner: (!self.taken_over).then(|| self.session.unmount_callable()),
            mountpoint: self.mountpoint.clone(),
        }
    }

    /// Serve until the file system is unmounted (or the connection aborted), then destroy the
    /// file system. Returns after `destroy` has finished; a failed `destroy` is an error.
    /// With a takeover offer, a successful handover ends the process instead (status 0).
    pub fn run(self) -> io::Result<()> {
        let FuseSession {
            session,
            shared,
            mountpoint,
            options,
            fuse_fd,
            offer,
            taken_over: _,
        } = self;
        if let Some(offer) = offer {
            let control = takeover::Control {
                shared: shared.clone(),
                offer,
                fuse_fd,
                mountpoint,
                workers: options.effective_threads(),
                options,
            };
            std::thread::Builder::new()
                .name("bento-takeover".into())
                .spawn(move || control.run())?;
        }
        // The file system's periodic work (checkpointing old changes) runs beside the workers.
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let ticker = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("bento-background".into())
                .spawn(move || {
                    let (lock, cv) = &*stop;
                    let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while !*stopped {
                        stopped = cv
                            .wait_timeout(stopped, BACKGROUND_INTERVAL)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                        if !*stopped {
                            drop(stopped);
                            shared.background();
                            stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                        }
                    }
                })?
        };
        let served = session.run();
        *stop.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        stop.1.notify_all();
        let _ = ticker.join();
        // fuser has destroyed by now (or its adapter's drop has); this waits for or repeats
        // nothing, but guarantees it whichever way the session ended.
        let destroyed = shared.destroy_once();
        served?;
        destroyed.map_err(|e| io::Error::other(format!("destroying the file system: {e}")))
    }
}

impl Takeover {
    /// Resume serving the mount from what the old daemon handed over (see [`takeover`]).
    ///
    /// `resume` turns the [`Handover`] into the file system (with `Mount::resume`) and whatever
    /// else the caller needs (taking its descriptors); an `Err` refuses the state, with the
    /// reason, and the old daemon serves on. Dropping the file system must not write anything
    /// (only `destroy` may): it is dropped unused if the old daemon does not confirm. On
    /// success the returned session serves the mount from [`FuseSession::run`], and the
    /// control socket is returned, to offer takeover in turn.
    pub fn resume<F: FileSystem + 'static, T>(
        self,
        resume: impl FnOnce(&mut Handover) -> core::result::Result<(F, T), String>,
    ) -> core::result::Result<(FuseSession<F>, T, UnixListener), TakeoverError> {
        let Takeover {
            mut handover,
            conversation,
        } = self;
        let resumed = catch_unwind(AssertUnwindSafe(|| resume(&mut handover)))
            .unwrap_or_else(|_| Err("the file system panicked resuming".into()));
        let (fs, value) = match resumed {
            Ok(r) => r,
            Err(why) => {
                conversation.refused(&why);
                return Err(TakeoverError::Refused(why));
            }
        };
        let own_fd = match handover.fuse_fd.try_clone() {
            Ok(fd) => fd,
            Err(e) => {
                let why = format!("cannot duplicate the /dev/fuse descriptor: {e}");
                conversation.refused(&why);
                return Err(TakeoverError::Refused(why));
            }
        };
        conversation.resumed()?;
        let negotiated = handover.negotiated;
        let mut options = handover.options.clone();
        options.takeover = true;
        let mountpoint = handover.mountpoint.clone();
        let Handover {
            fuse_fd, listener, ..
        } = handover;
        let mut adapter = FuseAdapter::new(fs, &options);
        adapter.writeback = negotiated.writeback_cache();
        adapter.max_write = negotiated.max_write;
        *adapter
            .shared
            .negotiated
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(negotiated);
        let shared = adapter.shared.clone();
        let session = fuser::Session::from_initialized_fd(
            adapter,
            fuse_fd,
            options.acl,
            options.config(),
            negotiated.abi,
        );
        Ok((
            FuseSession {
                session,
                shared,
                mountpoint,
                options,
                fuse_fd: own_fd,
                offer: None,
                taken_over: true,
            },
            value,
            listener,
        ))
    }
}

/// Mount `fs` on `mountpoint` and serve it until it is unmounted; see [`FuseSession`].
pub fn serve<F: FileSystem + 'static>(
    fs: F,
    mountpoint: &Path,
    opts: &FuseOptions,
) -> io::Result<()> {
    FuseSession::mount(fs, mountpoint, opts)?.run()
}

/// Unmounts a [`FuseSession`]'s mount from any thread.
pub struct Unmounter {
    /// fuser's handle; `None` for a mount taken over from another process (unmounted by path).
    inner: Option<fuser::SessionUnmounter>,
    mountpoint: PathBuf,
}

/// How [`Unmounter::unmount`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmounted {
    /// Unmounted (or it already was): the session is ending.
    Done,
    /// The mount was busy and has been detached (`MNT_DETACH`): it is gone from the namespace,
    /// and the session ends when the last open file or working directory in it goes away.
    Detached,
}

impl Unmounter {
    /// Unmount; if the mount is busy, detach it lazily.
    pub fn unmount(&mut self) -> io::Result<Unmounted> {
        let result = match &mut self.inner {
            Some(inner) => inner.unmount(),
            None => umount2(&self.mountpoint, MntFlags::empty()).map_err(io::Error::from),
        };
        match result {
            Ok(()) => Ok(Unmounted::Done),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                umount2(&self.mountpoint, MntFlags::MNT_DETACH)?;
                Ok(Unmounted::Detached)
            }
            Err(e) => Err(e),
        }
    }
}

/// Send fuser's own log messages (the `log` crate) to standard error: warnings and errors, or
/// with `debug` everything, including a line per request as libfuse's `-d` gives. Call once.
pub fn log_to_stderr(debug: bool) {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::max_level()
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                std::eprintln!(
                    "fuser {}: {}",
                    record.level().as_str().to_ascii_lowercase(),
                    record.args()
                );
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Warn
        });
    }
}

#[allow(dead_code)]
fn _assert_send<F: FileSystem + 'static>() {
    fn is_send<T: Send>() {}
    is_send::<Unmounter>();
    is_send::<Box<FuseAdapter<F>>>();
}
