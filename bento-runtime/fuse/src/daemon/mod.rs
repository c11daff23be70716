//! The mount daemon any Bento file system served over FUSE needs, for a thin command-line
//! program (such as `logfs-fuse`) to drive: lock the image, daemonize (the parent exits with the
//! mount's outcome), mount and serve, unmount on SIGTERM, SIGINT or SIGHUP, `auto_unmount`, and
//! live takeover (offering the mount on a control socket, and taking one over by mount point).
//!
//! [`Daemon::mount`] serves a new mount; [`Daemon::take_over`] replaces the daemon serving a
//! mount point, resuming the file-system type named in the handed-over state through the
//! [`Resumer`]s the program was built with.

mod options;
mod process;
mod state;

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bento_api::fs::{Mount, MountOptions};
use bento_user::FileDevice;

use process::{AutoUnmount, ExitSignals, Report, daemonize, failure, lock_image};
pub use process::{canonical_mountpoint, close_inherited_fds, mount_device, os_error};
use state::AppState;

use crate::{FuseOptions, FuseSession, Takeover, TakeoverOffer, TestFault, bind_control_socket};

/// Who the daemon is.
pub struct Daemon {
    /// The program's name: the prefix of its messages, and how they name other daemons.
    pub name: &'static str,
    /// The directory of the control sockets (one per mount, named by its device number).
    pub run_dir: PathBuf,
    /// A fault to inject into a takeover request (tests only).
    pub test_fault: Option<TestFault>,
}

/// What the command line asks for.
pub struct Settings {
    pub fuse: FuseOptions,
    pub mount: MountOptions,
    /// Serve in this process instead of a daemon.
    pub foreground: bool,
    pub debug: bool,
    pub auto_unmount: bool,
    /// Offer the mount for takeover on its control socket.
    pub takeover: bool,
}

/// Resumes a handed-over mount as one file-system type; see [`resumer`].
pub struct Resumer {
    resume: fn(&Daemon, Takeover, AppState, bool, Report, ExitSignals) -> ExitCode,
}

/// The [`Resumer`] of file-system type `F`.
pub fn resumer<F: Mount<FileDevice> + 'static>() -> Resumer {
    Resumer {
        resume: resume_and_serve::<F>,
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

impl Daemon {
    /// Mount `image` as an `F` on `mountpoint` and serve it: in this process with
    /// `settings.foreground`, otherwise in a daemon, returning once the mount is up or failed.
    pub fn mount<F: Mount<FileDevice> + 'static>(
        &self,
        image: &Path,
        mountpoint: &Path,
        mut settings: Settings,
    ) -> ExitCode {
        let name = self.name;
        let image = match image.canonicalize() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{name}: {}: {}", image.display(), os_error(&e));
                return failure();
            }
        };
        let mountpoint = match canonical_mountpoint(mountpoint) {
            Ok(p) => p,
            Err(msg) => {
                eprintln!("{name}: {msg}");
                return failure();
            }
        };
        let lock = match lock_image(&image, name) {
            Ok(lock) => lock,
            Err(msg) => {
                eprintln!("{name}: {msg}");
                return failure();
            }
        };
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
            return self.serve::<F>(&job, Report::foreground(name));
        }
        daemonize(name, |report| self.serve::<F>(&job, report))
    }

    /// Mount and serve in this process; returns when the file system is unmounted.
    fn serve<F: Mount<FileDevice> + 'static>(&self, job: &Job, report: Report) -> ExitCode {
        let signals = ExitSignals::block();
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
            Ok(Err(e)) => {
                return report.failed(format!("cannot mount {image} as {}: {e}", F::NAME));
            }
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
            bento_api::debug!("{}: {negotiated:?}", self.name);
        }
        if let Some(watcher) = &watcher {
            watcher.arm(&job.mountpoint);
        }
        self.serve_session(session, job, watcher, None, report, signals)
    }

    /// Offer takeover (unless disabled), handle signals, report success and serve until the
    /// mount ends (or a successful takeover ends the process).
    fn serve_session<F: Mount<FileDevice> + 'static>(
        &self,
        mut session: FuseSession<F>,
        job: &Job,
        watcher: Option<AutoUnmount>,
        listener: Option<UnixListener>,
        report: Report,
        signals: ExitSignals,
    ) -> ExitCode {
        let mut control = None;
        if job.settings.takeover {
            match self.offer_takeover(&mut session, job, watcher.as_ref(), listener) {
                Ok(socket) => control = socket,
                Err(e) => bento_api::warn!(
                    "{}: {}: cannot offer takeover (live upgrade): {e}",
                    self.name,
                    job.mountpoint.display()
                ),
            }
        }
        signals.handle(self.name, session.unmounter());
        report.mounted();

        let result = session.run();
        // The mount ended here (a takeover would have ended the process): the socket is ours
        // to remove, unless another mount has bound the same path since.
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
                bento_api::error!("{}: {}: {e}", self.name, job.mountpoint.display());
                failure()
            }
        }
    }

    /// The control socket of the mount whose device number is `dev` ("major:minor").
    fn control_socket(&self, dev: &str) -> PathBuf {
        self.run_dir.join(format!("{dev}.sock"))
    }

    /// Bind the control socket (or take the one handed over) and offer the mount for takeover.
    /// Returns the socket's path and identity.
    fn offer_takeover<F: Mount<FileDevice> + 'static>(
        &self,
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
                bind_control_socket(&self.control_socket(&dev))?
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
        let app_state = AppState {
            fs_name: F::NAME.to_string(),
            fs_version: F::VERSION.to_string(),
            image: job.image.clone(),
            mount: job.settings.mount.clone(),
            auto_unmount: job.settings.auto_unmount,
        };
        session.offer_takeover(TakeoverOffer {
            listener,
            app_state: app_state.encode(),
            app_fds,
        })?;
        Ok(socket_id(&path).map(|id| (path, id)))
    }

    /// Take over the mount on `mountpoint` from the daemon serving it (live upgrade), and serve
    /// it: in this process if `foreground`, otherwise in a daemon. `types` finds the
    /// [`Resumer`] of the file-system type named in the handed-over state.
    pub fn take_over(
        &self,
        mountpoint: &Path,
        foreground: bool,
        debug: bool,
        types: impl Fn(&str) -> Option<Resumer>,
    ) -> ExitCode {
        let name = self.name;
        let mountpoint = match canonical_mountpoint(mountpoint) {
            Ok(p) => p,
            Err(msg) => {
                eprintln!("{name}: {msg}");
                return failure();
            }
        };
        let Some(dev) = mount_device(&mountpoint) else {
            eprintln!("{name}: nothing is mounted on {}", mountpoint.display());
            return failure();
        };
        let socket = self.control_socket(&dev);
        if !socket.exists() {
            eprintln!(
                "{name}: no {name} daemon offers {} for takeover (no control socket {}; \
                 mounted with -o notakeover, or not by {name}?)",
                mountpoint.display(),
                socket.display()
            );
            return failure();
        }
        let go =
            |report: Report| self.take_over_and_serve(&socket, &mountpoint, &types, debug, report);
        if foreground {
            go(Report::foreground(name))
        } else {
            daemonize(name, go)
        }
    }

    fn take_over_and_serve(
        &self,
        socket: &Path,
        mountpoint: &Path,
        types: &dyn Fn(&str) -> Option<Resumer>,
        debug: bool,
        report: Report,
    ) -> ExitCode {
        let signals = ExitSignals::block();
        let takeover = match Takeover::request(socket, self.test_fault) {
            Ok(t) => t,
            Err(e) => return report.failed(format!("takeover of {}: {e}", mountpoint.display())),
        };
        let app = match AppState::decode(&takeover.handover().app_state, self.name) {
            Ok(app) => app,
            Err(why) => {
                let e = takeover.refuse(why);
                return report.failed(format!("takeover of {}: {e}", mountpoint.display()));
            }
        };
        match types(&app.fs_name) {
            Some(r) => (r.resume)(self, takeover, app, debug, report, signals),
            None => {
                let e = takeover.refuse(format!(
                    "the mount is of file-system type {:?}, which this {} does not have",
                    app.fs_name, self.name
                ));
                report.failed(format!("takeover of {}: {e}", mountpoint.display()))
            }
        }
    }
}

fn resume_and_serve<F: Mount<FileDevice> + 'static>(
    daemon: &Daemon,
    takeover: Takeover,
    app: AppState,
    debug: bool,
    report: Report,
    signals: ExitSignals,
) -> ExitCode {
    let mountpoint = takeover.handover().mountpoint.clone();
    let resumed = takeover.resume(|h| {
        let want = 1 + usize::from(app.auto_unmount);
        if h.app_fds.len() != want {
            return Err(format!(
                "{} descriptors for {}, {want} expected",
                h.app_fds.len(),
                daemon.name
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
        "{}: took over {} ({} {})",
        daemon.name,
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
            foreground: report.is_foreground(),
            debug,
            auto_unmount: app.auto_unmount,
            takeover: true,
        },
        lock: File::from(lock),
    };
    daemon.serve_session(session, &job, watcher, Some(listener), report, signals)
}

/// A file's identity (device, inode).
fn socket_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}
