#!/usr/bin/env python3
"""The results file of tests/xfstests/run.sh: per file system, each test's verdict (pass, fail,
hang, notrun with xfstests' reason), the counts, what fails on logfs but passes on ext4, and the
kernel's complaints (BUG, WARNING, Oops, Rust panic...) with the test that was running.

Reads LOGDIR/<fs>/out/check.out (check's output; or the console's copy, when a boot ended before
check.out reached the disk), LOGDIR/<fs>/out/hangs (the watchdog's kills), LOGDIR/console-<fs>.log,
LOGDIR/vm-<fs>.rc, as run.sh leaves them, and LOGDIR/note.txt if someone wrote one."""
import argparse
import collections
import datetime
import re
from pathlib import Path

TEST_RE = re.compile(r"^((?:generic|shared|ext4|xfs|btrfs|overlay|bento)/\d+)\b(.*)$")
FAIL_MARKS = ("output mismatch", "[failed", "_check_", "[dumped core]", "inconsistent",
              "no qualified output")
KERNEL_LINE = re.compile(r"^\[ *\d+\.\d+\] (.*)$")
COMPLAINT = re.compile(r"BUG:|kernel BUG at|Oops|WARNING:|Call Trace|general protection fault|"
                       r"Kernel panic|UBSAN:|Rust panic|panicked|possible circular locking|"
                       r"lockdep|blocked for more than|soft lockup|hard LOCKUP|RCU stall")
RUN_MARK = re.compile(r"run fstests (\S+) at")


def console_check_output(console):
    """check's output as the console shows it, with the kernel's lines taken out (a kernel line
    can start in the middle of one of check's: the rest of check's line follows it)."""
    out, pending = [], ""
    if not console.exists():
        return out
    for line in console.read_text(errors="replace").splitlines():
        m = re.match(r"^(.*?)\[ *\d+\.\d+\] ", line)
        if m:
            pending += m.group(1)
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def parse_check(lines, hangs):
    """{test: (status, detail)} in run order, and check's summary lines."""
    res = collections.OrderedDict()
    summary = {}
    last = None
    for line in lines:
        for key in ("Ran:", "Not run:", "Failures:"):
            if line.startswith(key):
                summary[key] = line[len(key):].split()
        m = TEST_RE.match(line)
        if not m:
            # an output mismatch: the first line the test added tells most
            if (last and res.get(last, ("",))[0] == "fail" and line.startswith("    +")
                    and not line.startswith("    +++") and "first +" not in res[last][1]):
                res[last] = ("fail", f"{res[last][1]}; first + {line[5:].strip()[:160]}")
            continue
        last = m.group(1)
        test, rest = m.group(1), m.group(2).strip()
        if "[not run]" in rest:
            res[test] = ("notrun", rest.split("[not run]", 1)[1].strip())
        elif "[expunged]" in rest:
            res[test] = ("notrun", "expunged")
        elif test in hangs:
            res[test] = ("hang", f"killed by the watchdog after {hangs[test]} s; {rest}")
        elif any(k in rest for k in FAIL_MARKS):
            res[test] = ("fail", re.sub(r" \(see [^)]*\)", "", rest).lstrip("- "))
        elif re.fullmatch(r"(\d+s \.\.\.\s+)?\d+s", rest):
            res[test] = ("pass", "")
        else:
            res[test] = ("incomplete", rest or "the run ended during this test")
    # check's own summary has the last word on failures (e.g. a post-test fsck failing)
    for t in summary.get("Failures:", []):
        if t in res and res[t][0] == "pass":
            res[t] = ("fail", "listed in check's Failures")
    return res, summary


def complaints(console):
    """[(test, kernel line)] of the kernel's complaints, with the test running at the time."""
    out, current = [], "(before the first test)"
    if not console.exists():
        return out
    for line in console.read_text(errors="replace").splitlines():
        m = KERNEL_LINE.match(line)
        if not m:
            continue
        r = RUN_MARK.search(m.group(1))
        if r:
            current = r.group(1)
        elif COMPLAINT.search(m.group(1)):
            out.append((current, m.group(1).strip()))
    return out


def main():
    ap = argparse.ArgumentParser()
    for a in ("logdir", "fs", "kernel", "xfstests", "project", "tests", "timeout", "devsize"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--src", help="xfstests' tree (XFSTESTS_DIR), to count the tests of -g generic/quick")
    args = ap.parse_args()
    logdir = Path(args.logdir)
    fss = args.fs.split()
    results, meta, kern = {}, {}, {}
    for fs in fss:
        out = logdir / fs / "out"
        hangs = {}
        if (out / "hangs").exists():
            for line in (out / "hangs").read_text().splitlines():
                t, secs = line.split()[:2]
                hangs[t] = secs
        console = logdir / f"console-{fs}.log"
        check_out = out / "check.out"
        results[fs], _ = parse_check(
            check_out.read_text(errors="replace").splitlines() if check_out.exists() else [], hangs)
        # A boot that ended early may not have written the end of check.out to its disk.
        from_console, _ = parse_check(console_check_output(console), hangs)
        if len(from_console) > len(results[fs]):
            results[fs] = from_console
        rc = (logdir / f"vm-{fs}.rc").read_text().split() if (logdir / f"vm-{fs}.rc").exists() else ["?", "?"]
        done = console.exists() and f"XFST-DONE {fs}" in console.read_text(errors="replace")
        meta[fs] = (rc[0], rc[1], done)
        kern[fs] = complaints(console)

    p = print
    p("# xfstests on logfs (bentofs, mount -t bento -o fs=logfs) and ext4")
    p()
    p(f"date:      {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    p(f"kernel:    {args.kernel} (Debian 12), QEMU TCG guest, disks NVMe namespaces")
    p(f"xfstests:  {args.xfstests}")
    p("           (the tree given as XFSTESTS_DIR, unmodified, built on Debian 12 by whoever ran it)")
    p(f"project:   {args.project}")
    p(f"tests:     ./check {args.tests}; test and scratch devices {args.devsize} each; "
      f"watchdog {args.timeout} s per test")
    p("command:   tests/xfstests/run.sh")
    if (logdir / "note.txt").exists():  # what the person running it adds (e.g. why it stopped)
        p("note:      " + (logdir / "note.txt").read_text().strip().replace("\n", "\n           "))
    p()
    p("## Summary")
    p()
    expected = None
    if args.src and args.tests.strip() == "-g generic/quick":
        expected = {f"generic/{f.name}" for f in (Path(args.src) / "tests/generic").iterdir()
                    if re.search(r"^_begin_fstest\b.*\bquick\b", f.read_text(errors="replace"), re.M)}
        p(f"The group has {len(expected)} tests; 'not reached' counts those a run that ended early "
          "did not start.")
        p()
    p(f"{'fs':6} {'tests':>5} {'pass':>5} {'fail':>5} {'hang':>5} {'notrun':>6} {'incomplete':>10}"
      f" {'not reached':>11}  {'boot':>9}  complete")
    for fs in fss:
        c = collections.Counter(s for s, _ in results[fs].values())
        rc, secs, done = meta[fs]
        mins = f"{float(secs) / 60:.0f} min" if secs != "?" else "?"
        missing = len(expected - set(results[fs])) if expected else 0
        p(f"{fs:6} {len(results[fs]):5} {c['pass']:5} {c['fail']:5} {c['hang']:5} {c['notrun']:6} "
          f"{c['incomplete']:10} {missing:11}  {mins:>9}  {'yes' if done else f'NO (VM exit {rc})'}")
    p()
    if "logfs" in results and "ext4" in results:
        lg, ex = results["logfs"], results["ext4"]
        worse = [t for t in ex if ex[t][0] == "pass" and t in lg and lg[t][0] in ("fail", "hang", "incomplete")]
        p(f"## Passes on ext4, fails on logfs ({len(worse)})")
        p()
        for t in worse:
            p(f"{t}  {lg[t][0]}: {lg[t][1]}")
        p()
        nr = [t for t in ex if ex[t][0] == "pass" and t in lg and lg[t][0] == "notrun"]
        p(f"## Passes on ext4, not run on logfs ({len(nr)})")
        p()
        for t in nr:
            p(f"{t}  {lg[t][1]}")
        p()
        other = [t for t in lg if lg[t][0] == "pass" and t in ex and ex[t][0] != "pass"]
        p(f"## Passes on logfs, not on ext4 ({len(other)})")
        p()
        for t in other:
            p(f"{t}  ext4 {ex[t][0]}: {ex[t][1]}")
        p()
    for fs in fss:
        reasons = collections.Counter(d for s, d in results[fs].values() if s == "notrun")
        p(f"## Not run on {fs}, by reason")
        p()
        for r, n in reasons.most_common():
            p(f"{n:4}  {r}")
        p()
    p("## Kernel log (BUG, WARNING, Oops, lockdep, Rust panic, hung task...)")
    p()
    for fs in fss:
        if not kern[fs]:
            p(f"{fs}: clean")
            continue
        p(f"{fs}: {len(kern[fs])} lines")
        for t, line in kern[fs][:40]:
            p(f"  during {t}: {line}")
    p()
    p("## Per test")
    p()
    tests = sorted({t for fs in fss for t in results[fs]})
    for t in tests:
        cols = []
        for fs in fss:
            s, d = results[fs].get(t, ("-", ""))
            cols.append(f"{fs}={s}" + (f" ({d})" if d else ""))
        p(f"{t}  " + "  |  ".join(cols))


if __name__ == "__main__":
    main()
