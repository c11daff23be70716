//! Unit tests of `takeover`: the state's encoding, and refusals.
use super::*;
use bento_api::upgrade;
use fuser::{InitFlags, SessionACL};

fn sample() -> (Negotiated, FuseOptions) {
    let negotiated = Negotiated {
        abi: (7, 41),
        offered: InitFlags::FUSE_ASYNC_READ | InitFlags::FUSE_WRITEBACK_CACHE,
        enabled: InitFlags::FUSE_WRITEBACK_CACHE,
        max_write: 1 << 20,
    };
    let options = FuseOptions {
        threads: 3,
        acl: SessionACL::RootAndOwner,
        ttl: Duration::from_millis(1500),
        takeover: true,
        ..FuseOptions::default()
    };
    (negotiated, options)
}

fn fds(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .map(|_| OwnedFd::from(std::fs::File::open("/dev/null").unwrap()))
        .collect()
}

fn encoded(fault: Option<TestFault>) -> Vec<u8> {
    let (negotiated, options) = sample();
    encode(
        &Outgoing {
            mountpoint: Path::new("/mnt/a b"),
            negotiated: &negotiated,
            options: &options,
            app_state: b"app",
            app_fds: 1,
            fs_state: b"fs state",
        },
        fault,
    )
}

#[test]
fn state_round_trip() {
    let (negotiated, options) = sample();
    let h = decode(&encoded(None), fds(3)).unwrap();
    assert_eq!(h.mountpoint, Path::new("/mnt/a b"));
    assert_eq!(h.negotiated, negotiated);
    assert!(h.negotiated.writeback_cache());
    assert_eq!(h.options.threads, 3);
    assert_eq!(h.options.acl, options.acl);
    assert_eq!(h.options.ttl, options.ttl);
    assert_eq!(h.app_state, b"app");
    assert_eq!(h.fs_state, b"fs state");
    assert_eq!(h.app_fds.len(), 1);
}

#[test]
fn refusals() {
    let unknown = decode(&encoded(Some(TestFault::UnknownField)), fds(3))
        .err()
        .unwrap();
    assert!(unknown.contains("does not know"), "{unknown}");
    let corrupt = decode(&encoded(Some(TestFault::Corrupt)), fds(3))
        .err()
        .unwrap();
    assert!(corrupt.contains("damaged"), "{corrupt}");
    let short = decode(&encoded(None), fds(2)).err().unwrap();
    assert!(short.contains("descriptors"), "{short}");
    let other = upgrade::seal("logfs", "1", 1, b"");
    assert!(decode(&other, fds(3)).is_err());
    assert!(decode(b"garbage", fds(3)).is_err());
}

#[test]
fn gate_parks_and_releases() {
    let gate = Arc::new(Gate::new());
    gate.after_request(); // open: returns at once
    gate.raise();
    let g = gate.clone();
    let worker = std::thread::spawn(move || g.after_request());
    let mut parked = 0;
    while parked == 0 {
        parked = gate.wait_parked(0, Duration::from_millis(10));
    }
    assert_eq!(parked, 1);
    gate.lower();
    worker.join().unwrap();
    assert_eq!(gate.wait_parked(usize::MAX, Duration::ZERO), 0);
}
