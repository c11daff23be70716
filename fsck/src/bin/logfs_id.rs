//! logfs_id: tell udev about a logfs volume, as udev's ata_id and cdrom_id do for theirs.
//!
//! `logfs_id DEVNODE` reads the two superblock copies (nothing else) and, if one verifies,
//! prints `ID_FS_TYPE=logfs`, `ID_FS_USAGE`, `ID_FS_VERSION`, `ID_FS_UUID[_ENC]` and
//! `ID_FS_LABEL[_ENC]` for `IMPORT{program}` (udev/59-logfs.rules). Exit status: 0 a logfs,
//! 1 not a logfs (nothing printed), 2 usage or I/O error.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use bento_user::FileDevice;
use fsck::udev::{Identity, identify, properties};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [dev] = args.as_slice() else {
        eprintln!("usage: logfs_id DEVNODE");
        return ExitCode::from(2);
    };
    let path = Path::new(dev);
    // Read-only, so never O_EXCL: a mounted volume is identified too.
    let dev = match FileDevice::open(path, true) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("logfs_id: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match identify(&dev) {
        Identity::Logfs(sb) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(properties(&sb).as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Identity::NotLogfs => ExitCode::from(1),
        Identity::Io(e) => {
            eprintln!("logfs_id: {}: cannot read: {e}", path.display());
            ExitCode::from(2)
        }
    }
}
