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

#[test]
fn try_field_writes_what_field_writes() {
    let mut a = Writer::new();
    a.field(1, |v| v.put_u64(42));
    a.field(3, |v| v.extend_from_slice(b"xyz"));
    let mut b = Writer::new();
    b.try_field(1, |v| v.put_u64(42));
    b.try_field(3, |v| v.put_bytes(b"xyz"));
    let (a, b) = (a.finish(), b.try_finish().unwrap());
    assert_eq!(a, b);
    assert_eq!(
        seal("logfs", "1", 2, &a),
        try_seal("logfs", "1", 2, &b).unwrap()
    );
}
