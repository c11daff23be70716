//! The takeover protocol on the wire: frames over the control socket (with descriptors), and
//! the handover message's encoding.

use core::time::Duration;
use std::format;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use fuser::InitFlags;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr, recvmsg, sendmsg};

use crate::options::{FuseOptions, Negotiated};
use bento_api::upgrade::{self, OPTIONAL, Put, Reader, Writer};
use fuser::SessionACL;

use super::*;

// ---------------------------------------------------------------------------------------------
// Frames

pub(super) fn io_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

pub(super) fn frame_header(kind: u8, len: usize) -> io::Result<[u8; 5]> {
    let len = u32::try_from(len).map_err(|_| io::Error::other("frame too large"))?;
    let l = len.to_le_bytes();
    Ok([kind, l[0], l[1], l[2], l[3]])
}

pub(super) fn send_frame(stream: &UnixStream, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut w = stream;
    w.write_all(&frame_header(kind, payload.len())?)?;
    w.write_all(payload)?;
    w.flush()
}

/// Send a frame with descriptors attached to its first byte.
pub(super) fn send_frame_fds(
    stream: &UnixStream,
    kind: u8,
    payload: &[u8],
    fds: &[RawFd],
) -> io::Result<()> {
    let header = frame_header(kind, payload.len())?;
    let iov = [IoSlice::new(&header), IoSlice::new(payload)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let sent = loop {
        match sendmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(io_err(e)),
        }
    };
    let total = header.len() + payload.len();
    let mut w = stream;
    if sent < header.len() {
        w.write_all(&header[sent..])?;
        w.write_all(payload)?;
    } else if sent < total {
        w.write_all(&payload[sent - header.len()..])?;
    }
    w.flush()
}

/// Receive a frame and any descriptors sent with it.
pub(super) fn recv_frame(stream: &UnixStream) -> io::Result<(u8, Vec<u8>, Vec<OwnedFd>)> {
    let mut header = [0u8; 5];
    let mut fds = Vec::new();
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let got = loop {
        let mut iov = [IoSliceMut::new(&mut header)];
        match recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
                for cmsg in msg.cmsgs().map_err(io_err)? {
                    if let ControlMessageOwned::ScmRights(raw) = cmsg {
                        for fd in raw {
                            // SAFETY: the kernel just installed `fd` in this process for this
                            // message (SCM_RIGHTS); nothing else owns it.
                            fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                        }
                    }
                }
                if truncated {
                    return Err(io::Error::other("too many descriptors in a handover"));
                }
                break msg.bytes;
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(io_err(e)),
        }
    };
    if got == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let mut r = stream;
    r.read_exact(&mut header[got..])?;
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other("frame too large"));
    }
    let mut payload = std::vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok((header[0], payload, fds))
}

// ---------------------------------------------------------------------------------------------
// The state

pub(super) fn acl_code(acl: SessionACL) -> u8 {
    match acl {
        SessionACL::Owner => 0,
        SessionACL::RootAndOwner => 1,
        SessionACL::All => 2,
    }
}

pub(super) fn acl_from(code: u8) -> Option<SessionACL> {
    match code {
        0 => Some(SessionACL::Owner),
        1 => Some(SessionACL::RootAndOwner),
        2 => Some(SessionACL::All),
        _ => None,
    }
}

pub(super) struct Outgoing<'a> {
    pub(super) mountpoint: &'a Path,
    pub(super) negotiated: &'a Negotiated,
    pub(super) options: &'a FuseOptions,
    pub(super) app_state: &'a [u8],
    pub(super) app_fds: usize,
    pub(super) fs_state: &'a [u8],
}

pub(super) fn encode(out: &Outgoing<'_>, fault: Option<TestFault>) -> Vec<u8> {
    let mut w = Writer::new();
    w.field(T_MOUNTPOINT, |v| {
        v.extend_from_slice(out.mountpoint.as_os_str().as_bytes())
    });
    w.field(T_KERNEL, |v| {
        let n = out.negotiated;
        v.put_u32(n.abi.0);
        v.put_u32(n.abi.1);
        v.put_u64(n.offered.bits());
        v.put_u64(n.enabled.bits());
        v.put_u32(n.max_write);
    });
    w.field(T_OPTIONS, |v| {
        let o = out.options;
        v.put_u64(o.ttl.as_secs());
        v.put_u32(o.ttl.subsec_nanos());
        v.put_u8(u8::from(o.read_only));
        v.put_u8(acl_code(o.acl));
        v.put_u32(u32::try_from(o.threads).unwrap_or(0));
        v.put_u8(u8::from(o.clone_fd));
        v.put_u8(u8::from(o.writeback_cache));
        v.put_u8(u8::from(o.keep_cache));
        v.put_u32(o.max_write);
    });
    w.field(T_APP_FDS, |v| {
        v.put_u32(u32::try_from(out.app_fds).unwrap_or(u32::MAX))
    });
    w.field(T_APP, |v| v.extend_from_slice(out.app_state));
    w.field(T_FS_STATE, |v| v.extend_from_slice(out.fs_state));
    w.field(T_SENDER, |v| {
        v.extend_from_slice(sender_name().as_bytes());
    });
    if fault == Some(TestFault::UnknownField) {
        w.field(T_UNKNOWN_REQUIRED, |v| v.put_u32(1));
    }
    let mut sealed = upgrade::seal(
        ENVELOPE_NAME,
        env!("CARGO_PKG_VERSION"),
        PAYLOAD_VERSION,
        &w.finish(),
    );
    if fault == Some(TestFault::Corrupt)
        && let Some(b) = sealed.get_mut(40)
    {
        *b ^= 0x5a;
    }
    sealed
}

/// The running program, for the record.
pub(super) fn sender_name() -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    format!("{exe} pid {}", std::process::id())
}

pub(super) fn bad(why: &str) -> String {
    why.to_string()
}

/// Parse a state envelope; `fds` are the descriptors that came with it.
pub(super) fn decode(state: &[u8], mut fds: Vec<OwnedFd>) -> Result<Handover, String> {
    let (info, payload) = upgrade::open(state, ENVELOPE_NAME).map_err(|_| {
        // upgrade::open logged the precise reason; say the gist.
        if state.len() < 28 || !state.starts_with(b"BENTOST1") {
            bad("not a takeover state")
        } else {
            bad("damaged or of another kind (bad checksum, envelope version or name)")
        }
    })?;
    if info.payload_version == 0 {
        return Err(bad("payload version 0"));
    }
    let mut fields = Reader::new(payload);
    let mut mountpoint = None;
    let mut negotiated = None;
    let mut options = None;
    let mut app_fds = None;
    let mut app_state = None;
    let mut fs_state = None;
    let mut sender = String::new();
    let short = |_| bad("a field is cut short");
    while let Some((tag, mut v)) = fields.field().map_err(short)? {
        match tag {
            T_MOUNTPOINT => {
                let bytes = v.take(payload_len(&v)).map_err(short)?;
                mountpoint = Some(PathBuf::from(std::ffi::OsString::from_vec(bytes.to_vec())));
            }
            T_KERNEL => {
                let abi = (v.u32().map_err(short)?, v.u32().map_err(short)?);
                let offered = InitFlags::from_bits_retain(v.u64().map_err(short)?);
                let enabled = InitFlags::from_bits_retain(v.u64().map_err(short)?);
                let max_write = v.u32().map_err(short)?;
                negotiated = Some(Negotiated {
                    abi,
                    offered,
                    enabled,
                    max_write,
                });
            }
            T_OPTIONS => {
                let secs = v.u64().map_err(short)?;
                let nanos = v.u32().map_err(short)?;
                let read_only = v.u8().map_err(short)? != 0;
                let acl = acl_from(v.u8().map_err(short)?).ok_or_else(|| bad("unknown ACL"))?;
                let threads = v.u32().map_err(short)? as usize;
                let clone_fd = v.u8().map_err(short)? != 0;
                let writeback_cache = v.u8().map_err(short)? != 0;
                let keep_cache = v.u8().map_err(short)? != 0;
                let max_write = v.u32().map_err(short)?;
                options = Some(FuseOptions {
                    read_only,
                    acl,
                    threads,
                    clone_fd,
                    ttl: Duration::new(secs, nanos.min(999_999_999)),
                    max_write,
                    writeback_cache,
                    keep_cache,
                    takeover: true,
                    ..FuseOptions::default()
                });
            }
            T_APP_FDS => app_fds = Some(v.u32().map_err(short)? as usize),
            T_APP => app_state = Some(v.take(payload_len(&v)).map_err(short)?.to_vec()),
            T_FS_STATE => fs_state = Some(v.take(payload_len(&v)).map_err(short)?.to_vec()),
            T_SENDER => {
                sender =
                    String::from_utf8_lossy(v.take(payload_len(&v)).map_err(short)?).into_owned()
            }
            t if t & OPTIONAL != 0 => {}
            t => {
                return Err(format!(
                    "it carries a field this version does not know (tag {t:#x}, from {} {})",
                    info.fs_name, info.fs_version
                ));
            }
        }
    }
    let missing = |what: &str| format!("no {what} in the state");
    let mountpoint = mountpoint.ok_or_else(|| missing("mount point"))?;
    let negotiated = negotiated.ok_or_else(|| missing("negotiated settings"))?;
    let options = options.ok_or_else(|| missing("options"))?;
    let app_count = app_fds.ok_or_else(|| missing("descriptor count"))?;
    if fds.len() != 2 + app_count {
        return Err(format!(
            "{} descriptors came with the state, {} expected",
            fds.len(),
            2 + app_count
        ));
    }
    let app_fds = fds.split_off(2);
    let mut fds = fds.into_iter();
    let (Some(fuse_fd), Some(listener)) = (fds.next(), fds.next()) else {
        return Err(missing("descriptors"));
    };
    Ok(Handover {
        mountpoint,
        negotiated,
        options,
        app_state: app_state.ok_or_else(|| missing("application state"))?,
        app_fds,
        fs_state: fs_state.ok_or_else(|| missing("file-system state"))?,
        sender,
        fuse_fd,
        listener: UnixListener::from(listener),
    })
}

/// The length of what is left in a field reader.
pub(super) fn payload_len(r: &Reader<'_>) -> usize {
    r.remaining()
}
