#!/usr/bin/env python3
"""Live-upgrade benchmark for logfs-fuse (driven by bench/fuse-upgrade.sh).

Two measurements in one run, on one image:

stall   A mount served by the v1 build; LOAD_THREADS threads run a loop of calls that all reach
        the daemon (statvfs; create + 4 KiB write + close; stat; unlink), timing every call with
        CLOCK_MONOTONIC. Meanwhile HANDOVERS `logfs-fuse --takeover` runs alternate the v2 and the
        v1 build. A handover's stall is the longest call that overlapped it (from the start of
        the takeover command to its exit); reported as min/median/p90/max over the handovers,
        with the takeover command's wall time and the longest call away from any handover.
cost    The same load for COST_SECONDS on a mount with takeover offered (the default: one
        atomic load after every request) and on one with -o notakeover (no check at all),
        alternated COST_REPS times; ops/s per mount, median per mode.

Usage: fuse_upgrade.py V1_BIN V2_BIN MKFS IMAGE MOUNTPOINT RESULT_PREFIX
Environment: HANDOVERS [20] LOAD_THREADS [4] COST_SECONDS [5] COST_REPS [3] GAP [0.5]
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time

HANDOVERS = int(os.environ.get("HANDOVERS", "20"))
LOAD_THREADS = int(os.environ.get("LOAD_THREADS", "4"))
COST_SECONDS = float(os.environ.get("COST_SECONDS", "5"))
COST_REPS = int(os.environ.get("COST_REPS", "3"))
GAP = float(os.environ.get("GAP", "0.5"))


def mount(binary, image, mnt, opts=()):
    cmd = [binary]
    if opts:
        cmd += ["-o", ",".join(opts)]
    subprocess.run(cmd + [image, mnt], check=True)


def unmount(image, mnt):
    subprocess.run(["umount", mnt], check=True)
    # The daemon holds the image's flock until its final checkpoint is written.
    subprocess.run(["flock", image, "true"], check=True)


class Load:
    """LOAD_THREADS threads calling into the mount; every call timed."""

    def __init__(self, mnt, record):
        self.mnt = mnt
        self.record = record
        self.stop = threading.Event()
        self.calls = [[] for _ in range(LOAD_THREADS)]
        self.counts = [0] * LOAD_THREADS
        self.errors = []
        self.threads = [
            threading.Thread(target=self.run, args=(i,)) for i in range(LOAD_THREADS)
        ]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def run(self, i):
        d = os.path.join(self.mnt, f"load{i}")
        os.makedirs(d, exist_ok=True)
        block = os.urandom(4096)
        calls, rec, n = self.calls[i], self.record, 0
        clock = time.monotonic_ns

        def timed(f, *a):
            t = clock()
            try:
                r = f(*a)
            except OSError as e:
                self.errors.append(f"{f.__name__}: {e}")
                r = None
            if rec:
                calls.append((t, clock() - t))
            return r

        while not self.stop.is_set():
            n += 1
            p = os.path.join(d, f"f{n % 64}")
            timed(os.statvfs, d)
            fd = timed(os.open, p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            if fd is not None:
                timed(os.write, fd, block)
                timed(os.close, fd)
            timed(os.stat, p)
            timed(os.unlink, p)
            self.counts[i] += 6


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))]


def summary(values):
    return {
        "min": min(values),
        "median": statistics.median(values),
        "p90": pct(values, 90),
        "max": max(values),
    }


def stall_phase(v1, v2, image, mnt):
    mount(v1, image, mnt)
    load = Load(mnt, record=True)
    load.start()
    time.sleep(2 * GAP + 1)
    windows = []
    for i in range(HANDOVERS):
        binary = v2 if i % 2 == 0 else v1
        t0 = time.monotonic_ns()
        subprocess.run([binary, "--takeover", mnt], check=True, capture_output=True)
        t1 = time.monotonic_ns()
        windows.append((t0, t1))
        time.sleep(GAP)
    load.finish()
    stats = os.getxattr(mnt, "trusted.logfs.stats").decode()
    unmount(image, mnt)
    calls = sorted(c for per in load.calls for c in per)
    stalls, cmd_ms = [], []
    for t0, t1 in windows:
        # Calls that overlapped [t0, t1]: started before t1 and ended after t0.
        worst = max((d for s, d in calls if s <= t1 and s + d >= t0), default=0)
        stalls.append(worst / 1e6)
        cmd_ms.append((t1 - t0) / 1e6)
    away = [
        d for s, d in calls
        if not any(s <= t1 + 100e6 and s + d >= t0 - 100e6 for t0, t1 in windows)
    ]
    return {
        "handovers": HANDOVERS,
        "calls": len(calls),
        "errors": load.errors,
        "stall_ms": stalls,
        "stall_ms_summary": summary(stalls),
        "takeover_command_ms": cmd_ms,
        "takeover_command_ms_summary": summary(cmd_ms),
        "longest_call_away_ms": max(away, default=0) / 1e6,
        "p99_call_away_ms": pct(away, 99) / 1e6 if away else 0,
        "stats_xattr_after": stats,
    }


def cost_phase(v1, image, mnt):
    runs = {"takeover": [], "notakeover": []}
    errors = []
    for rep in range(COST_REPS):
        modes = ["takeover", "notakeover"] if rep % 2 == 0 else ["notakeover", "takeover"]
        for mode in modes:
            mount(v1, image, mnt, ["notakeover"] if mode == "notakeover" else [])
            load = Load(mnt, record=False)
            load.start()
            time.sleep(0.5)
            c0, t0 = sum(load.counts), time.monotonic()
            time.sleep(COST_SECONDS)
            c1, t1 = sum(load.counts), time.monotonic()
            load.finish()
            errors += load.errors
            unmount(image, mnt)
            runs[mode].append((c1 - c0) / (t1 - t0))
    on, off = statistics.median(runs["takeover"]), statistics.median(runs["notakeover"])
    return {
        "seconds_per_run": COST_SECONDS,
        "ops_per_s": runs,
        "median_ops_per_s": {"takeover": on, "notakeover": off},
        "takeover_vs_notakeover": on / off,
        "errors": errors,
    }


def main():
    v1, v2, mkfs, image, mnt, prefix = sys.argv[1:7]
    subprocess.run([mkfs, "-q", "-f", image], check=True)
    result = {
        "v1": subprocess.run([v1, "--version"], capture_output=True, text=True).stdout.strip(),
        "v2": subprocess.run([v2, "--version"], capture_output=True, text=True).stdout.strip(),
        "load_threads": LOAD_THREADS,
        "nproc": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
    }
    result["stall"] = stall_phase(v1, v2, image, mnt)
    result["cost"] = cost_phase(v1, image, mnt)
    result["loadavg_after"] = os.getloadavg()
    fsck = subprocess.run([os.path.join(os.path.dirname(mkfs), "fsck.logfs"), "-n", image],
                          capture_output=True, text=True)
    result["fsck_exit"] = fsck.returncode
    with open(prefix + ".json", "w") as f:
        json.dump(result, f, indent=1)
    s, c = result["stall"], result["cost"]
    ss, cs = s["stall_ms_summary"], s["takeover_command_ms_summary"]
    lines = [
        f"logfs-fuse live upgrade, {HANDOVERS} handovers ({result['v1']} <-> {result['v2']}),"
        f" {LOAD_THREADS} load threads, {s['calls']} timed calls, {len(s['errors'])} failed",
        "",
        "                              min   median      p90      max   (ms)",
        f"stall seen by the load   {ss['min']:8.1f} {ss['median']:8.1f} {ss['p90']:8.1f}"
        f" {ss['max']:8.1f}",
        f"takeover command         {cs['min']:8.1f} {cs['median']:8.1f} {cs['p90']:8.1f}"
        f" {cs['max']:8.1f}",
        f"longest call away from handovers: {s['longest_call_away_ms']:.1f} ms"
        f" (p99 {s['p99_call_away_ms']:.2f} ms)",
        "",
        f"normal path, ops/s over {COST_REPS} x {COST_SECONDS:g} s per mode (median):",
        f"  takeover offered (gate check per request): {c['median_ops_per_s']['takeover']:.0f}"
        f"  {[round(x) for x in c['ops_per_s']['takeover']]}",
        f"  -o notakeover (no check):                  {c['median_ops_per_s']['notakeover']:.0f}"
        f"  {[round(x) for x in c['ops_per_s']['notakeover']]}",
        f"  ratio: {c['takeover_vs_notakeover']:.3f}",
        "",
        f"fsck.logfs -n after: exit {result['fsck_exit']}",
    ]
    text = "\n".join(lines) + "\n"
    with open(prefix + ".txt", "w") as f:
        f.write(text)
    print(text, end="")
    if s["errors"] or c["errors"] or result["fsck_exit"] != 0:
        print("FAILED: calls failed or fsck found problems", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
