//! Unit tests of `dir`.
use super::*;
use zerocopy::FromZeros;

#[test]
fn insert_find_remove() {
    let mut b = DirBlock::new_box_zeroed().unwrap();
    let names: [&[u8]; 4] = [b"a", b"eight888", b"nine99999", &[b'x'; 255]];
    for (i, n) in names.iter().enumerate() {
        let slot = b.find_space(n.len()).unwrap();
        b.insert(slot, name_hash(&[0; 16], n), 10 + i as u32, 8, n);
    }
    for (i, n) in names.iter().enumerate() {
        let e = b.find(name_hash(&[0; 16], n), n).unwrap();
        assert_eq!(e.ino, 10 + i as u32);
    }
    assert_eq!(b.entries_from(0).count(), 4);
    let slot = b
        .find(name_hash(&[0; 16], b"eight888"), b"eight888")
        .unwrap()
        .slot;
    b.remove(slot);
    assert!(
        b.find(name_hash(&[0; 16], b"eight888"), b"eight888")
            .is_none()
    );
    assert_eq!(b.entries_from(0).count(), 3);
    let block: &mut [u8; BLOCK_SIZE] = zerocopy::transmute_mut!(&mut *b);
    block[8..12].copy_from_slice(&7u32.to_le_bytes());
    let sealed = *b.seal(1);
    DirBlock::verify(&sealed, 1, 0, 7).unwrap();
    assert!(DirBlock::verify(&sealed, 1, 0, 8).is_err());
}

#[test]
fn levels_do_not_overlap() {
    for l in 0..MAX_DEPTH {
        let r = bucket_range(l, u32::MAX);
        assert!(r.end <= level_start(l + 1));
        assert!(bucket_range(l, 0).start == level_start(l));
    }
}

#[test]
fn level_starts_sum_the_levels_below() {
    let mut start = 0u64;
    for l in 0..=MAX_DEPTH + 2 {
        assert_eq!(level_start(l), start, "level {l}");
        if l < MAX_DEPTH {
            start += u64::from(buckets(l)) * u64::from(bucket_blocks(l));
        }
    }
}
