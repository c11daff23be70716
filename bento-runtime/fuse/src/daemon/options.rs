//! The command line of a mount daemon: `-o` options in mount(8)'s manner.

use bento_api::fs::MountOptions;

use super::Settings;
use crate::{FuseOptions, MountOption, SessionACL};

impl Settings {
    /// Parse `-o` options (each one word, `key` or `key=value`), with `-f` as `foreground` and
    /// `-d` as `debug`. Options this does not know are the file system's
    /// ([`MountOptions::fs_options`]); `fs=NAME` is left to the program, which picks the type.
    pub fn parse<'a>(
        options: impl IntoIterator<Item = &'a str>,
        foreground: bool,
        debug: bool,
    ) -> Result<Settings, String> {
        let mut fuse = FuseOptions::default();
        let mut mount = MountOptions::default();
        let mut fs_options = Vec::new();
        let (mut debug, mut auto_unmount, mut takeover) = (debug, false, true);
        let (mut allow_other, mut allow_root) = (false, false);
        for option in options {
            let (key, value) = match option.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (option, None),
            };
            let flag = match key {
                "dev" => Some(MountOption::Dev),
                "nodev" => Some(MountOption::NoDev),
                "suid" => Some(MountOption::Suid),
                "nosuid" => Some(MountOption::NoSuid),
                "exec" => Some(MountOption::Exec),
                "noexec" => Some(MountOption::NoExec),
                "atime" => Some(MountOption::Atime),
                "noatime" => Some(MountOption::NoAtime),
                "sync" => Some(MountOption::Sync),
                "async" => Some(MountOption::Async),
                "dirsync" => Some(MountOption::DirSync),
                _ => None,
            };
            if let Some(flag) = flag.filter(|_| value.is_none()) {
                fuse.mount_options.retain(|o| !conflicts(o, &flag));
                fuse.mount_options.push(flag);
                continue;
            }
            match (key, value) {
                ("ro", None) => mount.read_only = true,
                ("rw", None) => mount.read_only = false,
                ("allow_other", None) => allow_other = true,
                ("allow_root", None) => allow_root = true,
                ("auto_unmount", None) => auto_unmount = true,
                ("notakeover", None) => takeover = false,
                ("debug", None) => debug = true,
                ("fsname", Some(name)) if !name.is_empty() => fuse.fsname = Some(name.to_string()),
                ("threads", Some(n)) => match n.parse::<usize>() {
                    Ok(n) if (1..=1024).contains(&n) => fuse.threads = n,
                    _ => {
                        return Err(format!(
                            "threads={n}: expected a number of threads from 1 to 1024"
                        ));
                    }
                },
                // Chosen in main; always on; fstab-only words that mount(8) may pass on.
                ("fs", Some(_)) | ("default_permissions", None) => {}
                (
                    "defaults" | "auto" | "noauto" | "nofail" | "_netdev" | "user" | "users"
                    | "nouser",
                    None,
                ) => {}
                _ if key.starts_with("x-") => {}
                (
                    "ro"
                    | "rw"
                    | "allow_other"
                    | "allow_root"
                    | "auto_unmount"
                    | "notakeover"
                    | "debug"
                    | "default_permissions",
                    Some(_),
                )
                | ("fsname" | "threads" | "fs", _) => return Err(format!("bad option {option:?}")),
                _ => fs_options.push(option),
            }
        }
        fuse.read_only = mount.read_only;
        fuse.acl = if allow_other {
            SessionACL::All
        } else if allow_root {
            SessionACL::RootAndOwner
        } else {
            SessionACL::Owner
        };
        mount.fs_options = fs_options.join(",");
        fuse.takeover = takeover;
        Ok(Settings {
            fuse,
            mount,
            foreground: foreground || debug,
            debug,
            auto_unmount,
            takeover,
        })
    }
}

fn conflicts(a: &MountOption, b: &MountOption) -> bool {
    use MountOption::*;
    let pair = |x: &MountOption| match x {
        Dev | NoDev => 0,
        Suid | NoSuid => 1,
        Exec | NoExec => 2,
        Atime | NoAtime => 3,
        Sync | Async => 4,
        DirSync => 5,
        _ => 6,
    };
    pair(a) == pair(b) && pair(a) != 6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let parse =
            |opts: &[&str]| Settings::parse(opts.iter().flat_map(|o| o.split(',')), false, false);
        let s = parse(&[
            "ro,allow_other,threads=3",
            "noexec,fsname=disk,foo=1,bar",
            "x-systemd.a",
        ])
        .unwrap();
        assert!(s.mount.read_only && s.fuse.read_only);
        assert_eq!(s.fuse.acl, SessionACL::All);
        assert_eq!(s.fuse.threads, 3);
        assert_eq!(s.fuse.fsname.as_deref(), Some("disk"));
        assert_eq!(s.fuse.mount_options, vec![MountOption::NoExec]);
        assert_eq!(s.mount.fs_options, "foo=1,bar");
        assert!(!s.foreground);
        let s = parse(&["debug,exec,noexec,allow_root"]).unwrap();
        assert!(s.foreground && s.debug);
        assert_eq!(s.fuse.mount_options, vec![MountOption::NoExec]);
        assert_eq!(s.fuse.acl, SessionACL::RootAndOwner);
        assert!(parse(&["threads=0"]).is_err());
        assert!(parse(&["threads"]).is_err());
        assert!(parse(&["ro=1"]).is_err());
    }
}
