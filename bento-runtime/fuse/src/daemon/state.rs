//! The daemon's part of the state handed over in a takeover: which file system on which image,
//! mounted how. Descriptors travel beside it: the image lock, then the auto_unmount watcher's
//! pipe if `auto_unmount`. The encoding is part of the live-upgrade protocol between daemon
//! versions: fields are never renumbered, and new ones are `OPTIONAL` unless a daemon that does
//! not know them must refuse.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use bento_api::fs::MountOptions;
use bento_api::upgrade::{OPTIONAL, Put, Reader, Writer};

#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) fs_name: String,
    pub(crate) fs_version: String,
    pub(crate) image: PathBuf,
    pub(crate) mount: MountOptions,
    pub(crate) auto_unmount: bool,
}

const A_FS: u16 = 1;
const A_IMAGE: u16 = 2;
const A_MOUNT: u16 = 3;
const A_AUTO_UNMOUNT: u16 = 4;
const A_FS_VERSION: u16 = 5 | OPTIONAL;

impl AppState {
    pub(crate) fn encode(&self) -> Vec<u8> {
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

    /// `name`: the daemon's program name, for the messages.
    pub(crate) fn decode(bytes: &[u8], name: &str) -> Result<AppState, String> {
        let short = |_| format!("{name}'s state is cut short");
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
                    image = Some(PathBuf::from(OsStr::from_bytes(b)));
                }
                A_MOUNT => {
                    let read_only = v.u8().map_err(short)? != 0;
                    let rest = v.remaining();
                    let fs_options = text(v.take(rest).map_err(short)?);
                    mount = Some(MountOptions {
                        read_only,
                        silent: false,
                        fs_options,
                    });
                }
                A_AUTO_UNMOUNT => auto_unmount = v.u8().map_err(short)? != 0,
                A_FS_VERSION => fs_version = text(v.take(rest).map_err(short)?),
                t if t & OPTIONAL != 0 => {}
                t => {
                    return Err(format!(
                        "{name}'s state carries a field this version does not know (tag {t:#x})"
                    ));
                }
            }
        }
        let missing = |what: &str| format!("{name}'s state has no {what}");
        Ok(AppState {
            fs_name: fs_name.ok_or_else(|| missing("file-system type"))?,
            fs_version,
            image: image.ok_or_else(|| missing("image"))?,
            mount: mount.ok_or_else(|| missing("mount options"))?,
            auto_unmount,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusal() {
        let app = AppState {
            fs_name: "logfs".into(),
            fs_version: "0.1.0".into(),
            image: PathBuf::from("/img with space"),
            mount: MountOptions {
                read_only: true,
                silent: false,
                fs_options: "a=1".into(),
            },
            auto_unmount: true,
        };
        let back = AppState::decode(&app.encode(), "d").unwrap();
        assert_eq!(back.fs_name, "logfs");
        assert_eq!(back.fs_version, "0.1.0");
        assert_eq!(back.image, app.image);
        assert!(back.mount.read_only && back.auto_unmount);
        assert_eq!(back.mount.fs_options, "a=1");
        let mut w = Writer::new();
        w.field(A_FS, |v| v.extend_from_slice(b"logfs"));
        w.field(99, |v| v.put_u8(0));
        assert!(
            AppState::decode(&w.finish(), "d")
                .unwrap_err()
                .contains("does not know")
        );
    }
}
