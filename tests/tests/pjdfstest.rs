//! The pjdfstest POSIX suite on logfs-fuse, through `tests/pjdfstest/run.sh` (which installs
//! pjdfstest 0.2.2 from crates.io into target/pjdfstest the first time: about a minute and a
//! half of compiling). Set LOGFS_SKIP_PJDFSTEST=1 to skip it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use logfs_tests::*;

#[test]
fn pjdfstest() {
    require_fuse!();
    if std::env::var_os("LOGFS_SKIP_PJDFSTEST").is_some_and(|v| !v.is_empty() && v != "0") {
        eprintln!("SKIPPED: LOGFS_SKIP_PJDFSTEST is set");
        return;
    }
    // Fail early, with the usual message, if the binaries are not built.
    let _ = (mkfs_bin(), fuse_bin(), fsck_bin());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pjdfstest/run.sh");
    let out = run_timeout(
        Command::new("bash")
            .arg(&script)
            .env("LOGFS_BIN_DIR", bin_dir()),
        Duration::from_secs(900),
    );
    eprintln!("{}{}", out.stdout, out.stderr);
    assert!(out.success(), "pjdfstest/run.sh failed: {out}");
    let summary = out
        .stdout
        .lines()
        .find(|l| l.starts_with("pjdfstest: "))
        .unwrap_or_else(|| panic!("no summary line: {out}"));
    // "pjdfstest: N passed, 0 failed, M skipped"
    let passed: usize = summary
        .trim_start_matches("pjdfstest: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad summary line: {summary}"));
    assert!(
        passed >= 300,
        "only {passed} pjdfstest cases passed: {summary}"
    );
    assert!(summary.contains(" 0 failed"), "{summary}");
}
