//! Man pages and shell completions: the section-8 pages the tools print with
//! `--generate man`, and the hand-written `docs/man/logfs.5`, must be `mandoc -Tlint` clean;
//! every `--generate complete-SHELL` script must be produced, and bash must parse its own;
//! `--generate` must work without the required arguments and leave usage errors as they were.
//!
//! Needs mandoc (tests/packages.txt; tests/setup.sh installs it) and the release binaries.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use logfs_tests::*;

/// The tools, with the exit status of a usage error (see each one's EXIT STATUS).
const TOOLS: [(&str, i32); 3] = [("mkfs.logfs", 1), ("fsck.logfs", 16), ("logfs-fuse", 2)];

fn generate(tool: &str, kind: &str) -> Captured {
    let out = run(Command::new(bin(tool)).args(["--generate", kind]));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.is_empty(), "{out}");
    assert!(!out.stdout.trim().is_empty(), "empty output: {out}");
    out
}

/// `mandoc -Tlint -Wwarning` says nothing about `page` and exits 0.
fn assert_lint_clean(page: &Path) {
    let out = run(Command::new("mandoc")
        .args(["-Tlint", "-Wwarning"])
        .arg(page));
    assert!(
        out.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{} is not mandoc -Tlint clean (is mandoc installed? tests/setup.sh)\n{out}",
        page.display()
    );
}

#[test]
fn man_pages_are_lint_clean() {
    let dir = TempDir::new("man");
    for (tool, _) in TOOLS {
        let page = generate(tool, "man").stdout;
        assert!(
            page.contains(&format!(".TH {tool} 8 ")),
            "{tool}: not a section-8 page:\n{page}"
        );
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS"] {
            assert!(
                page.contains(&format!(".SH {section}\n"))
                    || page.contains(&format!(".SH \"{section}\"\n")),
                "{tool}: no {section} section:\n{page}"
            );
        }
        assert!(
            !page.contains("generate"),
            "{tool}: the hidden --generate is in the man page"
        );
        let path = dir.join(format!("{tool}.8"));
        fs::write(&path, page).unwrap();
        assert_lint_clean(&path);
    }
    let logfs5 = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/man/logfs.5");
    assert_lint_clean(&logfs5);
}

#[test]
fn man_page_date_is_reproducible() {
    let out = run(Command::new(mkfs_bin())
        .args(["--generate", "man"])
        .env("SOURCE_DATE_EPOCH", "951782400"));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains(".TH mkfs.logfs 8 2000-02-29 "),
        "{}",
        out.stdout
    );
}

#[test]
fn completions() {
    let dir = TempDir::new("completions");
    for (tool, _) in TOOLS {
        for shell in ["bash", "zsh", "fish"] {
            let script = generate(tool, &format!("complete-{shell}")).stdout;
            assert!(script.contains(tool), "{tool} {shell}:\n{script}");
            if shell == "bash" {
                let path = dir.join(format!("{tool}.bash"));
                fs::write(&path, &script).unwrap();
                let out = run(Command::new("bash").arg("-n").arg(&path));
                assert!(out.success() && out.stderr.is_empty(), "{tool}: {out}");
            }
        }
    }
}

/// `--generate` stands alone, and the usual command lines fail as before.
#[test]
fn generate_is_exclusive_and_usage_errors_unchanged() {
    for (tool, usage) in TOOLS {
        let help = run(Command::new(bin(tool)).arg("--help"));
        assert_eq!(help.code, Some(0), "{help}");
        assert!(!help.stdout.contains("generate"), "{help}");

        let none = run(&mut Command::new(bin(tool)));
        assert_eq!(none.code, Some(usage), "{none}");
        assert!(
            none.stderr
                .contains("the following required arguments were not provided"),
            "{none}"
        );
        assert!(none.stdout.is_empty(), "{none}");

        for args in [
            &["--generate", "man", "/nonexistent"][..],
            &["-f", "--generate", "man"][..],
        ] {
            let out = run(Command::new(bin(tool)).args(args));
            assert_eq!(out.code, Some(usage), "{out}");
            assert!(out.stderr.contains("cannot be used with"), "{out}");
            assert!(out.stdout.is_empty(), "{out}");
        }

        let bad = run(Command::new(bin(tool)).args(["--generate", "complete-tcsh"]));
        assert_eq!(bad.code, Some(usage), "{bad}");
        assert!(bad.stderr.contains("invalid value"), "{bad}");
    }
}
