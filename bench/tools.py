#!/usr/bin/env python3
"""Helpers for bench/run.sh (standard library only).

  tools.py randwrite FILE --size BYTES --writes N --seed S
      N buffered 4 KiB pwrite()s at distinct random 4 KiB-aligned offsets in FILE (which must
      already exist with SIZE bytes), then one fsync(). Prints "write_s fsync_s" (wall clock).
  tools.py randverify FILE PREFILL --size BYTES --writes N --seed S
      Check FILE == PREFILL with the blocks randwrite wrote replaced. Prints "ok" or the first
      mismatches; exit 1 on a mismatch.
  tools.py treecmp SRC DST
      Compare two trees: entry set, type, mode, uid, gid, mtime (ns), size and content of
      files, symlink targets. Prints "ok N" or the differences; exit 1 on a difference.
  tools.py summarize RAW.tsv OUT.json
      Medians/min/max per (phase, fs, metric), the logfs/ext4 table, written to OUT.json and
      printed.
"""

import hashlib
import json
import os
import random
import statistics
import sys
import time

BLOCK = 4096
POOL_BYTES = 1 << 20


def _plan(size, writes, seed):
    """The block numbers and the data of every write, deterministic in (size, writes, seed)."""
    rng = random.Random(seed)
    blocks = size // BLOCK
    if writes > blocks:
        sys.exit(f"randwrite: {writes} distinct writes do not fit in {blocks} blocks")
    targets = rng.sample(range(blocks), writes)
    pool = rng.randbytes(POOL_BYTES + BLOCK)
    return targets, pool


def _data(pool, i):
    # A different 4 KiB window of the pool for each write (offset step 4 KiB + 8 bytes, so
    # consecutive writes do not share contents block-wise).
    off = (i * (BLOCK + 8)) % POOL_BYTES
    return pool[off:off + BLOCK]


def randwrite(path, size, writes, seed):
    targets, pool = _plan(size, writes, seed)
    bufs = [_data(pool, i) for i in range(writes)]
    fd = os.open(path, os.O_WRONLY)
    try:
        if os.fstat(fd).st_size != size:
            sys.exit(f"randwrite: {path} is {os.fstat(fd).st_size} bytes, expected {size}")
        t0 = time.perf_counter()
        for blk, buf in zip(targets, bufs):
            if os.pwrite(fd, buf, blk * BLOCK) != BLOCK:
                sys.exit("randwrite: short write")
        t1 = time.perf_counter()
        os.fsync(fd)
        t2 = time.perf_counter()
    finally:
        os.close(fd)
    print(f"{t1 - t0:.6f} {t2 - t1:.6f}")


def randverify(path, prefill, size, writes, seed):
    targets, pool = _plan(size, writes, seed)
    expect = {blk: _data(pool, i) for i, blk in enumerate(targets)}
    bad = []
    with open(path, "rb") as got, open(prefill, "rb") as base:
        if os.fstat(got.fileno()).st_size != size:
            bad.append(f"size {os.fstat(got.fileno()).st_size} != {size}")
        for blk in range(size // BLOCK):
            g = got.read(BLOCK)
            b = base.read(BLOCK)
            want = expect.get(blk, b)
            if g != want:
                kind = "written" if blk in expect else "untouched"
                bad.append(f"block {blk} ({kind}) differs")
                if len(bad) >= 10:
                    break
    if bad:
        print("MISMATCH: " + "; ".join(bad))
        sys.exit(1)
    print("ok")


def _digest(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def _walk(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            kind = st.st_mode & 0o170000
            rec = {
                "mode": oct(st.st_mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "mtime_ns": st.st_mtime_ns,
            }
            if os.path.islink(full):
                rec["link"] = os.readlink(full)
            elif kind == 0o100000:
                rec["size"] = st.st_size
                rec["sha1"] = _digest(full)
                rec["nlink"] = st.st_nlink
            out[rel] = rec
    return out


def treecmp(src, dst):
    a, b = _walk(src), _walk(dst)
    diffs = []
    for rel in sorted(set(a) | set(b)):
        if rel not in b:
            diffs.append(f"missing in copy: {rel}")
        elif rel not in a:
            diffs.append(f"extra in copy: {rel}")
        else:
            for k in sorted(set(a[rel]) | set(b[rel])):
                if a[rel].get(k) != b[rel].get(k):
                    diffs.append(f"{rel}: {k} {a[rel].get(k)} != {b[rel].get(k)}")
    if diffs:
        print(f"MISMATCH ({len(diffs)} differences): " + "; ".join(diffs[:10]))
        sys.exit(1)
    print(f"ok {len(a)}")


# Metrics shown in the table: (phase, metric, label, unit, higher_is_better).
TABLE = [
    ("copy", "copy_s", "cp -a include + sync", "s", False),
    ("copy", "copy_durable_s", "cp -a include, until durable", "s", False),
    ("seq", "seq_mibs", "seq write (dd 1M) + fsync", "MiB/s", True),
    ("seq", "seq_durable_s", "seq write, until unmounted", "s", False),
    ("rand", "rand_iops", "4 KiB random writes + fsync", "IOPS", True),
]
INFO = [
    ("copy", "dev_write_mib", "copy: written to the device", "MiB"),
    ("seq", "dev_write_mib", "seq: written to the device", "MiB"),
    ("rand", "dev_write_mib", "rand: written to the device", "MiB"),
    ("copy", "dev_flushes", "copy: device flushes", ""),
    ("seq", "dev_flushes", "seq: device flushes", ""),
    ("rand", "dev_flushes", "rand: device flushes", ""),
    ("rand", "rand_write_s", "rand: time in the writes", "s"),
    ("rand", "rand_fsync_s", "rand: time in the fsync", "s"),
    ("copy", "client_cpu_s", "copy: cp+sync CPU (user+sys)", "s"),
    ("seq", "client_cpu_s", "seq: dd CPU (user+sys)", "s"),
    ("rand", "client_cpu_s", "rand: writer CPU (user+sys)", "s"),
    ("copy", "daemon_cpu_s", "copy: FUSE daemon CPU (user+sys)", "s"),
    ("seq", "daemon_cpu_s", "seq: FUSE daemon CPU (user+sys)", "s"),
    ("rand", "daemon_cpu_s", "rand: FUSE daemon CPU (user+sys)", "s"),
    ("copy", "daemon_hwm_mib", "copy: FUSE daemon peak RSS (VmHWM)", "MiB"),
    ("copy", "loadavg1", "copy: load avg at start (incl. bench)", ""),
    ("seq", "loadavg1", "seq: load avg at start (incl. bench)", ""),
    ("rand", "loadavg1", "rand: load avg at start (incl. bench)", ""),
]


def _num(v):
    try:
        return float(v)
    except ValueError:
        return None


def summarize(raw, out):
    rows = []
    with open(raw) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            if line.strip():
                rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    groups = {}
    texts = {}
    for r in rows:
        key = (r["phase"], r["fs"], r["metric"])
        v = _num(r["value"])
        if v is None:
            texts.setdefault(key, []).append(r["value"])
        else:
            groups.setdefault(key, []).append(v)
    stats = {}
    for (phase, fs, metric), vals in sorted(groups.items()):
        stats.setdefault(phase, {}).setdefault(fs, {})[metric] = {
            "median": statistics.median(vals),
            "min": min(vals),
            "max": max(vals),
            "n": len(vals),
            "values": vals,
        }
    for (phase, fs, metric), vals in sorted(texts.items()):
        stats.setdefault(phase, {}).setdefault(fs, {})[metric] = {"values": vals}

    def get(phase, fs, metric):
        return stats.get(phase, {}).get(fs, {}).get(metric)

    def fmt(s, unit):
        if not s or "median" not in s:
            return "-"
        p = 0 if unit == "IOPS" or s["median"] >= 1000 else (1 if s["median"] >= 100 else 2)
        if unit == "" and s["median"] == int(s["median"]):
            p = 0
        return f"{s['median']:.{p}f} [{s['min']:.{p}f}..{s['max']:.{p}f}]"

    memfs = any(fs == "memfs" for (_, fs, _) in groups)
    extra_hdr = f" {'memfs (FUSE floor)':>26}" if memfs else ""

    def extra(phase, metric, unit):
        return f" {fmt(get(phase, 'memfs', metric), unit):>26}" if memfs else ""

    table = []
    lines = []
    lines.append("Convention: ratio = logfs throughput / ext4 throughput, or ext4 time / logfs time;")
    lines.append("            ratio > 1 means logfs-fuse is faster. Cells: median [min..max] over the runs.")
    lines.append("")
    hdr = f"{'phase':<32} {'unit':<6} {'ext4':>26} {'logfs-fuse':>26} {'ratio':>7}{extra_hdr}"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for phase, metric, label, unit, higher in TABLE:
        e, l = get(phase, "ext4", metric), get(phase, "logfs", metric)
        ratio = None
        if e and l and "median" in e and "median" in l and e["median"] > 0 and l["median"] > 0:
            ratio = l["median"] / e["median"] if higher else e["median"] / l["median"]
        row = {"phase": label, "metric": metric, "unit": unit,
               "ext4": e, "logfs": l, "ratio_logfs_faster_gt1": ratio}
        if memfs:
            row["memfs"] = get(phase, "memfs", metric)
        table.append(row)
        rs = f"{ratio:.3f}" if ratio is not None else "-"
        lines.append(f"{label:<32} {unit:<6} {fmt(e, unit):>26} {fmt(l, unit):>26} {rs:>7}"
                     + extra(phase, metric, unit))
    raw_ref = get("raw", "raw", "raw_mibs")
    lines.append("")
    lines.append(f"{'reference: raw loop device, same seq write + fsync':<52} MiB/s {fmt(raw_ref, 'MiB/s')}")
    lines.append("")
    lines.append(f"{'more (median [min..max])':<40} {'unit':<6} {'ext4':>26} {'logfs-fuse':>26}{extra_hdr}")
    for phase, metric, label, unit in INFO:
        e, l = get(phase, "ext4", metric), get(phase, "logfs", metric)
        if e is None and l is None:
            continue
        lines.append(f"{label:<40} {unit:<6} {fmt(e, unit):>26} {fmt(l, unit):>26}"
                     + extra(phase, metric, unit))
    checks = [(k, v) for k, v in sorted(texts.items()) if k[2] in ("verify", "fsck")]
    if checks:
        lines.append("")
        lines.append("correctness checks (per run):")
        for (phase, fs, metric), vals in checks:
            lines.append(f"  {phase:<5} {fs:<6} {metric:<7} " + " | ".join(vals))
    text = "\n".join(lines)
    print(text)
    meta = {}
    metaf = os.path.splitext(out)[0] + ".meta.json"
    if os.path.exists(metaf):
        with open(metaf) as f:
            meta = json.load(f)
    with open(out, "w") as f:
        json.dump({"meta": meta, "convention": "ratio = logfs/ext4 throughput or ext4/logfs time; >1 means logfs faster",
                   "table": table, "raw_device_seq_mibs": raw_ref, "stats": stats,
                   "runs": rows}, f, indent=1)
        f.write("\n")


def main():
    import argparse
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("randwrite", "randverify"):
        s = sub.add_parser(name)
        s.add_argument("file")
        if name == "randverify":
            s.add_argument("prefill")
        s.add_argument("--size", type=int, required=True)
        s.add_argument("--writes", type=int, required=True)
        s.add_argument("--seed", type=int, default=42)
    s = sub.add_parser("treecmp")
    s.add_argument("src")
    s.add_argument("dst")
    s = sub.add_parser("summarize")
    s.add_argument("raw")
    s.add_argument("out")
    a = p.parse_args()
    if a.cmd == "randwrite":
        randwrite(a.file, a.size, a.writes, a.seed)
    elif a.cmd == "randverify":
        randverify(a.file, a.prefill, a.size, a.writes, a.seed)
    elif a.cmd == "treecmp":
        treecmp(a.src, a.dst)
    else:
        summarize(a.raw, a.out)


if __name__ == "__main__":
    main()
