#!/usr/bin/env python3
"""The stack frames of the kernel build's Rust object (logfs/kmod/logfs_rust.o_shipped).

Kernel stacks are 16 KiB and shared with the VFS, the block layer and interrupts, so no Rust
function may take a large frame. A frame is what a function's prologue reserves: its pushes
plus every `sub $N,%rsp` before the first call or branch (frames over a page are probed a page
at a time, one `sub` each). Functions of our crates (logfs, bento_api, bento_kernel,
logfs_kmod) are checked; core's and alloc's are only shown.

  stack-frames.py [-n N] OBJECT            print the N largest frames (default 10)
  stack-frames.py [-n N] OBJECT MAX-BYTES  also fail if a frame of our crates exceeds MAX-BYTES
"""
import re
import subprocess
import sys

OURS = {"logfs", "bento_api", "bento_kernel", "logfs_kmod"}
PROLOGUE_END = re.compile(r"\s(call|jmp|j[a-z]+|ret)\s")


def defining_crate(sym: str) -> str:
    """The crate of a v0-mangled function: the first crate root in its path."""
    m = re.search(r"C(?:s[0-9A-Za-z]*_)?(\d+)", sym)
    if not m:
        return "?"
    n = int(m.group(1))
    return sym[m.end():m.end() + n]


def frames(obj: str) -> dict:
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj], check=True,
                         capture_output=True, text=True).stdout
    out, fn, open_ = {}, None, False
    for line in dis.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            fn, open_ = m.group(1), True
            out[fn] = 0
            continue
        if not open_ or fn is None:
            continue
        if PROLOGUE_END.search(line):
            open_ = False
        elif re.search(r"\spush\s+%r", line):
            out[fn] += 8
        else:
            m = re.search(r"\ssub\s+\$0x([0-9a-f]+),%rsp", line)
            if m:
                out[fn] += int(m.group(1), 16)
    return out


def demangle(names: list) -> list:
    try:
        r = subprocess.run(["c++filt", "--format=rust"], input="\n".join(names),
                           capture_output=True, text=True, check=True)
        return r.stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return names


def main() -> int:
    args = sys.argv[1:]
    top = 10
    if args[:1] == ["-n"]:
        top, args = int(args[1]), args[2:]
    if len(args) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    sizes = frames(args[0])
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1])
    names = demangle([f for f, _ in ranked[:top]])
    for (f, n), name in zip(ranked[:top], names):
        mark = "" if defining_crate(f) in OURS else "  (core/alloc)"
        name = re.sub(r"\[[0-9a-f]{16}\]", "", name)
        print(f"{n:6d}  {name[:140]}{mark}")
    ours = [(n, f) for f, n in sizes.items() if defining_crate(f) in OURS]
    biggest = max(ours, default=(0, "-"))
    print(f"largest stack frame in our crates in {args[0]}: {biggest[0]} bytes")
    if len(args) > 1:
        limit = int(args[1])
        over = sorted((n, f) for n, f in ours if n > limit)
        if over:
            for n, name in zip([n for n, _ in over], demangle([f for _, f in over])):
                print(f"  {n} bytes: {name[:160]}", file=sys.stderr)
            print(f"{args[0]}: {len(over)} Rust stack frames over {limit} bytes (kernel stacks "
                  "are 16 KiB: keep large values on the heap, see docs/architecture.md)",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
