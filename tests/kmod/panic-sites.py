#!/usr/bin/env python3
"""Count the panic sites left in the kernel build's Rust object (logfs/kmod/logfs_rust.o_shipped).

In the kernel a Rust panic is a BUG() with locks held, so the crates that run there deny the
lints that catch panics in their source (indexing, unwrap, arithmetic, ...). What the compiler
still emits is visible in the object: every call of a panic entry point (core::panicking::*,
the bounds, slice-index and copy-length checks, unwrap/expect failures, alloc's capacity
overflow and allocation failure). This counts those calls by the crate of the function that
contains them.

  panic-sites.py [-v] OBJECT            print the total (-v: and the count of each crate)
  panic-sites.py [-v] OBJECT MAX-FILE   also fail if the sites in our crates exceed the
                                        committed number in MAX-FILE (a ratchet: lower it when
                                        sites go away); the crates' counts then go to stderr

"Our crates" are logfs, bento_api, bento_kernel and logfs_kmod; the rest are core's and
alloc's own checks (BTreeMap's, formatting's), which depend on the toolchain and are only shown.
"""
import collections
import re
import subprocess
import sys

OURS = {"logfs", "bento_api", "bento_kernel", "logfs_kmod"}
# Relocation targets that are panic entry points (mangled names; section symbols carry them too).
PANIC = re.compile(
    r"4core9panicking|slice_index_fail|slice_(start|end)_index_len_fail|str_index_overflow_fail"
    r"|unwrap_failed|expect_failed|capacity_overflow|panic_on_ord_violation|handle_alloc_error"
    r"|len_mismatch_fail|raw_vec\d+handle_error"
)


def defining_crate(sym: str) -> str:
    """The crate of a v0-mangled function: the first crate root in its path."""
    m = re.search(r"C(?:s[0-9A-Za-z]*_)?(\d+)", sym)
    if not m:
        return "?"
    n = int(m.group(1))
    return sym[m.end():m.end() + n]


def main() -> int:
    args = sys.argv[1:]
    verbose = bool(args) and args[0] == "-v"
    if verbose:
        args = args[1:]
    if len(args) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    obj = args[0]
    dis = subprocess.run(["objdump", "-dr", "--no-show-raw-insn", obj], check=True,
                         capture_output=True, text=True).stdout
    by_crate = collections.Counter()
    fn = "?"
    for line in dis.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            fn = m.group(1)
            continue
        m = re.search(r"R_X86_64_\w+\s+(\S+)", line)
        if m and PANIC.search(m.group(1)):
            by_crate[defining_crate(fn)] += 1
    ours = sum(n for c, n in by_crate.items() if c in OURS)
    crates = [f"  {c}: {n}" for c, n in sorted(by_crate.items(), key=lambda kv: -kv[1])]
    if verbose:
        print("\n".join(crates))
    print(f"panic sites in {obj}: {ours} in our crates, {sum(by_crate.values())} in all")
    if len(args) > 1:
        with open(args[1]) as f:
            limit = int(next(l for l in f if l.strip() and not l.startswith("#")))
        if ours > limit:
            if not verbose:
                print("\n".join(crates), file=sys.stderr)
            print(f"{obj}: {ours} panic sites in logfs and the Bento crates, more than the "
                  f"{limit} of {args[1]}: a new panic path (see docs/architecture.md)",
                  file=sys.stderr)
            return 1
        if ours < limit:
            print(f"note: {args[1]} may be lowered to {ours}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
