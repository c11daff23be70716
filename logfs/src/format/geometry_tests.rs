//! Unit tests of `geometry`.
use super::*;

#[test]
fn paths_match_the_documented_offsets() {
    assert_eq!(block_path(0).unwrap().depth, 0);
    assert_eq!(block_path(912).unwrap().top, 912);
    let p = block_path(913).unwrap();
    assert_eq!((p.depth, p.top, p.slots[0], p.offsets[0]), (1, 0, 0, 1));
    let p = block_path(913 + 1014).unwrap();
    assert_eq!((p.depth, p.top, p.offsets[0]), (1, 1, 2));
    let p = block_path(913 + 2028).unwrap();
    assert_eq!((p.depth, p.top, p.offsets), (2, 2, [3, 4, 0]));
    let p = block_path(913 + 2028 + N * N).unwrap();
    assert_eq!(
        (p.depth, p.top, p.offsets[0], p.offsets[1]),
        (2, 3, 1018, 1019)
    );
    let p = block_path(913 + 2028 + 2 * N * N).unwrap();
    assert_eq!((p.depth, p.offsets), (3, [2033, 2034, 2035]));
    let p = block_path(913 + 2028 + 2 * N * N + N * N + N).unwrap();
    assert_eq!(p.offsets, [2033, 2034 + 1015, 2035 + 1015 + 1]);
    assert_eq!(child_node_offset(2033, 3, 1), Some(2034 + 1015));
    assert_eq!(child_node_offset(2034 + 1015, 2, 1), Some(2035 + 1015 + 1));
    assert_eq!(child_node_offset(u32::MAX, 2, 0), None);
    assert!(block_path(MAX_FILE_BLOCKS - 1).is_some());
    assert!(block_path(MAX_FILE_BLOCKS).is_none());
    const { assert!(MAX_FILE_SIZE > 1 << 40) };
}

#[test]
fn direct_node_offsets_invert() {
    for idx in [
        913u64,
        913 + 1013,
        913 + 1014,
        913 + 2028,
        913 + 2028 + 1014 * 1013,
        913 + 2028 + N * N,
        913 + 2028 + 2 * N * N,
        913 + 2028 + 2 * N * N + N * N + 5 * N + 3,
        MAX_FILE_BLOCKS - 1,
    ] {
        let p = block_path(idx).unwrap();
        let off = p.offsets[p.depth - 1];
        assert_eq!(
            direct_node_base(off),
            Some(idx - p.slots[p.depth - 1] as u64),
            "block {idx}"
        );
    }
    // A sweep over the whole file: every direct node's position maps back to its first block.
    for idx in (DIRECT_BLOCKS..MAX_FILE_BLOCKS).step_by(997) {
        let p = block_path(idx).unwrap();
        let off = p.offsets[p.depth - 1];
        assert_eq!(
            direct_node_base(off),
            Some(idx - p.slots[p.depth - 1] as u64)
        );
    }
    for not_direct in [0, 3, 1018, 2033, 2034, 2034 + 1015, u32::MAX] {
        assert_eq!(direct_node_base(not_direct), None, "offset {not_direct}");
    }
}
