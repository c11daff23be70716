//! Mount a damaged seed volume and run operations on it (see src/lib.rs). Errors are fine; a
//! panic, a hang (-timeout) or a huge allocation (-rss_limit_mb, -malloc_limit_mb) is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logfs_fuzz::{Input, prepared, run, write_seeds};

fuzz_target!(
    init: {
        // Build the seed volumes before the first input, so their cost is not charged to it.
        prepared();
        // run.sh: write the seed corpus and stop.
        if let Some(dir) = std::env::var_os("LOGFS_FUZZ_WRITE_SEEDS") {
            write_seeds(std::path::Path::new(&dir));
            std::process::exit(0);
        }
    },
    |data: &[u8]| {
        if let Ok(input) = Input::decode(data) {
            run(&input);
        }
    }
);
