#!/usr/bin/env python3
"""Fails if a script of the tree calls a command that tests/setup.sh does not provide.

A fresh Debian 12 machine has only what tests/setup.sh installs, so every external command the
tree runs must come from a package named in tests/packages.txt (or from the Rust toolchain, or
be built by the tree itself). Checked here:

  * host shell scripts (bash): every command word, parsed with shfmt's syntax tree, so
    functions, builtins, words behind `command -v` (optional probes) and paths are told apart;
  * guest shell scripts (`#!/bin/sh`, run by busybox in the test VM): busybox applets, or
    binaries the host scripts copy into the image (`mkinitramfs.sh -b`), or the tree's own;
  * scripts for a Debian guest (a line `# check-commands: packages from FILE`, as
    tests/xfstests/guest.sh): commands owned by a package of FILE or of the base system;
  * Rust and Python sources: literal program names given to Command::new / subprocess.

A host command passes when a file of that name on PATH is owned by a listed package (dpkg -S on
the path and on where it resolves to). It runs after setup, as the first step of tests/all.sh.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PATH_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
CARGO_BIN = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin"
# Built by the tree (cargo, gcc in the VM harness) or installed into target/ by it.
OWN = {"mkfs.logfs", "fsck.logfs", "logfs-fuse", "bento-t", "fsync-t", "nomem-t", "down-t", "pjdfstest"}
# Prefix commands whose own arguments name the command they run; the value is how many
# positional words come before that command (timeout's duration, flock's lock file).
WRAPPERS = {"exec": 0, "env": 0, "nice": 0, "nohup": 0, "setsid": 0, "stdbuf": 0, "time": 0,
            "timeout": 1, "flock": 1, "xargs": 0, "taskset": 1, "unshare": 0}
OPTS_WITH_VALUE = {"xargs": {"-I", "-n", "-P", "-L", "-d", "-a"}, "timeout": {"-k", "-s"},
                   "flock": {"-w", "-E"}, "nice": {"-n"}, "env": {"-u", "-C"}}


def git_files(*patterns):
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "--", *patterns],
                         check=True, capture_output=True, text=True).stdout.split()
    return [REPO / f for f in out if not f.startswith("vendor/")]


def is_guest(path):
    with open(path, encoding="utf-8") as f:
        return f.readline().strip() == "#!/bin/sh"


def lit(word):
    """The literal text of a shell word, or None if any part is not literal."""
    parts = word.get("Parts", [])
    if len(parts) == 1 and parts[0].get("Type") == "Lit":
        return parts[0]["Value"]
    return None


def walk(node, calls, funcs):
    if isinstance(node, list):
        for n in node:
            walk(n, calls, funcs)
        return
    if not isinstance(node, dict):
        return
    t = node.get("Type")
    if t == "FuncDecl":
        funcs.add(node["Name"]["Value"])
    if t == "CallExpr" and node.get("Args"):
        words = [lit(w) for w in node["Args"]]
        line = node["Pos"]["Line"]
        i = 0
        while i < len(words) and words[i] is not None:
            cmd = words[i]
            if cmd == "command" and i + 1 < len(words) and words[i + 1] in ("-v", "-V"):
                break  # an existence probe: the command is optional
            if cmd == "command":
                i += 1
                continue
            calls.append((cmd, line))
            if cmd not in WRAPPERS:
                break
            skip, i = WRAPPERS[cmd], i + 1
            while i < len(words) and words[i] is not None:
                w = words[i]
                if w.startswith("-"):
                    i += 2 if w in OPTS_WITH_VALUE.get(cmd, ()) else 1
                elif cmd == "env" and "=" in w:
                    i += 1
                elif skip:
                    skip, i = skip - 1, i + 1
                else:
                    break
    for k, v in node.items():
        if k != "Pos" and k != "End":
            walk(v, calls, funcs)


def shell_calls(path):
    src = path.read_text(encoding="utf-8")
    tree = subprocess.run(["shfmt", "--to-json"], input=src, check=True,
                          capture_output=True, text=True).stdout
    calls, funcs = [], set()
    walk(json.loads(tree), calls, funcs)
    return calls, funcs


def source_calls(path, pattern):
    calls = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        calls += [(m, n) for m in re.findall(pattern, line)]
    return calls


def shell_words():
    """Builtins and keywords of bash, which are not commands to install."""
    out = subprocess.run(["bash", "-c", "compgen -b; compgen -k"], check=True,
                         capture_output=True, text=True).stdout
    return set(out.split()) | {"[[", "]]"}


def owner(path):
    """The Debian package owning a path, trying the merged-/usr twin and the resolved file."""
    tries = [path, path.replace("/usr/", "/", 1) if path.startswith("/usr/") else "/usr" + path,
             os.path.realpath(path)]
    for p in tries:
        r = subprocess.run(["dpkg-query", "-S", p], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if not line.startswith("diversion by") and ": " in line:
                return line.split(": ")[0].split(":")[0].split(", ")
    return []


def listed_packages(path=REPO / "tests/packages.txt"):
    pkgs = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        pkgs.update(w for w in line.split("#")[0].split() if not w.startswith("@"))
    return pkgs


def debian_guest(path):
    """The package list a Debian-guest script names (`# check-commands: packages from FILE`)."""
    m = re.search(r"^# check-commands: packages from (\S+)$", path.read_text(encoding="utf-8"), re.M)
    return REPO / m.group(1) if m else None


def main():
    pkgs = listed_packages()
    builtins = shell_words()
    host, guest, funcs, copied, debian = {}, {}, set(), set(), {}
    for path in git_files("*.sh"):
        calls, f = shell_calls(path)
        funcs |= f
        dest = guest if is_guest(path) else host
        if debian_guest(path):
            dest = debian.setdefault(debian_guest(path), {})
        for cmd, line in calls:
            dest.setdefault(cmd, f"{path.relative_to(REPO)}:{line}")
        # mkinitramfs.sh -b BINARY: host binaries the guest gets
        copied |= {Path(b).name for b in re.findall(r"-b\s+\"?([/\w.$-]+)", path.read_text())}
    for path in git_files("*.rs"):
        for cmd, line in source_calls(path, r'Command::new\("([^"]+)"\)'):
            host.setdefault(cmd, f"{path.relative_to(REPO)}:{line}")
    for path in git_files("*.py"):
        pat = r'(?:run|Popen|check_output|check_call|call)\(\s*\[\s*"([^"]+)"'
        for cmd, line in source_calls(path, pat):
            host.setdefault(cmd, f"{path.relative_to(REPO)}:{line}")

    def skip(cmd):
        return (cmd in builtins or cmd in funcs or cmd in OWN or "/" in cmd or "=" in cmd
                or not re.fullmatch(r"[\w.+-]+", cmd))

    bad = []

    def check_owned(calls, pkgs, listname):
        for cmd, where in sorted(calls.items()):
            if skip(cmd):
                continue
            hits = [f"{d}/{cmd}" for d in PATH_DIRS if os.access(f"{d}/{cmd}", os.X_OK)]
            if (CARGO_BIN / cmd).exists():
                continue  # the Rust toolchain (rustup), which setup requires
            if not hits:
                bad.append(f"{cmd}: not installed ({where})")
                continue
            owners = {p for h in hits for p in owner(h)}
            if not owners & pkgs:
                how = f"from {', '.join(sorted(owners))}" if owners else "from no Debian package"
                bad.append(f"{cmd}: {how}, which {listname} does not list ({where})")

    check_owned(host, pkgs, "tests/packages.txt")
    # A Debian guest has the base system (the first block of tests/packages.txt) and its list.
    base = next(b for b in REPO.joinpath("tests/packages.txt").read_text(encoding="utf-8")
                .split("\n\n") if b.startswith("# the base system"))
    base_pkgs = {ln.split("#")[0].split()[0] for ln in base.splitlines()
                 if ln.split("#")[0].split()}
    for lst, calls in debian.items():
        check_owned(calls, listed_packages(lst) | base_pkgs, lst.relative_to(REPO))

    applets = set(subprocess.run(["busybox", "--list"], check=True, capture_output=True,
                                 text=True).stdout.split())
    for cmd, where in sorted(guest.items()):
        if not (skip(cmd) or cmd in applets or cmd in copied):
            bad.append(f"{cmd}: not in the VM image (busybox or mkinitramfs.sh -b) ({where})")

    n_host = sum(1 for c in host if not skip(c)) + sum(
        1 for calls in debian.values() for c in calls if not skip(c))
    n_guest = sum(1 for c in guest if not skip(c))
    print(f"check-commands: {n_host} host and {n_guest} guest commands, "
          f"{len(pkgs)} packages in tests/packages.txt")
    for b in bad:
        print(f"check-commands: {b}", file=sys.stderr)
    passed, failed = (n_host + n_guest - len(bad)), len(bad)
    print(f"check-commands: {passed} passed, {failed} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
