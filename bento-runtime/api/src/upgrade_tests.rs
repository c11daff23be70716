//! Unit tests of `upgrade`.
use super::*;

#[test]
fn round_trip_and_refusals() {
    let mut w = Writer::new();
    w.field(1, |v| v.put_u64(42));
    w.field(2 | OPTIONAL, |v| v.put_u32(7));
    let state = seal("logfs", "0.1.0", 1, &w.finish());
    let (info, payload) = open(&state, "logfs").unwrap();
    assert_eq!(info.fs_version, "0.1.0");
    assert_eq!(info.payload_version, 1);
    let mut r = Reader::new(payload);
    let (tag, mut v) = r.field().unwrap().unwrap();
    assert_eq!((tag, v.u64().unwrap()), (1, 42));
    let (tag, mut v) = r.field().unwrap().unwrap();
    assert_eq!((tag, v.u32().unwrap()), (2 | OPTIONAL, 7));
    assert!(r.field().unwrap().is_none());

    assert_eq!(open(&state, "otherfs").unwrap_err(), Errno::EINVAL);
    let mut bad = state.clone();
    bad[30] ^= 1;
    assert_eq!(open(&bad, "logfs").unwrap_err(), Errno::EINVAL);
    assert_eq!(open(&state[..10], "logfs").unwrap_err(), Errno::EINVAL);
}
