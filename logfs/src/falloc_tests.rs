//! Unit tests of falloc.rs: which fallocate modes are taken, and how the others are refused.

use super::*;

#[test]
fn modes() {
    let k = FALLOC_FL_KEEP_SIZE;
    assert_eq!(
        decode_mode(0).ok(),
        Some(Falloc::Allocate { keep_size: false })
    );
    assert_eq!(
        decode_mode(k).ok(),
        Some(Falloc::Allocate { keep_size: true })
    );
    assert_eq!(
        decode_mode(FALLOC_FL_PUNCH_HOLE | k).ok(),
        Some(Falloc::Punch)
    );
    assert_eq!(
        decode_mode(FALLOC_FL_ZERO_RANGE | k).ok(),
        Some(Falloc::Zero { keep_size: true })
    );
    assert_eq!(
        decode_mode(FALLOC_FL_COLLAPSE_RANGE).ok(),
        Some(Falloc::Collapse)
    );
    assert_eq!(
        decode_mode(FALLOC_FL_INSERT_RANGE).ok(),
        Some(Falloc::Insert)
    );
    let refused = |m| match decode_mode(m) {
        Err(Error::Errno(e)) => Some(e),
        _ => None,
    };
    for m in [
        FALLOC_FL_PUNCH_HOLE,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | k,
        0x04,
        0x40,
        0x80,
        0x100,
        -1,
    ] {
        assert_eq!(refused(m), Some(Errno::EOPNOTSUPP), "mode {m:#x}");
    }
    for m in [
        FALLOC_FL_COLLAPSE_RANGE | k,
        FALLOC_FL_INSERT_RANGE | k,
        FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE,
        FALLOC_FL_ZERO_RANGE | FALLOC_FL_COLLAPSE_RANGE,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_INSERT_RANGE,
    ] {
        assert_eq!(refused(m), Some(Errno::EINVAL), "mode {m:#x}");
    }
}
