//! Unit tests of `layout`.
use super::*;

#[test]
fn layouts_fit_and_validate() {
    for blocks in [16_384u64, 20_000, 524_288, 1 << 28, (1u64 << 32) + 5] {
        let l = Layout::compute(blocks).unwrap();
        assert!(l.main_start.is_multiple_of(SEG_BLOCKS));
        assert!(u64::from(l.ssa_start) + u64::from(l.main_segments) <= u64::from(l.main_start));
        assert!(
            u64::from(l.main_start) + u64::from(l.main_segments) * u64::from(SEG_BLOCKS)
                <= l.total_blocks
        );
        assert!(u64::from(l.max_nid) >= u64::from(l.main_segments) * u64::from(SEG_BLOCKS));
        l.validate(blocks).unwrap();
    }
}

#[test]
fn tiny_devices_are_refused() {
    assert!(Layout::compute(256).is_err());
    let min = Layout::minimum_device_bytes() / BLOCK_SIZE as u64;
    assert!(Layout::compute(min).is_ok());
    assert!(Layout::compute(min - SEG_BLOCKS as u64).is_err());
}
