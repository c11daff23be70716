//! Live takeover of a FUSE mount by a new process: the FUSE half of `docs/upgrade.md`.
//!
//! A serving process (the *old daemon*) that offered takeover
//! ([`crate::FuseSession::offer_takeover`]) listens on a Unix socket. A new process
//! ([`Takeover::request`], then [`Takeover::resume`]) connects and asks for the mount. The old
//! daemon then
//!
//! 1. **quiesces**: it raises the gate. Every worker, once it has *answered* the request it is
//!    serving, parks (the adapter checks the gate after each reply; a `forget`, which has no
//!    reply and comes in batches, does not park), so no request it read is left unanswered.
//!    Workers blocked in `read(2)` on `/dev/fuse` are woken by `statvfs(2)` calls the old
//!    daemon makes on its own mount point: each is a request some worker answers and then parks.
//!    A waker issued when every worker has already parked simply waits in the kernel's queue for
//!    whoever serves next (and is withdrawn by the kernel when the old daemon exits). Requests
//!    the kernel gets meanwhile wait in its queue too.
//! 2. **exports** the file system's state ([`FileSystem::export_state`]) while holding the lock
//!    that keeps the periodic background work and `destroy` out;
//! 3. **sends** a versioned, checksummed envelope ([`bento_api::upgrade`], name `bento-fuse`)
//!    with the mount point, what `FUSE_INIT` negotiated, the adapter's options, the application's own state
//!    and the file system's state, together with the `/dev/fuse` descriptor, the control socket
//!    and the application's descriptors (`SCM_RIGHTS`);
//! 4. waits for the verdict. *Resumed*: it answers *go* and exits with status 0 without
//!    destroying, unmounting or removing anything (its workers are parked in the middle of
//!    fuser's loop; there is nothing to unwind). *Refused* (with the reason), a closed connection
//!    or no verdict in time: it lowers the gate and serves on, as if nothing had happened.
//!
//! The new process checks the envelope (magic, checksum, version, every non-optional field
//! known), resumes the file system from its state (`Mount::resume`), says *resumed*, and starts
//! serving only once it has the old daemon's *go*: the old daemon decides, so the two never
//! serve at once and a mount is never left without a server except by a crash.
//!
//! The adapter keeps no tables of its own: node ids are the file system's inode numbers,
//! generations come from its attributes, file handles are its own, and lookup and open counts are
//! kept (and exported) by the file system. What the adapter carries is what the kernel and it
//! agreed on (ABI version, capabilities, `max_write`, the writeback cache) and its options.
//!
//! The control socket is the application's to place; access is limited to the daemon's own user
//! and root (the peer's credentials are checked).

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;
use std::format;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;
use std::vec::Vec;

use nix::sys::socket::sockopt;

use crate::adapter::Shared;
use crate::options::{FuseOptions, Negotiated};
use bento_api::fs::FileSystem;
use bento_api::upgrade::OPTIONAL;

/// The envelope's file-system name and payload version.
const ENVELOPE_NAME: &str = "bento-fuse";
const PAYLOAD_VERSION: u32 = 1;

const T_MOUNTPOINT: u16 = 1;
const T_KERNEL: u16 = 2;
const T_OPTIONS: u16 = 3;
const T_APP_FDS: u16 = 4;
const T_APP: u16 = 5;
const T_FS_STATE: u16 = 6;
const T_SENDER: u16 = 7 | OPTIONAL;
/// Never written except on a client's request for testing ([`TestFault::UnknownField`]).
const T_UNKNOWN_REQUIRED: u16 = 0x7abc;

/// Frame kinds on the control socket.
const F_REQUEST: u8 = 1;
const F_STATE: u8 = 2;
const F_ERROR: u8 = 3;
const F_RESUMED: u8 = 4;
const F_REFUSED: u8 = 5;
const F_GO: u8 = 6;

const REQUEST_MAGIC: &[u8] = b"BENTO-TAKEOVER/1";
/// The most descriptors a handover carries (`/dev/fuse`, the socket, the application's).
const MAX_FDS: usize = 16;
const MAX_FRAME: usize = 1 << 30;

/// How long the old daemon waits for its workers to park before giving up (and serving on).
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long either side waits for the other's next message.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);

/// Where workers stop for a takeover; see the module documentation.
pub(crate) struct Gate {
    /// Raised while a takeover is in progress; the only thing a request checks.
    closed: AtomicBool,
    parked: Mutex<usize>,
    cv: Condvar,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate {
            closed: AtomicBool::new(false),
            parked: Mutex::new(0),
            cv: Condvar::new(),
        }
    }

    /// Called by a worker after it answered a request: parks it while the gate is raised.
    #[inline]
    pub(crate) fn after_request(&self) {
        if self.closed.load(Ordering::Acquire) {
            self.park();
        }
    }

    #[cold]
    fn park(&self) {
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        if !self.closed.load(Ordering::Acquire) {
            return;
        }
        *parked += 1;
        self.cv.notify_all();
        while self.closed.load(Ordering::Acquire) {
            parked = self.cv.wait(parked).unwrap_or_else(|e| e.into_inner());
        }
        *parked -= 1;
        self.cv.notify_all();
    }

    fn raise(&self) {
        let _parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
    }

    /// Lower the gate; parked workers go back to serving.
    fn lower(&self) {
        let _parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(false, Ordering::Release);
        self.cv.notify_all();
    }

    /// Wait up to `timeout` for the number of parked workers to change from `seen`.
    fn wait_parked(&self, seen: usize, timeout: Duration) -> usize {
        let parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        if *parked != seen {
            return *parked;
        }
        *self
            .cv
            .wait_timeout(parked, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }
}

/// A fault the old daemon injects into the state on a client's request, so that tests can see
/// a receiver refuse a state (`--takeover` with `LOGFS_FUSE_TEST_FAULT`). Never used otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestFault {
    /// A non-optional field no version knows.
    UnknownField,
    /// One byte of the envelope flipped (the checksum no longer matches).
    Corrupt,
}

impl TestFault {
    fn code(self) -> u8 {
        match self {
            TestFault::UnknownField => 1,
            TestFault::Corrupt => 2,
        }
    }

    fn from_code(code: u8) -> Option<TestFault> {
        match code {
            1 => Some(TestFault::UnknownField),
            2 => Some(TestFault::Corrupt),
            _ => None,
        }
    }
}

/// What a serving process offers to the next one ([`crate::FuseSession::offer_takeover`]).
pub struct TakeoverOffer {
    /// The control socket, bound and listening (see [`bind_control_socket`]).
    pub listener: UnixListener,
    /// The application's own state, handed over as it is ([`Handover::app_state`]).
    pub app_state: Vec<u8>,
    /// Descriptors the next process needs (an image lock, say), in the order it expects them.
    pub app_fds: Vec<OwnedFd>,
}

/// Bind a control socket at `path` (replacing a stale one), readable only by its owner.
pub fn bind_control_socket(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// What a new process receives from the old daemon.
pub struct Handover {
    /// The mount point, as the old daemon mounted it.
    pub mountpoint: PathBuf,
    /// What `FUSE_INIT` settled (it stays in force).
    pub negotiated: Negotiated,
    /// The adapter's options, as the old daemon served with them.
    pub options: FuseOptions,
    /// The application's own state.
    pub app_state: Vec<u8>,
    /// The application's descriptors, in the order the old daemon offered them; take them.
    pub app_fds: Vec<OwnedFd>,
    /// The file system's exported state, for `Mount::resume`.
    pub fs_state: Vec<u8>,
    /// The program that sent it (informative).
    pub sender: String,
    pub(super) fuse_fd: OwnedFd,
    pub(super) listener: UnixListener,
}

/// Why a takeover did not happen.
#[derive(Debug)]
pub enum TakeoverError {
    /// No daemon to talk to, or the conversation broke: the mount is as it was.
    Connect(String),
    /// The running daemon could not hand over (it serves on).
    Declined(String),
    /// This process refused the state (the old daemon serves on).
    Refused(String),
    /// The old daemon did not confirm; this process must not serve (the old one serves on).
    NotConfirmed(String),
}

impl core::fmt::Display for TakeoverError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TakeoverError::Connect(m) => write!(f, "{m}"),
            TakeoverError::Declined(m) => {
                write!(
                    f,
                    "the running daemon cannot hand over: {m}; it keeps serving"
                )
            }
            TakeoverError::Refused(m) => {
                write!(
                    f,
                    "refused the running daemon's state: {m}; it keeps serving"
                )
            }
            TakeoverError::NotConfirmed(m) => write!(
                f,
                "the running daemon did not confirm the handover ({m}); it keeps serving"
            ),
        }
    }
}

mod wire;
use wire::*;

// ---------------------------------------------------------------------------------------------
// The old daemon's side

/// What the control thread needs of the serving session.
pub(super) struct Control<F: FileSystem> {
    pub(super) shared: Arc<Shared<F>>,
    pub(super) offer: TakeoverOffer,
    pub(super) fuse_fd: OwnedFd,
    pub(super) mountpoint: PathBuf,
    pub(super) options: FuseOptions,
    pub(super) workers: usize,
}

impl<F: FileSystem + 'static> Control<F> {
    /// Serve takeover requests until the process ends (or the socket fails).
    pub(crate) fn run(self) {
        loop {
            match self.offer.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = self.handle(stream) {
                        bento_api::warn!("fuse takeover: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    bento_api::error!("fuse takeover: the control socket failed: {e}");
                    return;
                }
            }
        }
    }

    fn handle(&self, stream: UnixStream) -> io::Result<()> {
        let creds = nix::sys::socket::getsockopt(&stream.as_fd(), sockopt::PeerCredentials)
            .map_err(io_err)?;
        let me = nix::unistd::geteuid().as_raw();
        if creds.uid() != 0 && creds.uid() != me {
            send_frame(&stream, F_ERROR, b"permission denied")?;
            return Err(io::Error::other(format!(
                "refused a takeover request from uid {}",
                creds.uid()
            )));
        }
        stream.set_read_timeout(Some(PEER_TIMEOUT))?;
        stream.set_write_timeout(Some(PEER_TIMEOUT))?;
        let (kind, request, _) = recv_frame(&stream)?;
        if kind != F_REQUEST || !request.starts_with(REQUEST_MAGIC) {
            send_frame(&stream, F_ERROR, b"not a takeover request")?;
            return Err(io::Error::other("a malformed takeover request"));
        }
        let fault = request
            .get(REQUEST_MAGIC.len())
            .and_then(|&c| TestFault::from_code(c));
        bento_api::info!("fuse takeover: requested; quiescing");
        let started = Instant::now();
        if let Err(why) = self.quiesce() {
            self.shared.gate.lower();
            send_frame(&stream, F_ERROR, why.as_bytes())?;
            return Err(io::Error::other(why));
        }
        let quiesced = started.elapsed();
        // Held until the verdict: no background work, no destroy meanwhile.
        let mut destroyed = self
            .shared
            .destroyed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let outcome = self.hand_over(&stream, destroyed.is_some(), fault);
        match outcome {
            Ok(exported) => {
                // The next daemon serves now. Never destroy (it would write to the volume the
                // next daemon owns), never unmount, leave the socket in place.
                *destroyed = Some(Ok(()));
                bento_api::info!(
                    "fuse takeover: handed over: quiesced in {quiesced:?}, exported in {exported:?}, \
                     {:?} in all; exiting",
                    started.elapsed()
                );
                std::process::exit(0);
            }
            Err(why) => {
                drop(destroyed);
                self.shared.gate.lower();
                bento_api::warn!("fuse takeover: not handed over: {why}; serving on");
                Ok(())
            }
        }
    }

    /// Park every worker at a request boundary; see the module documentation.
    fn quiesce(&self) -> Result<(), String> {
        let gate = &self.shared.gate;
        gate.raise();
        let outstanding = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + QUIESCE_TIMEOUT;
        let mut parked = gate.wait_parked(usize::MAX, Duration::ZERO);
        while parked < self.workers {
            if Instant::now() > deadline {
                return Err(format!(
                    "only {parked} of {} workers stopped within {QUIESCE_TIMEOUT:?}",
                    self.workers
                ));
            }
            if outstanding.load(Ordering::Acquire) < self.workers - parked {
                outstanding.fetch_add(1, Ordering::AcqRel);
                let (path, count) = (self.mountpoint.clone(), outstanding.clone());
                let spawned = std::thread::Builder::new()
                    .name("bento-waker".into())
                    .spawn(move || {
                        // A request some worker answers (then parks), or that waits in the
                        // kernel for the next server.
                        let _ = nix::sys::statvfs::statvfs(&path);
                        count.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    outstanding.fetch_sub(1, Ordering::AcqRel);
                }
            }
            parked = gate.wait_parked(parked, Duration::from_millis(1));
        }
        Ok(())
    }

    fn hand_over(
        &self,
        stream: &UnixStream,
        destroyed: bool,
        fault: Option<TestFault>,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        let fail = |why: String| {
            let _ = send_frame(stream, F_ERROR, why.as_bytes());
            Err(why)
        };
        if destroyed || self.shared.failed.load(Ordering::Acquire) {
            return fail("the file system is shut down".into());
        }
        let negotiated = *self
            .shared
            .negotiated
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(negotiated) = negotiated else {
            return fail("FUSE_INIT never completed".into());
        };
        let fs_state = match catch_unwind(AssertUnwindSafe(|| self.shared.fs.export_state())) {
            Ok(Ok(state)) => state,
            Ok(Err(e)) => return fail(format!("exporting the file system's state failed: {e}")),
            Err(_) => {
                self.shared.failed.store(true, Ordering::Release);
                return fail("the file system panicked exporting its state".into());
            }
        };
        let exported = started.elapsed();
        let state = encode(
            &Outgoing {
                mountpoint: &self.mountpoint,
                negotiated: &negotiated,
                options: &self.options,
                app_state: &self.offer.app_state,
                app_fds: self.offer.app_fds.len(),
                fs_state: &fs_state,
            },
            fault,
        );
        let mut fds = std::vec![self.fuse_fd.as_raw_fd(), self.offer.listener.as_raw_fd()];
        fds.extend(self.offer.app_fds.iter().map(|f| f.as_raw_fd()));
        send_frame_fds(stream, F_STATE, &state, &fds)
            .map_err(|e| format!("sending the state: {e}"))?;
        match recv_frame(stream) {
            Ok((F_RESUMED, _, _)) => {}
            Ok((F_REFUSED, why, _)) => {
                return Err(format!(
                    "the new daemon refused the state: {}",
                    String::from_utf8_lossy(&why)
                ));
            }
            Ok((kind, _, _)) => return Err(format!("unexpected answer {kind}")),
            Err(e) => return Err(format!("no answer from the new daemon: {e}")),
        }
        // Once `go` is out, the next daemon serves: there is no way back.
        send_frame(stream, F_GO, b"").map_err(|e| format!("cannot confirm: {e}"))?;
        Ok(exported)
    }
}

// ---------------------------------------------------------------------------------------------
// The new daemon's side

/// A takeover in progress, on the new daemon's side: what the old daemon handed over, and the
/// conversation with it. Resume with [`Takeover::resume`], or [`Takeover::refuse`].
pub struct Takeover {
    pub(super) handover: Handover,
    pub(super) conversation: Conversation,
}

impl Takeover {
    /// Ask the daemon listening on `socket` for its mount: it quiesces and hands over its state.
    /// `fault` asks it to damage the state, for tests only.
    pub fn request(socket: &Path, fault: Option<TestFault>) -> Result<Takeover, TakeoverError> {
        let (handover, conversation) = request(socket, fault)?;
        Ok(Takeover {
            handover,
            conversation,
        })
    }

    /// What the old daemon handed over.
    pub fn handover(&self) -> &Handover {
        &self.handover
    }

    /// Refuse the state, telling the old daemon why (it serves on).
    pub fn refuse(self, why: String) -> TakeoverError {
        self.conversation.refused(&why);
        TakeoverError::Refused(why)
    }
}

fn request(
    socket: &Path,
    fault: Option<TestFault>,
) -> Result<(Handover, Conversation), TakeoverError> {
    let connect = |e: io::Error| {
        TakeoverError::Connect(format!(
            "cannot reach the daemon's control socket {}: {e}",
            socket.display()
        ))
    };
    let stream = UnixStream::connect(socket).map_err(connect)?;
    stream
        .set_read_timeout(Some(PEER_TIMEOUT))
        .map_err(connect)?;
    stream
        .set_write_timeout(Some(PEER_TIMEOUT))
        .map_err(connect)?;
    let mut req = REQUEST_MAGIC.to_vec();
    if let Some(f) = fault {
        req.push(f.code());
    }
    send_frame(&stream, F_REQUEST, &req).map_err(connect)?;
    let lost = |e: io::Error| TakeoverError::Connect(format!("the daemon did not answer: {e}"));
    let (kind, payload, fds) = recv_frame(&stream).map_err(lost)?;
    let conversation = Conversation { stream };
    match kind {
        F_STATE => {}
        F_ERROR => {
            return Err(TakeoverError::Declined(
                String::from_utf8_lossy(&payload).into_owned(),
            ));
        }
        k => {
            return Err(TakeoverError::Connect(format!(
                "unexpected answer {k} from the daemon"
            )));
        }
    }
    match decode(&payload, fds) {
        Ok(handover) => Ok((handover, conversation)),
        Err(why) => {
            conversation.refused(&why);
            Err(TakeoverError::Refused(why))
        }
    }
}

/// The new daemon's end of a takeover in progress.
pub(crate) struct Conversation {
    stream: UnixStream,
}

impl Conversation {
    /// Tell the old daemon why the state is refused.
    pub(crate) fn refused(&self, why: &str) {
        let _ = send_frame(&self.stream, F_REFUSED, why.as_bytes());
    }

    /// Tell the old daemon the file system resumed, and wait for its go.
    pub(crate) fn resumed(self) -> Result<(), TakeoverError> {
        let lost = |e: io::Error| TakeoverError::NotConfirmed(e.to_string());
        send_frame(&self.stream, F_RESUMED, b"").map_err(lost)?;
        match recv_frame(&self.stream) {
            Ok((F_GO, _, _)) => Ok(()),
            Ok((kind, _, _)) => Err(TakeoverError::NotConfirmed(format!(
                "unexpected answer {kind}"
            ))),
            Err(e) => Err(lost(e)),
        }
    }
}

#[cfg(test)]
mod tests;
