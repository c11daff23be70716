//! Unit tests of the conversions and the adapter.
use super::*;
use crate::{FuseOptions, MountOption, system_time, timespec};
use bento_api::fs::Timespec;
use std::time::UNIX_EPOCH;

/// What fuser 0.18 hands to setattr for a kernel timespec.
fn fuser_setattr_time(sec: i64, nsec: u32) -> SystemTime {
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec as u64, nsec)
    } else {
        UNIX_EPOCH - Duration::new((-sec) as u64, nsec)
    }
}

#[test]
fn times_round_trip() {
    for (sec, nsec) in [
        (0, 0),
        (1, 5),
        (1_700_000_000, 999_999_999),
        (-1, 0),
        (-1, 1),
        (-2, 800_000_000),
        (-86_400 * 365 * 100, 123_456_789),
        (i64::MAX, 999_999_999),
    ] {
        let t = Timespec::new(sec, nsec);
        assert_eq!(timespec(system_time(t)), t, "{sec}.{nsec}");
        assert_eq!(
            setattr_timespec(fuser_setattr_time(sec, nsec)),
            t,
            "{sec}.{nsec}"
        );
    }
    assert_eq!(
        system_time(Timespec::new(-2, 800_000_000)),
        UNIX_EPOCH - Duration::from_millis(1200)
    );
    assert_eq!(
        timespec(UNIX_EPOCH - Duration::from_millis(1200)),
        Timespec::new(-2, 800_000_000)
    );
}

#[test]
fn options_always_carry_default_permissions() {
    let mut opts = FuseOptions {
        fsname: Some("/img".into()),
        subtype: Some("memfs".into()),
        ..Default::default()
    };
    opts.read_only = true;
    opts.mount_options.push(MountOption::NoExec);
    let config = opts.config();
    assert!(
        config
            .mount_options
            .contains(&MountOption::DefaultPermissions)
    );
    assert!(config.mount_options.contains(&MountOption::RO));
    assert!(config.mount_options.contains(&MountOption::NoExec));
    assert!(
        config
            .mount_options
            .contains(&MountOption::CUSTOM("subtype=memfs".into()))
    );
    assert!(config.n_threads.unwrap() >= 2);
}
