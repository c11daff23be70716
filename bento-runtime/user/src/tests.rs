use super::*;

fn block_of(byte: u8) -> Vec<u8> {
    std::vec![byte; BLOCK_SIZE]
}

fn read(dev: &impl BlockDevice, block: u64) -> Vec<u8> {
    let mut buf = std::vec![0xAAu8; BLOCK_SIZE];
    dev.read_blocks(block, &mut buf).expect("read");
    buf
}

#[test]
fn crash_device_layers_private_over_overlay_over_base() {
    let mut base = SparseImage::new(8);
    base.insert(1, Arc::new([1u8; BLOCK_SIZE]));
    base.insert(2, Arc::new([2u8; BLOCK_SIZE]));
    let base = Arc::new(base);
    let mut overlay = HashMap::new();
    overlay.insert(2, Arc::new([20u8; BLOCK_SIZE]));
    overlay.insert(3, Arc::new([30u8; BLOCK_SIZE]));
    let dev = CrashDevice::with_overlay(base.clone(), overlay);
    assert_eq!(dev.block_count(), 8);
    assert_eq!(read(&dev, 0), block_of(0));
    assert_eq!(read(&dev, 1), block_of(1));
    assert_eq!(read(&dev, 2), block_of(20));
    assert_eq!(read(&dev, 3), block_of(30));

    let mut two = block_of(40);
    two.extend(block_of(50));
    dev.write_blocks(3, &two, WriteFlags::NONE).expect("write");
    let mut buf = std::vec![0u8; 3 * BLOCK_SIZE];
    dev.read_blocks(2, &mut buf).expect("read");
    assert_eq!(&buf[..BLOCK_SIZE], &block_of(20)[..]);
    assert_eq!(&buf[BLOCK_SIZE..2 * BLOCK_SIZE], &block_of(40)[..]);
    assert_eq!(&buf[2 * BLOCK_SIZE..], &block_of(50)[..]);
    assert_eq!(dev.written().len(), 2);

    // The base and another device over it are untouched.
    assert_eq!(base.stored(), 2);
    assert_eq!(read(&CrashDevice::new(base.clone()), 3), block_of(0));
    let frozen = dev.freeze();
    assert_eq!(frozen.stored(), 4);
    assert_eq!(&frozen.get(4).expect("block 4")[..], &block_of(50)[..]);

    // Requests past the end or not block-sized are refused.
    assert_eq!(
        dev.write_blocks(8, &block_of(0), WriteFlags::NONE),
        Err(Errno::EIO)
    );
    assert_eq!(dev.read_blocks(0, &mut [0u8; 10]), Err(Errno::EINVAL));
}

#[test]
fn recording_device_logs_writes_and_flushes_in_order() {
    let dev = RecordingDevice::new(CrashDevice::new(Arc::new(SparseImage::new(4))));
    assert_eq!(dev.position(), 0);
    let mut two = block_of(1);
    two.extend(block_of(2));
    dev.write_blocks(0, &two, WriteFlags::NONE).expect("write");
    dev.flush().expect("flush");
    dev.write_blocks(3, &block_of(3), WriteFlags::COMMIT)
        .expect("write");
    assert!(dev.write_blocks(4, &block_of(4), WriteFlags::NONE).is_err());
    assert_eq!(dev.position(), 3);
    assert_eq!(read(&dev, 1), block_of(2));
    assert_eq!(dev.inner().written().len(), 3);

    let events = dev.events();
    match &events[0] {
        IoEvent::Write { block, data, flags } => {
            assert_eq!((*block, data.len(), *flags), (0, 2, WriteFlags::NONE));
            assert_eq!(&data[1][..], &block_of(2)[..]);
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(matches!(events[1], IoEvent::Flush));
    match &events[2] {
        IoEvent::Write { block, data, flags } => {
            assert_eq!((*block, data.len(), *flags), (3, 1, WriteFlags::COMMIT));
        }
        e => panic!("unexpected {e:?}"),
    }
}
