//! Cargo cannot name a binary `mkfs.logfs` (a dot is not allowed in a crate name), but fsck(8)
//! and mkfs(8) run `fsck.TYPE` / `mkfs.TYPE`. The package builds `mkfs-logfs`; this script puts a
//! `mkfs.logfs` symlink beside it in the target directory, so `cargo build` yields both names.
use std::path::PathBuf;

fn main() {
    let pkg = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let tool = if pkg.starts_with("mkfs") {
        "mkfs"
    } else {
        "fsck"
    };
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out.
    let Some(profile_dir) = PathBuf::from(out).ancestors().nth(3).map(PathBuf::from) else {
        return;
    };
    let link = profile_dir.join(format!("{tool}.logfs"));
    let _ = std::fs::remove_file(&link);
    let _ = std::os::unix::fs::symlink(format!("{tool}-logfs"), &link);
    println!("cargo:rerun-if-changed=build.rs");
}
